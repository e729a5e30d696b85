"""Backfill benchmark: a year of hourly candles, the project's build_candles against one SQL statement,
and the whole backfill end to end through Dagster.

    python benchmarks/backfill.py [--trades 1000000] [--coins 20] [--days 365] [--hourly-days 7] [--profile]

Loads trades spread over [2025-01-01, +days) into a migrated scratch PostgreSQL
database (not timed), then times (a) what a single-run backfill of
coinspot_hourly_candles runs: ``with engine.begin() as conn: build_candles(conn,
start, end, now)``, in a fresh subprocess whose peak RSS is measured, and (b) the
same aggregation as one INSERT ... SELECT ... GROUP BY in PostgreSQL. Prints both
wall times, the ratio project/SQL (target <= 2.0), peak memory (target < 500 MB),
and exits 1 if the two sets of candles differ.

Then (c) the backfill as a user runs it, end to end: ``dg launch --job
exchange_hourly_candles --partition-range FIRST...LAST`` in a subprocess (code loading
included), once on the embedded instance (./dagster.yaml, SQLite) and once on the
production one (deploy/postgres/dagster.yaml, a scratch PostgreSQL database), each
checked for one materialization per week and candles equal to (b) (target <= 30 s each
for a year). And (d) what the same backfill cost with hourly partitions, the design
before (one event pair per hour): ``--hourly-days`` days of hourly partitions on a SQLite
instance, per partition, and a year at that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from _common import generate_trades, machine_facts, proc_status, reset_peak_rss, scratch_database, scratch_postgres, utc

from omc_pipelines.db import get_engine, upsert
from omc_pipelines.db.models import Trade
from omc_pipelines.ledgers.exchange.assets import TRADE_KEY, build_candles

TARGET_RATIO, TARGET_PEAK_MB, TARGET_END_TO_END_S = 2.0, 500, 30.0
ROOT = Path(__file__).resolve().parents[1]
START = utc("2025-01-01")
CHILD_URL = "OMC_BENCH_CHILD_URL"  # the scratch URL reaches the child by environment, not argv

SQL_CANDLES = """
INSERT INTO candles_sql (coin, market, hour_start, open, high, low, close, volume, quote_volume,
                         trade_count, source, computed_at)
SELECT coin, market, date_trunc('hour', sold_at, 'UTC'),
       (array_agg(rate ORDER BY sold_at))[1], max(rate), min(rate),
       (array_agg(rate ORDER BY sold_at DESC))[1],
       sum(amount), sum(total), count(*), 'trades', :computed_at
FROM exchange_trades
WHERE sold_at >= :start AND sold_at < :end
GROUP BY coin, market, date_trunc('hour', sold_at, 'UTC')
"""

# Rows missing on either side, and rows whose values differ beyond a relative 1e-9.
COMPARE = """
SELECT count(*) FILTER (WHERE p.id IS NULL OR s.id IS NULL),
       count(*) FILTER (WHERE p.id IS NOT NULL AND s.id IS NOT NULL AND (
           p.trade_count <> s.trade_count OR p.source <> s.source OR {values}))
FROM exchange_candles p FULL JOIN candles_sql s USING (coin, market, hour_start)
""".format(values=" OR ".join(
    f"abs(p.{c} - s.{c}) > 1e-9 * greatest(1, abs(s.{c}))"
    for c in ("open", "high", "low", "close", "volume", "quote_volume")
))


def child(start: datetime, end: datetime, computed_at: datetime, profile: bool) -> None:
    """Runs in a fresh process: build_candles once, report time and memory as JSON."""
    import gc

    engine = get_engine(os.environ[CHILD_URL])
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the pool is warm, as in a running worker
    gc.collect()
    reset_peak_rss()
    baseline = proc_status("VmRSS")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    with engine.begin() as conn:
        counts = build_candles(conn, start, end, computed_at)
    seconds = time.perf_counter() - started
    if profiler:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    print(json.dumps({"seconds": seconds, "baseline_kb": baseline, "peak_kb": proc_status("VmHWM"), **counts}))


def run_project(engine: sa.Engine, start, end, computed_at, profile: bool) -> dict:
    args = [sys.executable, __file__, "--child", start.isoformat(), end.isoformat(), computed_at.isoformat()]
    env = {**os.environ, CHILD_URL: engine.url.render_as_string(hide_password=False)}
    done = subprocess.run(args + (["--profile"] if profile else []), env=env, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def dagster_home(instance_file: Path, folder: Path) -> Path:
    """A scratch DAGSTER_HOME from one of the project's instance files, its local files in ``folder``."""
    home = folder / "home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_file.read_text().replace(".omc/dagster", str(folder / "dagster")))
    return home


