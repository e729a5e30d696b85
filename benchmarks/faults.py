"""Fault table: every source under every fault, through real materializations.

    python benchmarks/faults.py [--postgres] [--source NAME]... [--fault KIND]...

Each source's assets run with ``dagster.materialize``, their resources pointed at an
in-process Sandbox, on a scratch ledger (SQLite; ``--postgres``: a scratch PostgreSQL
database). The faults: the sandbox's FAULT_KINDS, each variant of wrong_shape and
oversized on its own, and ``refused`` (the source's URL pointed where nothing listens).
Each source and fault is one cell of four runs:

1. clean: the rows it stores are the truth;
2. brief: the fault injected RETRIES times on each of the source's paths, within the
   retries (not for ``refused``: a URL cannot be wrong briefly): did the run recover?
3. for good: the fault until cleared: the run fails with a typed source error naming the
   source or, where the ledger isolates items (the fault then hits one item), succeeds and
   lists what it skipped;
4. repeat: the fault cleared, the clean run again.

Sources run in worker processes, ``--jobs`` at once, each with its own sandbox and scratch
ledger. Prints a line per cell: each faulty run's outcome and wall time, the for-good run's
peak memory, the rows a faulty run changed (harm), then duplicates and lost rows after the
repeat. Exits 1 if any cell has duplicates or lost rows, or a faulty run changed the
ledger, outlived its bound, or ended other than in a typed source error or a listed skip.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import gc
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from _common import proc_status, reset_peak_rss, scratch_postgres, scratch_sqlite
from dagster import materialize

from omc_pipelines.db.models import (
    CatalystEvent, ChainTvl, HumanItem, PriceSnapshot, ProtocolFees, ProtocolSnapshot, StablecoinSupply, Trade,
)
from omc_pipelines.ledgers.catalyst import assets as catalyst
from omc_pipelines.ledgers.exchange import assets as exchange
from omc_pipelines.ledgers.glass import assets as glass
from omc_pipelines.ledgers.human import assets as human
from omc_pipelines.resources import (
    AnnouncementsResource, CoinSpotResource, CryptoPanicResource, DefiLlamaResource, LedgerDatabase, NewsFeedsResource,
    RedditResource, SecResource,
)
from omc_pipelines.sandbox import FAULT_KINDS, Fault, Sandbox
from omc_pipelines.sandbox.cryptopanic import CRYPTOPANIC_POSTS, CRYPTOPANIC_TOKEN
from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET
from omc_pipelines.sandbox.sec import COINBASE, STRATEGY
from omc_pipelines.sandbox.server import FAULT_VARIANTS, unreachable_url
from omc_pipelines.sources.http import DEADLINE_TIMEOUTS, SourceError

# Short waits and few retries, so that the whole table takes minutes.
TIMEOUT, RETRIES, BACKOFF = 0.5, 2, 0.05
DEADLINE = DEADLINE_TIMEOUTS * TIMEOUT
LONGEST_BACKOFF = BACKOFF * 2 ** (RETRIES - 1)
COINSPOT_BUDGET = 5.0
# The announcements resource gives Chromium twice the HTTP timeout, to launch and for each page.
BROWSER_TIMEOUT = 2 * TIMEOUT
# Where a resource lets us: the sandbox needs no politeness. News, CryptoPanic and Reddit fix
# one request a second per source in their clients.
FAST, FIXED = 1000.0, 1.0
# What Dagster adds to a run (an instance, its events, the ledger write) beyond the requests.
SLACK = 2.0
AGENT = "OMC benchmark bench@example.com"
WATCHLIST = ["btc", "eth", "pepe"]  # pepe is not in /latest: it is asked for on its own
CHAINS = ["Ethereum", "Solana", "Tron"]
FEEDS = ["coindesk", "cointelegraph", "cryptoslate"]
DAYS = 7
REFUSED = "refused"
FAULTS = [spec for kind in FAULT_KINDS
          for spec in ([f"{kind}:{v}" for v in FAULT_VARIANTS[kind]] if kind in FAULT_VARIANTS else [kind])] + [REFUSED]
# Dagster logs every event of every run to the console otherwise.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Columns that say when a row was written, not what it holds.
BOOKKEEPING = {"id", "collected_at", "computed_at"}


def _names(cls: type) -> set[str]:
    return {cls.__name__}.union(*(_names(sub) for sub in cls.__subclasses__()))


TYPED = _names(SourceError)  # every source module is imported (resources imports them all)


# --- the sources -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    model: Any
    key: tuple[str, ...]
    where: Any = None  # the rows of this source, where sources share a table


@dataclass(frozen=True)
class Source:
    name: str
    assets: list
    tables: list[Table]
    # (sandbox URL, URL for the faulted part) -> resources; the second is unreachable_url() for "refused".
    resources: Callable[[str, str], dict]
    # Where faults go: one item's path (a coin, a chain, a feed) where the ledger isolates items.
    paths: tuple[str, ...]
    shows: str  # how its errors name the source
    interval: float  # seconds between two requests: the source's rate limit
    # The ledger's own error when every item failed (each with a typed error, as it catches only those).
    all_failed: str | None = None
    budget: float | None = None
    overhead: float = 0.0  # allowed beyond the requests, e.g. launching and closing a browser
    tags: Callable[[], dict] = dict
    config: dict = field(default_factory=dict)  # run config


def coinspot(_url: str, target: str) -> dict:
    return {"coinspot": CoinSpotResource(base_url=target, watchlist=WATCHLIST, timeout=TIMEOUT, retries=RETRIES,
                                         backoff=BACKOFF, rate_limit=FAST, budget=COINSPOT_BUDGET)}


def sec(_url: str, target: str) -> dict:
    # Cooldown off: after a 403/429 the SEC client sends nothing for `cooldown` seconds, and the
    # repeat run follows at once. A wide history window keeps the recordings in it.
    return {"sec": SecResource(data_url=target, archives_url=target, user_agent=AGENT, ciks=[STRATEGY, COINBASE],
                               forms=["4", "8-K"], timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF, rate_limit=FAST,
                               history_days=3650, cooldown=0)}


def announcements(_url: str, target: str) -> dict:
    return {"announcements": AnnouncementsResource(base_url=target, timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF,
                                                   history_days=3650)}


def defillama(_url: str, target: str) -> dict:
    return {"defillama": DefiLlamaResource(api_url=target, stablecoins_url=target, chains=CHAINS, protocols=["aave"],
                                           top_protocols=5, timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF,
                                           rate_limit=FAST)}


def news(url: str, target: str) -> dict:
    feeds = ",".join(f"{name}={target if name == FEEDS[1] else url}/feeds/{name}" for name in FEEDS)
    return {"news": NewsFeedsResource(feeds=feeds, timeout=TIMEOUT, retries=RETRIES, backoff=BACKOFF)}


def cryptopanic(_url: str, target: str) -> dict:
    return {"cryptopanic": CryptoPanicResource(base_url=target, token=CRYPTOPANIC_TOKEN, timeout=TIMEOUT,
                                               retries=RETRIES, backoff=BACKOFF)}


def reddit(_url: str, target: str) -> dict:
    return {"reddit": RedditResource(base_url=target, auth_url=target, client_id=REDDIT_CLIENT_ID,
                                     client_secret=REDDIT_CLIENT_SECRET, subreddits=["Bitcoin"], timeout=TIMEOUT,
                                     retries=RETRIES, backoff=BACKOFF)}


def observed_now() -> dict:
    # Every run of a cell records the same observation, as a retried schedule tick does.
    return {exchange.OBSERVED_AT_TAG: datetime.now(timezone.utc).replace(microsecond=0).isoformat()}


def last_days() -> dict:
    first = datetime.now(timezone.utc).date() - timedelta(days=DAYS)
    return {"dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": (first + timedelta(days=DAYS - 1)).isoformat()}


def events_of(source: str) -> Table:
    return Table(CatalystEvent, catalyst.EVENT_KEY, CatalystEvent.source == source)


def items_of(where) -> Table:
    return Table(HumanItem, human.ITEM_KEY, where)


PUBLIC = "/pubapi/v2"
SOURCES = [
    Source("coinspot_prices", [exchange.coinspot_price_snapshots], [Table(PriceSnapshot, exchange.SNAPSHOT_KEY)],
           coinspot, (f"{PUBLIC}/latest/pepe",), "coinspot:", 1 / FAST,
           all_failed="no price for any coin", budget=COINSPOT_BUDGET, tags=observed_now),
    Source("coinspot_trades", [exchange.coinspot_trades], [Table(Trade, exchange.TRADE_KEY)],
           coinspot, (f"{PUBLIC}/orders/completed/eth",), "coinspot:", 1 / FAST,
           all_failed="no trades for any coin", budget=COINSPOT_BUDGET),
    Source("sec_filings", [catalyst.sec_filings], [events_of(catalyst.SEC_SOURCE)],
           sec, ("/submissions", "/Archives"), "sec:", 1 / FAST,
           # Every run reads every document again, or the documents' path would see no fault.
           config={"ops": {"sec_filings": {"config": {"reread": True}}}}),
    Source("coinspot_announcements", [catalyst.coinspot_announcements], [events_of(catalyst.ANNOUNCEMENTS_SOURCE)],
           announcements, ("/api/v2/help_center", "/hc/"), "coinspot_announcements:", 0.1,  # HttpSource's 10/s
           overhead=2 * BROWSER_TIMEOUT),
    Source("defillama_chain_tvl", [glass.defillama_chain_tvl], [Table(ChainTvl, ("chain", "day"))],
           defillama, ("/v2/historicalChainTvl/Solana",), "defillama:", 1 / FAST,
           all_failed="every chain failed", tags=last_days),
    Source("defillama_snapshots", [glass.defillama_protocols, glass.defillama_fees, glass.defillama_stablecoins],
           [Table(ProtocolSnapshot, ("slug", "as_of")), Table(ProtocolFees, ("slug", "data_type", "as_of")),
            Table(StablecoinSupply, ("stablecoin_id", "as_of"))],
           defillama, ("/protocols", "/overview/fees", "/stablecoins"), "defillama:", 1 / FAST),
    Source("news", [human.news_items], [items_of(HumanItem.source.like("news:%"))],
           news, (f"/feeds/{FEEDS[1]}",), f"news:{FEEDS[1]}:", 1 / FIXED,
           all_failed="every news feed failed"),
    Source("cryptopanic", [human.cryptopanic_posts], [items_of(HumanItem.source == "cryptopanic")],
           cryptopanic, (CRYPTOPANIC_POSTS,), "cryptopanic:", 1 / FIXED),
    Source("reddit", [human.reddit_posts], [items_of(HumanItem.source == "reddit")],
           reddit, ("/api/v1/access_token", "/r/"), "reddit:", 1 / FIXED),
]


# --- the ledger --------------------------------------------------------------------------------


Row = tuple[str, tuple, tuple]  # table, natural key, the other columns as (name, value)


def _plain(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def ledger(engine: sa.Engine, source: Source) -> list[Row]:
    rows = []
    with engine.connect() as conn:
        for table in source.tables:
            columns = [c for c in table.model.__table__.c if c.name not in BOOKKEEPING]
            query = sa.select(*columns) if table.where is None else sa.select(*columns).where(table.where)
            for row in conn.execute(query).mappings():
                rows.append((table.model.__tablename__, tuple(row[k] for k in table.key),
                             tuple((c.name, _plain(row[c.name])) for c in columns if c.name not in table.key)))
    return rows


def clear(engine: sa.Engine, source: Source) -> None:
    with engine.begin() as conn:
        for table in source.tables:
            delete = sa.delete(table.model)
            conn.execute(delete if table.where is None else delete.where(table.where))


def changes(truth: list[Row], now: list[Row]) -> list[str]:
    """Rows of the truth missing or changed, and rows the truth does not have, each said in a line."""
    before, after = {(t, k): v for t, k, v in truth}, {(t, k): v for t, k, v in now}
    found = []
    for (table, key) in sorted(before.keys() | after.keys(), key=str):
        old, new = before.get((table, key)), after.get((table, key))
        if old == new:
            continue
        if old is None or new is None:
            found.append(f"{'added' if old is None else 'removed'} {table} {key}")
            continue
        name, was, now_ = next((n, a, b) for (n, a), (_, b) in zip(old, new) if a != b)
        found.append(f"changed {table} {key}: {name} {was!r:.60} -> {now_!r:.60}")
    return found


def duplicates(now: list[Row]) -> int:
    return len(now) - len({(t, k) for t, k, _ in now})


def lost(truth: list[Row], now: list[Row]) -> int:
    """Rows of the truth not in the ledger as they were (key and values)."""
    return len(set(truth) - set(now))


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Run:
    ok: bool
    text: str  # the message, or what was skipped, or "ok"
    gist: str  # the same in a few words
    wall: float
    peak_mb: float
    tries: int = 0  # requests that reached the faulted paths
    problems: list[str] = field(default_factory=list)


def user_error(error) -> tuple[str, str]:
    """The class and first line of what the asset raised, under Dagster's wrapping."""
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    line = error.message.splitlines()[0] if error.message else ""
    return error.cls_name, line.split(": ", 1)[1] if line.split(": ", 1)[0].endswith(error.cls_name) else line


