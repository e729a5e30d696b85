"""Backfill benchmark: a year of hourly candles, the project's build_candles against one SQL statement.

    python benchmarks/backfill.py [--trades 1000000] [--coins 20] [--days 365] [--profile]

Loads trades spread over [2025-01-01, +days) into a migrated scratch PostgreSQL
database (not timed), then times (a) what a single-run backfill of
coinspot_hourly_candles runs: ``with engine.begin() as conn: build_candles(conn,
start, end, now)``, in a fresh subprocess whose peak RSS is measured, and (b) the
same aggregation as one INSERT ... SELECT ... GROUP BY in PostgreSQL. Prints both
wall times, the ratio project/SQL (target <= 2.0), peak memory (target < 500 MB),
and exits 1 if the two sets of candles differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from _common import generate_trades, machine_facts, proc_status, reset_peak_rss, scratch_postgres, utc

from omc_pipelines.db import get_engine, upsert
from omc_pipelines.db.models import Trade
from omc_pipelines.ledgers.exchange.assets import TRADE_KEY, build_candles

TARGET_RATIO, TARGET_PEAK_MB = 2.0, 500
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--coins", type=int, default=20, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--days", type=int, default=365)
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
