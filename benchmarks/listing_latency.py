"""Listing latency: what a sensor tick costs, and how long a new listing takes to become a filled paper order.

    python benchmarks/listing_latency.py [--ticks 50] [--articles 10] [--sensor-seconds 5] [--seed 7]
                                         [--instance postgres|sqlite] [--postgres]

(1) Tick cost: evaluates coinspot_listing_sensor and sec_filing_sensor ``--ticks``
times each in-process against the sandbox, with the cursor their first tick (the
history tick) left, and prints p50/p95/max seconds per tick (target p95 < 1 s).

(2) Publication to filled order: starts the sandbox and ``dg dev`` (web UI and daemon)
with OMC_LISTING_SENSOR_SECONDS=--sensor-seconds, Dagster's instance storage on a
scratch PostgreSQL database (deploy/postgres/dagster.yaml; ``--instance sqlite``: the
project's dagster.yaml) and a scratch SQLite ledger (``--postgres``: a scratch
PostgreSQL database). It waits for the listing sensor's history run, then publishes
``--articles`` listings of fresh coins, each priced in the sandbox first, at random
moments (gaps of 3-15 s, seeded), and measures, for each, the seconds from publication
to its ``catalyst_events`` row and to its paper order in ``trading_orders`` reaching
``filled`` (the database polled every 0.2 s). Prints each, p50 and p95 of both
(targets p50 <= 8 s, p95 <= 15 s), and where the time went, from the sensor tick and
the run's events. Exits 1 if an article has no row or no filled order within
``--timeout`` seconds, or has other than exactly one run, one row and one order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
import yaml
from _common import scratch_database, scratch_postgres, scratch_sqlite

from omc_pipelines import settings
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.definitions import build_resources
from omc_pipelines.ledgers.catalyst import sensors
from omc_pipelines.ledgers.catalyst.assets import ANNOUNCEMENTS_SOURCE
from omc_pipelines.sandbox import Sandbox, stack
from omc_trading.tables import orders

TARGET_TICK_P95 = 1.0
TARGET_P50, TARGET_P95 = 8.0, 15.0
GAP_SECONDS = (3.0, 15.0)
POLL_SECONDS = 0.2
AGENT = "OMC benchmark bench@example.com"
# Listings only: each one is to become a filled paper order.
TITLES = ["New Coin Listing: {name} ({sym})", "Now listed on CoinSpot: {name} ({sym})",
          "New listing: {name} ({sym}) now tradeable"]
# The sandbox's price of every benchmark coin: a paper buy fills at the ask.
BID, ASK = "1.98", "2.00"


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1))] if ordered else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def dequeue_interval(instance: Path) -> str:
    config = yaml.safe_load(instance.read_text()) or {}
    coordinator = config.get("run_coordinator") or {}
    if not coordinator.get("class", "").startswith("QueuedRunCoordinator"):
        return f"run coordinator {coordinator.get('class', 'default')}"
    return f"queued runs, dequeue every {(coordinator.get('config') or {}).get('dequeue_interval_seconds', 5)} s"


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), load avg {load}, "
            f"{platform.machine()}, Python {sys.version.split()[0]}")


# --- (1) tick cost ----------------------------------------------------------------------------


def tick_cost(sandbox: Sandbox, ticks: int) -> None:
    from dagster import DagsterInstance, build_sensor_context

    # The resources the daemon's sensors get, from the same settings, pointed at the sandbox.
    config = settings.load({**sandbox.env(), settings.SEC_USER_AGENT: AGENT})
    resources = {name: r for name, r in build_resources(config).items() if name in ("announcements", "sec")}
    instance = DagsterInstance.ephemeral()
    print(f"(1) sensor tick cost: {ticks} ticks each, in-process against the sandbox, the cursor of the first tick")
    for sensor in (sensors.coinspot_listing_sensor, sensors.sec_filing_sensor):
        started = time.perf_counter()
        first = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=None, resources=resources))
        first_s = time.perf_counter() - started
        seconds = []
        for _ in range(ticks):
            started = time.perf_counter()
            context = build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
            result = sensor.evaluate_tick(context)
            seconds.append(time.perf_counter() - started)
            if result.run_requests or (result.skip_message and "could not be read" in result.skip_message):
                raise SystemExit(f"{sensor.name}: a quiet tick should ask for nothing, got {result}")
        p95 = percentile(seconds, 95)
        print(f"  {sensor.name:24} first (history) tick {first_s:.3f} s ({len(first.run_requests)} run); "
              f"quiet ticks p50 {percentile(seconds, 50):.3f} s  p95 {p95:.3f} s  max {max(seconds):.3f} s   "
              f"target p95 < {TARGET_TICK_P95:.0f} s: {verdict(p95 < TARGET_TICK_P95)}")


# --- (2) publication to row and to filled order -----------------------------------------------


class LedgerWatcher(threading.Thread):
    """Polls the ledger every 0.2 s; records when each awaited article's catalyst_events row,
    and its paper order in state filled, first show."""

    def __init__(self, engine: sa.Engine):
        super().__init__(daemon=True)
        self.engine = engine
        self.awaited: set[str] = set()
        self.row_seen: dict[str, float] = {}
        self.fill_seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def expect(self, external_id: str) -> None:
        with self.lock:
            self.awaited.add(external_id)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                with self.lock:
                    rows_wanted = sorted(self.awaited - self.row_seen.keys())
                    fills_wanted = sorted(self.awaited - self.fill_seen.keys())
                rows, fills = set(), set()
                with self.engine.connect() as conn:
                    if rows_wanted:
                        rows = set(conn.execute(sa.select(CatalystEvent.external_id).where(
                            CatalystEvent.source == ANNOUNCEMENTS_SOURCE,
                            CatalystEvent.external_id.in_(rows_wanted))).scalars())
                    if fills_wanted:
                        fills = set(conn.execute(sa.select(orders.c.event_external_id).where(
                            orders.c.event_source == ANNOUNCEMENTS_SOURCE, orders.c.state == "filled",
                            orders.c.event_external_id.in_(fills_wanted))).scalars())
                now = time.time()
                with self.lock:
                    for external_id in rows:
                        self.row_seen.setdefault(external_id, now)
                    for external_id in fills:
                        self.fill_seen.setdefault(external_id, now)
                self.stopping.wait(POLL_SECONDS)
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def settled(self, article: dict, timeout: float) -> bool:
        """Its row and its fill are seen, or it is past the timeout."""
        with self.lock:
            return (article["id"] in self.row_seen and article["id"] in self.fill_seen) \
                or time.time() - article["published"] > timeout


def graphql_runs(url: str, run_key: str | None = None) -> list[dict]:
    where = f'(filter: {{tags: [{{key: "dagster/run_key", value: {json.dumps(run_key)}}}]}})' if run_key else ""
    data = stack.graphql(url, f"{{ runsOrError{where} {{ ... on Runs {{ results {{ runId status jobName "
                              "creationTime startTime endTime tags { key value } } } } }")
    return data["runsOrError"]["results"]


def history_run(url: str, timeout: float, log: Path) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in graphql_runs(url) if r["jobName"] == "catalyst_listings"
                 and any(t["key"] == "omc/history" for t in r["tags"])]
        if found and found[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            if found[0]["status"] != "SUCCESS":
                raise SystemExit(f"the history run ended {found[0]['status']}\n{log.read_text()[-4000:]}")
            return found[0]
        time.sleep(0.5)
    raise SystemExit(f"no finished history run within {timeout:.0f} s\n{log.read_text()[-4000:]}")


def listing_ticks(url: str) -> list[dict]:
    # A status filter: the unfiltered field goes through a loader keyed by the origin id, which dg dev changes.
    data = stack.graphql(url, "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name "
                              "sensorState { ticks(limit: 200, statuses: [SUCCESS, SKIPPED, FAILURE]) "
                              "{ status timestamp endTimestamp runKeys } } } } } } }")
    return next(s["sensorState"]["ticks"] for repo in data["repositoriesOrError"]["nodes"] for s in repo["sensors"]
                if s["name"] == "coinspot_listing_sensor")


def run_timeline(url: str, run_id: str) -> dict[str, float]:
    """Seconds since the epoch of the run's milestones: created, process start, the first event
    of each kind for the run ("RUN_START") and for each step ("STEP_START:trading_orders")."""
    data = stack.graphql(url, f"{{ runOrError(runId: {json.dumps(run_id)}) {{ ... on Run {{ creationTime "
                              "eventConnection(limit: 1000) { events { ... on MessageEvent "
                              "{ eventType timestamp message stepKey } } } } } }")
    run = data["runOrError"]
    marks = {"created": run["creationTime"]}
    for event in run["eventConnection"]["events"]:
        kind, stamp = event.get("eventType"), event.get("timestamp")
        if not (kind and stamp):
            continue
        when = int(stamp) / 1000
        kind = kind.replace("PIPELINE_", "RUN_")
        marks.setdefault(f"{kind}:{event['stepKey']}" if event.get("stepKey") else kind, when)
        if kind == "ENGINE_EVENT" and event.get("message", "").startswith("Started process"):
            marks.setdefault("process", when)
        if kind == "ENGINE_EVENT" and event.get("message", "").startswith("Step blocked by limit for pool"):
            marks.setdefault(f"POOL_BLOCKED:{event['stepKey']}", when)
    for step in POOLED:  # a step that never waited for its pool waited 0 s
        if f"STEP_START:{step}" in marks:
            marks.setdefault(f"POOL_BLOCKED:{step}", marks[f"STEP_START:{step}"])
    return marks


ANNOUNCEMENTS, SIGNALS, ORDERS, POSITIONS = ("coinspot_announcements", "trading_signals", "trading_orders",
                                             "trading_positions")
POOLED = (SIGNALS, ORDERS)  # the steps holding pool coinspot_private (limit 1, shared with the minutely trading job)
QUOTE_PATHS = ("/pubapi/v2/buyprice/", "/pubapi/v2/sellprice/")
# (label, from, to): keys of one article's timeline. The first rows chain from publication to
# the filled order seen; the indented ones are beside that chain.
SEGMENTS = [
    ("wait for the next sensor tick", "published", "tick"),
    ("tick: evaluate, create the run", "tick", "created"),
    ("run queue: created -> launched", "created", "RUN_STARTING"),
    ("launch: spawn the run process", "RUN_STARTING", "process"),
    ("run process: import, load code", "process", "RUN_START"),
    ("run start -> announcements step", "RUN_START", f"STEP_START:{ANNOUNCEMENTS}"),
    ("announcements: read, upsert", f"STEP_START:{ANNOUNCEMENTS}", f"ASSET_MATERIALIZATION:{ANNOUNCEMENTS}"),
    ("  event row seen - materialization", f"ASSET_MATERIALIZATION:{ANNOUNCEMENTS}", "row"),
    ("blocking checks -> signals step", f"ASSET_MATERIALIZATION:{ANNOUNCEMENTS}", f"STEP_START:{SIGNALS}"),
    ("  of which waiting for the pool", f"POOL_BLOCKED:{SIGNALS}", f"STEP_START:{SIGNALS}"),
    ("signals: strategy, risk gate", f"STEP_START:{SIGNALS}", f"STEP_SUCCESS:{SIGNALS}"),
    ("signals done -> orders step", f"STEP_SUCCESS:{SIGNALS}", f"STEP_START:{ORDERS}"),
    ("  of which waiting for the pool", f"POOL_BLOCKED:{ORDERS}", f"STEP_START:{ORDERS}"),
    ("orders: quote, paper fill", f"STEP_START:{ORDERS}", "filled_at"),
    ("filled order seen - filled_at", "filled_at", "filled"),
    ("  after the fill: positions step", f"STEP_START:{POSITIONS}", f"STEP_SUCCESS:{POSITIONS}"),
    ("  after the fill: fill -> run end", "filled", "RUN_SUCCESS"),
]


def article_timeline(url: str, article: dict, ticks: list[dict]) -> dict[str, float | None]:
    """What the benchmark saw of one article, and the tick and the run that handled it."""
    key = f"coinspot-article-{article['id']}"
    marks = {k: article.get(k) for k in ("published", "row", "filled", "filled_at")}
    tick = next((t for t in ticks if key in t["runKeys"]), None)
    if tick:
        marks["tick"] = tick["timestamp"]
    runs = graphql_runs(url, key)
    if runs:
        marks.update(run_timeline(url, runs[0]["runId"]))
    return marks


def table(rows: list[tuple[str, list[float | None]]], number: str) -> None:
    """One line per row: its label, the median of its values, then each value in article order."""
    width = max(len(label) for label, _ in rows)
    for label, values in rows:
        known = [v for v in values if v is not None]
        median = f"{statistics.median(known):6.2f}" if known else "     -"
        each = " ".join(format(v, number) if v is not None else "    -" for v in values)
        print(f"    {label:{width}}  {median}   [{each}]")


def within(marks: dict, step: str, at: float) -> bool:
    start, end = marks.get(f"STEP_START:{step}"), marks.get(f"STEP_SUCCESS:{step}")
    return bool(start and end) and start <= at <= end


def breakdown(url: str, articles: list[dict], interval: int, requests: list[dict]) -> None:
    ticks = listing_ticks(url)
    timelines = [article_timeline(url, article, ticks) for article in articles]
    print("  where the time went (seconds; median over the articles, then each article in order):")
    table([(label, [m[b] - m[a] if m.get(a) and m.get(b) else None for m in timelines])
           for label, a, b in SEGMENTS], "5.1f")

    quoted_at = [r["at"] for r in requests if r["path"].startswith(QUOTE_PATHS)]
    print(f"  CoinSpot quote requests ({', '.join(p + '<coin>' for p in QUOTE_PATHS)}) while each step ran, "
          "by any run (a run process makes at most OMC_COINSPOT_RATE_LIMIT a second):")
    table([(step, [sum(within(m, step, at) for at in quoted_at) if m.get(f"STEP_SUCCESS:{step}") else None
                   for m in timelines]) for step in (SIGNALS, ORDERS, POSITIONS)], "5d")

    # The minutely trading job reads new events too: say so when it, not the listing's run, filled the order.
    elsewhere = [a["id"] for a, m in zip(articles, timelines)
                 if m["filled_at"] and not within(m, ORDERS, m["filled_at"])]
    if elsewhere:
        print(f"  filled outside its listing run's {ORDERS} step (by another run): {', '.join(elsewhere)}")

    # The schedules' runs share the cores, the daemon's run queue and pool coinspot_private (the trading job).
    others: dict[str, list[dict]] = {}
    for run in graphql_runs(url):
        if run["jobName"] != "catalyst_listings" and run["creationTime"] >= articles[0]["published"]:
            others.setdefault(run["jobName"], []).append(run)

    def runs_of(job: str, runs: list[dict]) -> str:
        took = [r["endTime"] - r["startTime"] for r in runs if r["startTime"] and r["endTime"]]
        return f"{job} {len(runs)}" + (f" ({statistics.median(took):.1f} s)" if took else "")

    print("  the schedules' runs created while publishing (how many, median seconds started -> ended): "
          + (", ".join(runs_of(job, runs) for job, runs in sorted(others.items())) or "none"))

    # The daemon's sensor loop runs every 5 s and skips a sensor whose last tick started less than
    # its minimum interval ago: the gaps between ticks show the cadence the sensor really got.
    first = min(a["published"] for a in articles) - GAP_SECONDS[1]
    starts = sorted(t["timestamp"] for t in ticks if t["timestamp"] >= first)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    if gaps:
        print(f"  listing sensor tick gaps while publishing (interval {interval} s): p50 {percentile(gaps, 50):.1f} s, "
              f"mean {statistics.mean(gaps):.1f} s, max {max(gaps):.1f} s; "
              f"{sum(g > 1.5 * interval for g in gaps)} of {len(gaps)} longer than 1.5x the interval")


def risk_room(env: dict[str, str], articles: int) -> dict[str, str]:
    """Risk limits that let every benchmark listing buy: the defaults allow 10 buys of
    OMC_TRADE_AUD a day, and a refused buy would be no latency to measure."""
    config = settings.load(env)
    spend = config.trade_aud * articles
    return {
        settings.RISK_DAILY_SPEND_AUD: str(max(config.risk_daily_spend_aud, spend)),
        settings.RISK_MAX_TOTAL_EXPOSURE_AUD: str(max(config.risk_max_total_exposure_aud, spend)),
        settings.RISK_MAX_OPEN_POSITIONS: str(max(config.risk_max_open_positions, articles)),
        settings.PAPER_START_AUD: str(max(config.paper_start_aud, spend)),
    }


def report(name: str, latencies: list[float], published: int) -> None:
    if not latencies:
        print(f"  publication -> {name}: none within the timeout")
        return
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    print(f"  publication -> {name}: p50 {p50:.2f} s (target <= {TARGET_P50:.0f} s: {verdict(p50 <= TARGET_P50)}), "
          f"p95 {p95:.2f} s (target <= {TARGET_P95:.0f} s: {verdict(p95 <= TARGET_P95)}), "
          f"max {max(latencies):.2f} s; {len(latencies)} of {published}")


def publish_listings(sandbox: Sandbox, engine: sa.Engine, args, rng: random.Random) -> list[dict]:
    """Publish the listings, each of a fresh coin priced first; wait until each has its row and
    its filled order or is past the timeout. Each article says when it was published, when its
    row and its filled order were seen (None: not within the timeout)."""
    watcher = LedgerWatcher(engine)
    watcher.start()
    published: list[dict] = []
    try:
        for i in range(args.articles):
            time.sleep(rng.uniform(*GAP_SECONDS))
            name, symbol = f"Bench Token {i}", f"BT{i}"
            sandbox.coinspot.set_price(symbol, bid=BID, ask=ASK, last=ASK)
            title = rng.choice(TITLES).format(name=name, sym=symbol)
            article = sandbox.zendesk.publish(title, f"<p>{name} trades on CoinSpot from today.</p>")
            published.append({"id": str(article["id"]), "title": title, "published": time.time()})
            watcher.expect(str(article["id"]))
        while watcher.error is None and not all(watcher.settled(a, args.timeout) for a in published):
            time.sleep(POLL_SECONDS)
    finally:
        watcher.stopping.set()
        watcher.join()
    if watcher.error:
        raise watcher.error
    for a in published:
        for name, seen in (("row", watcher.row_seen), ("filled", watcher.fill_seen)):
            at = seen.get(a["id"])
            a[name] = at if at is not None and at - a["published"] <= args.timeout else None  # late counts as lost
    return published


def not_exactly_once(url: str, engine: sa.Engine, published: list[dict]) -> list[str]:
    """What is wrong with each article's run, row and order: other than one of each, an order
    not filled, or filled at other than the sandbox's ask. Notes each order's filled_at."""
    ids = [a["id"] for a in published]
    with engine.connect() as conn:
        rows = dict(conn.execute(
            sa.select(CatalystEvent.external_id, sa.func.count()).where(
                CatalystEvent.source == ANNOUNCEMENTS_SOURCE, CatalystEvent.external_id.in_(ids))
            .group_by(CatalystEvent.external_id)).all())
        placed = conn.execute(sa.select(orders).where(
            orders.c.event_source == ANNOUNCEMENTS_SOURCE, orders.c.event_external_id.in_(ids))).all()
    problems = []
    for a in published:
        runs = graphql_runs(url, f"coinspot-article-{a['id']}")
        if a["row"] is not None and len(runs) != 1:
            problems.append(f"article {a['id']}: {len(runs)} runs, expected exactly one")
        if rows.get(a["id"], 0) > 1:
            problems.append(f"article {a['id']}: {rows[a['id']]} rows, expected one")
        found = [o for o in placed if o.event_external_id == a["id"]]
        if len(found) > 1:
            problems.append(f"article {a['id']}: {len(found)} orders, expected one")
        for order in found:
            if order.state != "filled":
                problems.append(f"article {a['id']}: order {order.id} {order.state} ({order.reason})")
            elif order.rate != Decimal(ASK):
                problems.append(f"article {a['id']}: order {order.id} filled at {order.rate}, the ask was {ASK}")
        a["filled_at"] = next((o.filled_at.timestamp() for o in found if o.filled_at), None)
    return problems


def publication_to_fill(args, engine: sa.Engine, workdir: Path, instance: Path, instance_env: dict[str, str],
                        where: str) -> bool:
    with Sandbox() as sandbox:
        env = {
            **sandbox.env(),
            settings.DATABASE_URL: engine.url.render_as_string(hide_password=False),
            settings.LISTING_SENSOR_SECONDS: str(args.sensor_seconds),
            settings.SEC_USER_AGENT: AGENT,
            settings.COINSPOT_WATCHLIST: "btc",
        }
        env.update(risk_room(env, args.articles))
        filing_seconds = settings.load(env).filing_sensor_seconds
        print(f"(2) publication -> catalyst_events row -> filled paper order: {args.articles} listings of fresh coins "
              f"(sandbox ask {ASK}), gaps {GAP_SECONDS[0]:.0f}-{GAP_SECONDS[1]:.0f} s (seed {args.seed}); listing "
              f"sensor every {args.sensor_seconds} s (OMC_LISTING_SENSOR_SECONDS), filing sensor every "
              f"{filing_seconds} s; {dequeue_interval(instance)}")
        print(f"  {where}")
        started = time.perf_counter()
        with stack.dagster_dev(workdir, {**env, **instance_env}, instance=instance) as url:
            print(f"  dg dev serving after {time.perf_counter() - started:.1f} s")
            history = history_run(url, args.timeout, workdir / "dg.log")
            print(f"  history run {history['runId'][:8]} done {time.perf_counter() - started:.1f} s after start")
            published = publish_listings(sandbox, engine, args, random.Random(args.seed))
            failures = []
            for a in published:
                row = f"{a['row'] - a['published']:6.2f} s" if a["row"] else "  NONE  "
                fill = f"{a['filled'] - a['published']:6.2f} s" if a["filled"] else "  NONE  "
                print(f"  article {a['id']}: row {row}  filled order {fill}   {a['title']}")
                for name, what in (("row", "catalyst_events row"), ("filled", "filled order")):
                    if a[name] is None:
                        failures.append(f"article {a['id']} ({a['title']!r}): no {what} within {args.timeout:.0f} s "
                                        "of its publication")
            time.sleep(2 * args.sensor_seconds)  # a duplicate run or order would show by now
            failures += not_exactly_once(url, engine, published)
            report("catalyst_events row", [a["row"] - a["published"] for a in published if a["row"]], len(published))
            report("filled paper order", [a["filled"] - a["published"] for a in published if a["filled"]],
                   len(published))
            breakdown(url, published, args.sensor_seconds, list(sandbox.server.requests))
    print(machine_line())
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return not failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=50, help="quiet ticks per sensor in (1); 0 skips (1)")
    parser.add_argument("--articles", type=int, default=10, help="listings published in (2); 0 skips (2)")
    parser.add_argument("--sensor-seconds", type=int, default=5, help="OMC_LISTING_SENSOR_SECONDS for (2), at least 5")
    parser.add_argument("--seed", type=int, default=7, help="seed of the gaps between publications")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before an article counts as lost")
    parser.add_argument("--instance", choices=("postgres", "sqlite"), default="postgres",
                        help="(2) Dagster's runs, event logs and schedules: on a scratch PostgreSQL database "
                             "(deploy/postgres/dagster.yaml, the default) or in SQLite files (dagster.yaml)")
    parser.add_argument("--postgres", action="store_true", help="(2) on a scratch PostgreSQL ledger instead of SQLite")
    args = parser.parse_args()
    if args.sensor_seconds < 5:
        parser.error("--sensor-seconds must be at least 5 (OMC_LISTING_SENSOR_SECONDS' minimum)")

    print(machine_line())
    if args.ticks:
        with Sandbox() as sandbox:
            tick_cost(sandbox, args.ticks)
    if not args.articles:
        return 0
    with contextlib.ExitStack() as stack_:
        if args.instance == "postgres":
            database = stack_.enter_context(scratch_database())
            instance, instance_env = stack.POSTGRES_INSTANCE, {
                "DAGSTER_POSTGRES_URL": database.set(drivername="postgresql+psycopg2").render_as_string(
                    hide_password=False)}
            where = (f"Dagster instance: PostgreSQL, scratch database {database.database} "
                     f"({instance.relative_to(stack.ROOT)})")
        else:
            instance, instance_env = stack.EMBEDDED_INSTANCE, {}
            where = f"Dagster instance: SQLite files in a temporary folder ({instance.relative_to(stack.ROOT)})"
        engine = stack_.enter_context(scratch_postgres() if args.postgres else scratch_sqlite())
        where += (f"; ledger: PostgreSQL, scratch database {engine.url.database}" if args.postgres
                  else "; ledger: SQLite, a temporary file")
        workdir = Path(stack_.enter_context(tempfile.TemporaryDirectory(prefix="omc_bench_stack_")))
        ok = publication_to_fill(args, engine, workdir, instance, instance_env, where)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