def skipped(result) -> list[tuple[str, str]]:
    """What the run listed as skipped or rejected in its materializations' metadata: (gist, text)."""
    notes = []  # a partitioned run repeats its metadata in every partition's materialization
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        for name in ("failed", "failed_chains", "failed_feeds"):
            failed = metadata[name].value if name in metadata else {}
            notes += [(f"skipped {item}", f"skipped {item}: {why}") for item, why in failed.items()]
        rejected = metadata["rejected"].value if "rejected" in metadata else []
        if rejected:
            notes.append((f"rejected {len(rejected)}", f"rejected {len(rejected)}: {rejected[0]}"))
        if "path_used" in metadata and metadata["path_used"].value != "api":
            path = metadata["path_used"].value
            notes.append((f"by {path}", f"read by the {path} path"))
    return list(dict.fromkeys(notes))


def run(source: Source, sandbox: Sandbox, resources: dict, tags: dict) -> Run:
    gc.collect()
    reset_peak_rss()
    before = proc_status("VmRSS")
    since, started = time.time(), time.perf_counter()
    result = materialize(source.assets, resources=resources, tags=tags, run_config={**QUIET, **source.config},
                         raise_on_error=False)
    wall = time.perf_counter() - started
    peak_mb = max(0, proc_status("VmHWM") - before) / 1024
    tries = sum(1 for a in list(sandbox.server.arrivals) if a["at"] >= since and a["path"].startswith(source.paths))
    failures = result.get_step_failure_events()
    if not failures:
        notes = skipped(result)
        gist, text = (", ".join(g for g, _ in notes), "; ".join(t for _, t in notes)) if notes else ("ok", "ok")
        unnamed = [t for g, t in notes if g.startswith("skipped") and source.shows not in t]
        return Run(True, text, gist, wall, peak_mb, tries,
                   [f"the skip does not name the source ({source.shows}): {t[:200]}" for t in unnamed])
    problems, texts = [], []
    for failure in failures:
        name, text = user_error(failure.step_failure_data.error)
        texts.append(f"{name}: {text}")
        if name not in TYPED and not (source.all_failed and text.startswith(source.all_failed)):
            problems.append(f"untyped error {name}: {text[:200]}")
        elif source.shows not in text:
            problems.append(f"the message does not name the source ({source.shows}): {text[:200]}")
    count = f"{len(failures)} of {len(source.assets)} failed: " if len(source.assets) > 1 else ""
    return Run(False, count + texts[0], f"failed: {texts[0].split(':')[0]}", wall, peak_mb, tries, problems)


