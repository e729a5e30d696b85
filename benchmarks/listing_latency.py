"""Listing latency: what a sensor tick costs, and how long a new article takes to reach the ledger.

    python benchmarks/listing_latency.py [--ticks 50] [--articles 10] [--sensor-seconds 5] [--seed 7]

(1) Tick cost: evaluates coinspot_listing_sensor and sec_filing_sensor ``--ticks``
times each in-process against the sandbox, with the cursor their first tick (the
history tick) left, and prints p50/p95/max seconds per tick (target p95 < 1 s).

(2) Publication-to-row latency: starts the sandbox and ``dg dev`` (web UI and
daemon, the project's dagster.yaml) with OMC_LISTING_SENSOR_SECONDS=--sensor-seconds
and a scratch SQLite ledger (``--postgres``: a scratch PostgreSQL database), waits
for the listing sensor's history run, then publishes ``--articles`` articles at
random moments (gaps of 3-15 s, seeded) and measures, for each, the seconds from
publication to its ``catalyst_events`` row (the database polled every 0.2 s).
Prints each, p50 (target < 8 s) and p95 (target < 15 s), and where the time went,
from the sensor tick and the run's events. Exits 1 if an article never lands within
``--timeout`` seconds, or lands with other than exactly one run and one row.
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
from pathlib import Path

import sqlalchemy as sa
import yaml
from _common import scratch_postgres, scratch_sqlite

from omc_pipelines import sensors, settings
from omc_pipelines.db.models import CatalystEvent
from omc_pipelines.definitions import build_resources
from omc_pipelines.ledgers.catalyst import ANNOUNCEMENTS_SOURCE
from omc_pipelines.sandbox import Sandbox, stack

TARGET_TICK_P95 = 1.0
TARGET_P50, TARGET_P95 = 8.0, 15.0
GAP_SECONDS = (3.0, 15.0)
POLL_SECONDS = 0.2
AGENT = "OMC benchmark bench@example.com"
TITLES = ["New Coin Listing: {name} ({sym})", "Now listed on CoinSpot: {name} ({sym})",
          "Delisting Notice: {name} ({sym})", "Scheduled maintenance: {name} ({sym}) wallet upgrade"]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1))] if ordered else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def dequeue_interval() -> str:
    config = yaml.safe_load((stack.ROOT / "dagster.yaml").read_text()) or {}
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


# --- (2) publication to row --------------------------------------------------------------------


class RowWatcher(threading.Thread):
    """Polls catalyst_events every 0.2 s; records when each awaited article's row first shows."""

    def __init__(self, engine: sa.Engine):
        super().__init__(daemon=True)
        self.engine = engine
        self.pending: set[str] = set()
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def expect(self, external_id: str) -> None:
        with self.lock:
            self.pending.add(external_id)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                with self.lock:
                    wanted = sorted(self.pending)
                if wanted:
                    query = sa.select(CatalystEvent.external_id).where(
                        CatalystEvent.source == ANNOUNCEMENTS_SOURCE, CatalystEvent.external_id.in_(wanted))
                    with self.engine.connect() as conn:
                        found = set(conn.execute(query).scalars())
                    now = time.time()
                    with self.lock:
                        for external_id in found & self.pending:
                            self.seen[external_id] = now
                        self.pending -= found
                self.stopping.wait(POLL_SECONDS)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def graphql_runs(url: str, run_key: str | None = None) -> list[dict]:
    where = f'(filter: {{tags: [{{key: "dagster/run_key", value: {json.dumps(run_key)}}}]}})' if run_key else ""
    data = stack.graphql(url, f"{{ runsOrError{where} {{ ... on Runs {{ results {{ runId status jobName "
                              "creationTime tags { key value } } } } }")
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
    """Seconds since the epoch of the run's milestones: created, the first event of each kind, process start."""
    data = stack.graphql(url, f"{{ runOrError(runId: {json.dumps(run_id)}) {{ ... on Run {{ creationTime "
                              "eventConnection(limit: 1000) { events { ... on MessageEvent "
                              "{ eventType timestamp message } } } } } }")
    run = data["runOrError"]
    marks = {"created": run["creationTime"]}
    for event in run["eventConnection"]["events"]:
        kind, stamp = event.get("eventType"), event.get("timestamp")
        if not (kind and stamp):
            continue
        when = int(stamp) / 1000
        marks.setdefault(kind.replace("PIPELINE_", "RUN_"), when)  # the first of each kind
        if kind == "ENGINE_EVENT" and event.get("message", "").startswith("Started process"):
            marks.setdefault("process", when)
    return marks