def launch_backfill(home: Path, ledger_url: str, first: str, last: str, extra_env: dict | None = None) -> float:
    """``dg launch`` over [first, last] as a user types it; its wall time in seconds."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "OMC_DATABASE_URL": ledger_url, **(extra_env or {})}
    dg = str(Path(sys.executable).with_name("dg"))
    started = time.perf_counter()
    done = subprocess.run([dg, "launch", "--job", "exchange_hourly_candles", "--partition-range", f"{first}...{last}"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dg launch failed ({done.returncode}):\n{done.stdout[-3000:]}")
    return seconds


def date_of(key: str):
    return datetime.fromisoformat(key).date()


def materialized_weeks(home: Path, env: dict | None = None) -> int:
    from dagster import AssetKey, DagsterInstance

    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            return len(instance.get_materialized_partitions(AssetKey("coinspot_hourly_candles")))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def hourly_partitions_cost(ledger_url: str, days: int) -> float:
    """The design before: the same asset over hourly partitions, ``days`` of them, in process on a
    SQLite instance; seconds per partition."""
    from dagster import DagsterInstance, HourlyPartitionsDefinition, materialize

    from omc_pipelines.ledgers.exchange.assets import coinspot_hourly_candles
    from omc_pipelines.resources import LedgerDatabase

    hourly = coinspot_hourly_candles.map_asset_specs(
        lambda spec: spec.replace_attributes(partitions_def=HourlyPartitionsDefinition("2025-01-01-00:00", timezone="UTC")))
    last = START + timedelta(days=days) - timedelta(hours=1)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with tempfile.TemporaryDirectory(prefix="omc_bench_") as folder:
        Path(folder, "dagster.yaml").write_text(f"storage:\n  sqlite:\n    base_dir: {folder}/storage\n"
                                                "telemetry:\n  enabled: false\n")
        with DagsterInstance.from_config(folder) as instance:
            started = time.perf_counter()
            result = materialize([hourly], instance=instance, run_config=quiet,
                                 resources={"ledger_db": LedgerDatabase(url=ledger_url, auto_migrate=False)},
                                 tags={"dagster/asset_partition_range_start": f"{START:%Y-%m-%d-%H:%M}",
                                       "dagster/asset_partition_range_end": f"{last:%Y-%m-%d-%H:%M}"})
            seconds = time.perf_counter() - started
    assert result.success
    return seconds / (days * 24)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--coins", type=int, default=20, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--hourly-days", type=int, default=7,
                        help="days of hourly partitions to time for the design before (0: skip)")
    parser.add_argument("--profile", action="store_true", help="cProfile build_candles (slows it; to stderr)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*(datetime.fromisoformat(a) for a in args.child), profile=args.profile)
        return 0

    end = START + timedelta(days=args.days)
    hours = args.days * 24
    computed_at = datetime.now(timezone.utc).replace(microsecond=0)
    started = time.perf_counter()
    rows = generate_trades(args.trades, args.coins, START, end)
    print(f"Backfill: {hours:,} hourly partitions [{START:%Y-%m-%d}, {end:%Y-%m-%d}), "
          f"{len(rows):,} trades of {args.coins} coins (generated in {time.perf_counter() - started:.1f} s)")

    failures = []
    with scratch_postgres() as engine:
        print(machine_facts(engine))
        started = time.perf_counter()
        for i in range(0, len(rows), 100_000):
            with engine.begin() as conn:
                upsert(conn, Trade.__table__, rows[i : i + 100_000], TRADE_KEY)
        del rows
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE exchange_trades")
            conn.exec_driver_sql("CREATE TABLE candles_sql (LIKE exchange_candles INCLUDING ALL)")
            conn.exec_driver_sql("SELECT count(*), sum(rate) FROM exchange_trades")  # warm the cache
        print(f"loaded with upsert and vacuumed in {time.perf_counter() - started:.1f} s (not timed)")

        started = time.perf_counter()
        with engine.begin() as conn:
            sql_rows = conn.execute(sa.text(SQL_CANDLES), {"start": START, "end": end, "computed_at": computed_at}).rowcount
        sql_s = time.perf_counter() - started

        project = run_project(engine, START, end, computed_at, args.profile)

        with engine.connect() as conn:
            missing, differing = conn.exec_driver_sql(COMPARE).one()
            project_rows, covered, first, last = conn.exec_driver_sql(
                "SELECT count(*), count(DISTINCT hour_start), min(hour_start), max(hour_start) FROM exchange_candles"
            ).one()

        # (c) end to end through Dagster, on each instance; each run replaces the candles (b) compared.
        ledger_url = engine.url.render_as_string(hide_password=False)
        # The candles' partitions are weeks, keyed by their Mondays: the weeks that hold the range.
        last_day = end - timedelta(days=1)
        first_week, last_week = (f"{d.date() - timedelta(days=d.weekday())}" for d in (START, last_day))
        weeks = (date_of(last_week) - date_of(first_week)).days // 7 + 1
        end_to_end = {}
        with tempfile.TemporaryDirectory(prefix="omc_bench_") as folder:
            home = dagster_home(ROOT / "dagster.yaml", Path(folder) / "sqlite")
            end_to_end["embedded instance (SQLite)"] = (launch_backfill(home, ledger_url, first_week, last_week),
                                                        materialized_weeks(home))
            with scratch_database() as dagster_db:
                storage = {"DAGSTER_POSTGRES_URL": dagster_db.set(drivername="postgresql+psycopg2")
                           .render_as_string(hide_password=False)}
                home = dagster_home(ROOT / "deploy" / "postgres" / "dagster.yaml", Path(folder) / "postgres")
                end_to_end["production instance (PostgreSQL)"] = (
                    launch_backfill(home, ledger_url, first_week, last_week, storage), materialized_weeks(home, storage))
        with engine.connect() as conn:
            after_dagster = conn.exec_driver_sql(COMPARE).one()
        per_hour = hourly_partitions_cost(ledger_url, args.hourly_days) if args.hourly_days else None

    peak_mb, baseline_mb = project["peak_kb"] / 1024, project["baseline_kb"] / 1024
    ratio = project["seconds"] / sql_s
    print(f"project build_candles, one call over the range (subprocess): {project['seconds']:7.2f} s  "
          f"({project['from_trades']:,} candles from trades, {project['from_snapshots']:,} from snapshots)")
    print(f"one SQL statement (INSERT ... SELECT ... GROUP BY hour):      {sql_s:7.2f} s  ({sql_rows:,} candles)")
    print(f"ratio project/SQL (wall time): {ratio:.2f}   target <= {TARGET_RATIO}: "
          f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}"
          + ("   (under cProfile: not comparable)" if args.profile else ""))
    print(f"peak RSS of the build_candles process: {peak_mb:.0f} MB (baseline before the call {baseline_mb:.0f} MB, "
          f"+{peak_mb - baseline_mb:.0f} MB during it)   target < {TARGET_PEAK_MB} MB: "
          f"{'met' if peak_mb < TARGET_PEAK_MB else 'MISSED'}")
    print(f"partitions: {covered:,} of {hours:,} hours have candles ({first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC)")

    for name, (seconds, materialized) in end_to_end.items():
        print(f"end to end, dg launch over {args.days} days ({weeks} weekly partitions) on the {name}: {seconds:7.2f} s "
              f"({seconds / sql_s:.1f} x the SQL statement; {materialized} partitions materialized)   "
              f"target <= {TARGET_END_TO_END_S:.0f} s: {'met' if seconds <= TARGET_END_TO_END_S else 'MISSED'}")
        if materialized != weeks:
            failures.append(f"{name}: {materialized} week partitions materialized, not {weeks}")
    if per_hour is not None:
        print(f"the design before, hourly partitions ({args.hourly_days * 24} of them, in process, SQLite instance): "
              f"{per_hour * 1000:.0f} ms per partition, a year of hours at that rate {per_hour * 8760:.0f} s")
    if any(after_dagster):
        failures.append(f"after the Dagster runs: {after_dagster[0]:,} candles on one side only, "
                        f"{after_dagster[1]:,} with other values than the SQL statement's")

    if missing or differing or project_rows != sql_rows or project["from_trades"] != sql_rows:
        failures.append(f"candles differ: project {project_rows:,} rows, SQL {sql_rows:,}; "
                        f"{missing:,} on one side only, {differing:,} with other values")
    if covered > hours or (first and first < START) or (last and last >= end):
        failures.append("candles outside the backfilled range")
    print("candles: project == SQL: " + ("ok" if not failures else "WRONG"))
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