def requests_since(sandbox: Sandbox, since: float) -> int:
    return sum(1 for a in list(sandbox.server.arrivals) if a["at"] >= since and not a["path"].startswith("/_sandbox"))


def bound(source: Source, sent: int) -> float:
    """The longest a run that sent ``sent`` requests may take: each at most a deadline, its
    rate-limit slot and a backoff, plus the slack; within the budget where the source has one."""
    longest = sent * (DEADLINE + source.interval + LONGEST_BACKOFF) + source.overhead + SLACK
    return min(longest, source.budget + SLACK) if source.budget else longest


# --- one cell ----------------------------------------------------------------------------------


@dataclass
class Cell:
    source: str
    fault: str
    brief: Run | None
    good: Run
    harm: int
    duplicates: int
    lost: int
    problems: list[str]


def cell(source: Source, fault: str, sandbox: Sandbox, engine: sa.Engine, database: LedgerDatabase) -> Cell:
    sandbox.reset()
    clear(engine, source)
    tags = source.tags()
    ledger_db = {"ledger_db": database}
    clean_resources = {**ledger_db, **source.resources(sandbox.url, sandbox.url)}
    since = time.time()
    clean = run(source, sandbox, clean_resources, tags)
    clean_requests = requests_since(sandbox, since)
    if not clean.ok:
        raise SystemExit(f"{source.name}: the clean run failed, nothing to compare with: {clean.text}")
    truth = ledger(engine, source)
    problems: list[str] = []
    refused = fault == REFUSED
    kind, _, variant = fault.partition(":")

    def faulty(phase: str, times: int) -> tuple[Run, int]:
        since = time.time()
        resources = {**ledger_db, **source.resources(sandbox.url, unreachable_url())} if refused else clean_resources
        injected = [] if refused else [Fault(path, kind, times=times, variant=variant or None) for path in source.paths]
        for fault_ in injected:
            sandbox.inject(fault_)
        result = run(source, sandbox, resources, tags)
        sandbox.server.clear_faults()
        # A refused request never arrives: count the clean run's, each tried in full.
        limit = bound(source, requests_since(sandbox, since) + (RETRIES + 1) * clean_requests * refused)
        changed = changes(truth, ledger(engine, source))
        problems.extend(f"{phase}: {p}" for p in result.problems)
        if result.wall > limit:
            problems.append(f"{phase}: took {result.wall:.1f} s, over its bound of {limit:.1f} s")
        if changed:
            problems.append(f"{phase}: {len(changed)} rows of the ledger changed, e.g. {changed[0]}")
        return result, len(changed)

    brief = None
    if not refused:
        brief, brief_harm = faulty("brief", RETRIES)
    good, good_harm = faulty("for good", 0)
    again = run(source, sandbox, clean_resources, tags)
    if not again.ok:
        problems.append(f"repeat: failed with the fault cleared: {again.text}")
    if brief and brief.gist == "ok":
        # Against the repeat, which does the same work unfaulted: more requests are retries.
        retried = brief.tries - again.tries
        brief.gist = f"recovered (+{retried} tries)" if retried > 0 else "ok, no retry"
    final = ledger(engine, source)
    found = Cell(source.name, fault, brief, good, max(good_harm, brief_harm if brief else 0),
                 duplicates(final), lost(truth, final), problems)
    if found.duplicates:
        problems.append(f"{found.duplicates} duplicate rows after the repeat")
    if found.lost:
        problems.append(f"{found.lost} rows of the clean run lost after the repeat")
    return found