SEGMENTS = [
    # (label, from, to): keys of one article's timeline
    ("wait for the next sensor tick", "published", "tick"),
    ("tick: evaluate, create the run", "tick", "created"),
    ("run queue: created -> launched", "created", "RUN_STARTING"),
    ("launch: spawn the run process", "RUN_STARTING", "process"),
    ("run process: import, load code", "process", "RUN_START"),
    ("run start -> step start", "RUN_START", "STEP_START"),
    ("step: read source, upsert", "STEP_START", "ASSET_MATERIALIZATION"),
    ("row seen - materialization", "ASSET_MATERIALIZATION", "row"),
]


def breakdown(url: str, articles: list[dict], interval: int) -> None:
    ticks = listing_ticks(url)
    rows = []
    for article in articles:
        key = f"coinspot-article-{article['id']}"
        tick = next((t for t in ticks if key in t["runKeys"]), None)
        runs = graphql_runs(url, key)
        marks = {"published": article["published"], "row": article.get("row")}
        if tick:
            marks["tick"] = tick["timestamp"]
        if runs:
            marks.update(run_timeline(url, runs[0]["runId"]))
        rows.append([(marks[b] - marks[a]) if marks.get(a) and marks.get(b) else None for _, a, b in SEGMENTS])
    print("  where the time went (seconds; median over the articles, then each article in order):")
    width = max(len(label) for label, _, _ in SEGMENTS)
    for i, (label, _, _) in enumerate(SEGMENTS):
        values = [r[i] for r in rows if r[i] is not None]
        median = f"{statistics.median(values):6.2f}" if values else "     -"
        each = " ".join(f"{v:5.1f}" if v is not None else "    -" for v in (r[i] for r in rows))
        print(f"    {label:{width}}  {median}   [{each}]")
    # The daemon's sensor loop runs every 5 s and skips a sensor whose last tick started less than
    # its minimum interval ago: the gaps between ticks show the cadence the sensor really got.
    first = min(a["published"] for a in articles) - GAP_SECONDS[1]
    starts = sorted(t["timestamp"] for t in ticks if t["timestamp"] >= first)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    if gaps:
        print(f"  listing sensor tick gaps while publishing (interval {interval} s): p50 {percentile(gaps, 50):.1f} s, "
              f"mean {statistics.mean(gaps):.1f} s, max {max(gaps):.1f} s; "
              f"{sum(g > 1.5 * interval for g in gaps)} of {len(gaps)} longer than 1.5x the interval")