# --- the table ---------------------------------------------------------------------------------

LOCAL = re.compile(r"http://127\.0\.0\.1:\d+")
COLUMNS = (f"{'source':23} {'fault':20} {'brief (x' + str(RETRIES) + ')':30} {'s':>5}  {'for good':60} {'s':>5} "
           f"{'+MB':>4} {'harm':>4} {'dup':>3} {'lost':>4}")


def short(text: str, width: int) -> str:
    """``text`` without the local hosts (the sandbox's, the unreachable one's), cut to ``width``."""
    text = LOCAL.sub("", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def line(found: Cell) -> str:
    brief = (short(found.brief.gist, 30), f"{found.brief.wall:5.1f}") if found.brief else ("-", "    -")
    good = short(("" if found.good.ok else "FAILED ") + found.good.text, 60)
    mark = "  <-" if found.problems else ""
    return (f"{found.source:23} {found.fault:20} {brief[0]:30} {brief[1]}  {good:60} {found.good.wall:5.1f} "
            f"{found.good.peak_mb:4.0f} {found.harm:4} {found.duplicates:3} {found.lost:4}{mark}")


def settings_line(database: str, jobs: int) -> str:
    return (f"settings: timeout {TIMEOUT:g} s (deadline {DEADLINE:g} s a request), retries {RETRIES}, backoff "
            f"{BACKOFF:g} s (doubling, jittered), CoinSpot budget {COINSPOT_BUDGET:g} s, Chromium {BROWSER_TIMEOUT:g} s "
            f"a page; rate limits: {FAST:g}/s where the resource takes one (CoinSpot, SEC, DeFiLlama), "
            f"{FIXED:g}/s news, CryptoPanic, Reddit (fixed in their clients), 10/s help centre; SEC cooldown off; "
            f"brief faults: {RETRIES} per path; slack {SLACK:g} s a run\n"
            f"each source in a process of its own, {jobs} at once, with its own sandbox and scratch {database} ledger; "
            f"+MB: the for-good run's peak RSS (VmHWM, reset before the run) over the RSS before it, sandbox included\n"
            f"items: coins {','.join(WATCHLIST)}; chains {','.join(CHAINS)} over {DAYS} days; feeds {','.join(FEEDS)}; "
            f"subreddit Bitcoin; SEC {STRATEGY},{COINBASE} (4, 8-K)")


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} cores, load avg {load}, Python {sys.version.split()[0]}"


def work(source: Source, faults: list[str], postgres: bool) -> None:
    """One source's cells, each printed as a line of JSON as it is done (a worker process)."""
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(scratch_postgres() if postgres else scratch_sqlite())
        sandbox = stack.enter_context(Sandbox())
        database = LedgerDatabase(url=engine.url.render_as_string(hide_password=False), auto_migrate=False)
        for fault in faults:
            print(json.dumps(dataclasses.asdict(cell(source, fault, sandbox, engine, database)), default=str), flush=True)


def from_json(text: str) -> Cell:
    found = Cell(**json.loads(text))
    found.good = Run(**found.good)
    found.brief = Run(**found.brief) if found.brief else None
    return found


def worker(source: Source, args: argparse.Namespace) -> list[Cell]:
    command = [sys.executable, __file__, "--worker", "--source", source.name]
    command += [f"--fault={f}" for f in args.fault or ()] + (["--postgres"] if args.postgres else [])
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"the worker for {source.name} failed:\n{done.stderr[-4000:]}")
    cells = [from_json(text) for text in done.stdout.splitlines() if text.startswith("{")]
    print(f"  {source.name}: {len(cells)} cells in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="the ledger on a scratch PostgreSQL database")
    parser.add_argument("--source", action="append", choices=[s.name for s in SOURCES], help="only this source (repeatable)")
    kinds = sorted({f.partition(":")[0] for f in FAULTS} | set(FAULTS))
    parser.add_argument("--fault", action="append", choices=kinds, metavar="KIND",
                        help=f"only this fault (repeatable; a kind takes all its variants): {', '.join(FAULTS)}")
    parser.add_argument("--jobs", type=int, default=3, help="sources measured at once, each in a process of its own")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sources = [s for s in SOURCES if not args.source or s.name in args.source]
    faults = [f for f in FAULTS if not args.fault or f in args.fault or f.partition(":")[0] in args.fault]
    if args.worker:
        work(sources[0], faults, args.postgres)
        return 0

    started = time.perf_counter()
    print(machine_line())
    print(settings_line("PostgreSQL" if args.postgres else "SQLite", args.jobs))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda source: worker(source, args), sources))
    cells = [found for found_ in results for found in found_]
    print(COLUMNS)
    for found in cells:
        print(line(found))
    bad = [c for c in cells if c.problems]
    print(f"{len(cells)} cells in {time.perf_counter() - started:.0f} s; {len(bad)} break a rule")
    print(machine_line())
    for found in bad:
        for problem in found.problems:
            print(f"FAIL: {found.source} x {found.fault}: {short(problem, 300)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