def publication_to_row(args, database_url: str, engine: sa.Engine, workdir: Path) -> bool:
    rng = random.Random(args.seed)
    with Sandbox() as sandbox:
        env = {
            **sandbox.env(),
            settings.DATABASE_URL: database_url,
            settings.LISTING_SENSOR_SECONDS: str(args.sensor_seconds),
            settings.SEC_USER_AGENT: AGENT,
            settings.COINSPOT_WATCHLIST: "btc",
        }
        filing_seconds = settings.load(env).filing_sensor_seconds
        print(f"(2) publication -> catalyst_events row: {args.articles} articles, gaps {GAP_SECONDS[0]:.0f}-"
              f"{GAP_SECONDS[1]:.0f} s (seed {args.seed}); listing sensor every {args.sensor_seconds} s "
              f"(OMC_LISTING_SENSOR_SECONDS), filing sensor every {filing_seconds} s; {dequeue_interval()}; "
              f"ledger on {engine.dialect.name}")
        started = time.perf_counter()
        with stack.dagster_dev(workdir, env) as url:
            print(f"  dg dev serving after {time.perf_counter() - started:.1f} s")
            history = history_run(url, args.timeout, workdir / "dg.log")
            print(f"  history run {history['runId'][:8]} done {time.perf_counter() - started:.1f} s after start")
            watcher = RowWatcher(engine)
            watcher.start()
            published: list[dict] = []
            try:
                for i in range(args.articles):
                    time.sleep(rng.uniform(*GAP_SECONDS))
                    name = f"Bench Token {i}"
                    title = rng.choice(TITLES).format(name=name, sym=f"BT{i}")
                    article = sandbox.zendesk.publish(title, f"<p>{name} news.</p>")
                    published.append({"id": str(article["id"]), "title": title, "published": time.time()})
                    watcher.expect(str(article["id"]))
                # Until every article has landed or is past the timeout.
                while watcher.error is None:
                    with watcher.lock:
                        now = time.time()
                        if all(a["id"] in watcher.seen or now - a["published"] > args.timeout for a in published):
                            break
                    time.sleep(POLL_SECONDS)
            finally:
                watcher.stopping.set()
                watcher.join()
            if watcher.error:
                raise watcher.error

            latencies, failures = [], []
            for a in published:
                row_at = watcher.seen.get(a["id"])
                if row_at is not None and row_at - a["published"] > args.timeout:
                    row_at = None  # landed, but too late to count
                a["row"] = row_at
                if row_at is None:
                    failures.append(f"article {a['id']} ({a['title']!r}): no row {args.timeout:.0f} s after it")
                    print(f"  article {a['id']}: NO ROW within {args.timeout:.0f} s   {a['title']}")
                    continue
                latencies.append(row_at - a["published"])
                print(f"  article {a['id']}: {row_at - a['published']:6.2f} s   {a['title']}")
            time.sleep(2 * args.sensor_seconds)  # a duplicate run would show by now
            for a in published:
                runs = graphql_runs(url, f"coinspot-article-{a['id']}")
                if a["row"] is not None and len(runs) != 1:
                    failures.append(f"article {a['id']}: {len(runs)} runs, expected exactly one")
            with engine.connect() as conn:
                counts = dict(conn.execute(
                    sa.select(CatalystEvent.external_id, sa.func.count()).where(
                        CatalystEvent.source == ANNOUNCEMENTS_SOURCE,
                        CatalystEvent.external_id.in_([a["id"] for a in published]))
                    .group_by(CatalystEvent.external_id)).all())
            failures += [f"article {k}: {n} rows" for k, n in counts.items() if n != 1]

            if latencies:
                p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
                print(f"  latency p50 {p50:.2f} s   target < {TARGET_P50:.0f} s: {verdict(p50 < TARGET_P50)}")
                print(f"  latency p95 {p95:.2f} s   target < {TARGET_P95:.0f} s: {verdict(p95 < TARGET_P95)}"
                      f"   (max {max(latencies):.2f} s, {len(latencies)} of {len(published)} landed)")
            breakdown(url, published, args.sensor_seconds)
    print(machine_line())
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return not failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=50, help="quiet ticks per sensor in (1); 0 skips (1)")
    parser.add_argument("--articles", type=int, default=10, help="articles published in (2); 0 skips (2)")
    parser.add_argument("--sensor-seconds", type=int, default=5, help="OMC_LISTING_SENSOR_SECONDS for (2), at least 5")
    parser.add_argument("--seed", type=int, default=7, help="seed of the gaps between publications")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before an article counts as lost")
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
        engine = stack_.enter_context(scratch_postgres() if args.postgres else scratch_sqlite())
        workdir = Path(stack_.enter_context(tempfile.TemporaryDirectory(prefix="omc_bench_stack_")))
        ok = publication_to_row(args, engine.url.render_as_string(hide_password=False), engine, workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
