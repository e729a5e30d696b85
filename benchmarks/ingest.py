"""Ingest benchmark: the project's trade upsert against a raw COPY of the same rows.

    python benchmarks/ingest.py [--rows 1000000] [--coins 20] [--batch 100000] [--no-sqlite]

Prints rows/s of (a) upsert(conn, Trade.__table__, rows, TRADE_KEY) into a migrated
scratch PostgreSQL database, (b) a raw psycopg COPY of the same rows into a copy of
exchange_trades with the same constraints and indexes, their ratio (target >= 0.5),
a second, idempotent pass of (a), and (a) on SQLite. Each batch is one transaction,
as one coinspot_trades run is. (a) and (b) alternate batch by batch, so drift in a
noisy machine's load falls on both. Exits 1 if the row counts are wrong.
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import generate_trades, machine_facts, scratch_postgres, scratch_sqlite, utc

from omc_pipelines.db import upsert
from omc_pipelines.db.models import Trade
from omc_pipelines.ledgers.exchange.assets import TRADE_KEY

TARGET_RATIO = 0.5


def project_batch(engine, rows) -> tuple[float, int]:
    started = time.perf_counter()
    with engine.begin() as conn:
        written = upsert(conn, Trade.__table__, rows, TRADE_KEY)
    return time.perf_counter() - started, written


def copy_batch(engine, rows) -> tuple[float, int]:
    """The fastest raw COPY psycopg offers: binary, with the column types declared."""
    columns = list(rows[0])
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(f"SELECT {', '.join(columns)} FROM trades_copy LIMIT 0")
        types = [column.type_code for column in cursor.description]
        with cursor.copy(f"COPY trades_copy ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row([row[c] for c in columns])
    return time.perf_counter() - started, len(rows)


def project_pass(engine, batches) -> tuple[float, int]:
    results = [project_batch(engine, batch) for batch in batches]
    return sum(r[0] for r in results), sum(r[1] for r in results)


def table_counts(engine, table: str) -> tuple[int, int]:
    key = ", ".join(TRADE_KEY)
    with engine.connect() as conn:
        return tuple(conn.exec_driver_sql(
            f"SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT {key} FROM {table}) k) FROM {table}"
        ).one())


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:>10,.0f} rows/s  ({seconds:6.2f} s)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--coins", type=int, default=20, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--batch", type=int, default=100_000, help="rows per transaction")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite figure")
    args = parser.parse_args()

    started = time.perf_counter()
    rows = generate_trades(args.rows, args.coins, utc("2025-05-01"), utc("2025-06-01"))
    batches = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]
    print(f"Ingest: {len(rows):,} trades of {args.coins} coins (May 2025), "
          f"{len(batches)} transactions of <= {args.batch:,} rows")
    print(f"generated in {time.perf_counter() - started:.1f} s (not timed)")

    failures = []
    with scratch_postgres() as engine:
        print(machine_facts(engine))
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE trades_copy (LIKE exchange_trades INCLUDING ALL)")
            conn.exec_driver_sql("CHECKPOINT")
        project_s = copy_s = 0.0
        written = copied = 0
        for i, batch in enumerate(batches):
            for method in (project_batch, copy_batch)[:: 1 if i % 2 == 0 else -1]:
                seconds, count = method(engine, batch)
                if method is project_batch:
                    project_s, written = project_s + seconds, written + count
                else:
                    copy_s, copied = copy_s + seconds, copied + count
        again_s, again = project_pass(engine, batches)
        counts = {"exchange_trades": table_counts(engine, "exchange_trades"), "trades_copy": table_counts(engine, "trades_copy")}

    if written != len(rows) or again != 0:
        failures.append(f"upsert reported {written:,} new rows, then {again:,} on the re-run "
                        f"(expected {len(rows):,}, then 0)")
    for table, (total, distinct) in counts.items():
        if total != len(rows) or distinct != len(rows):
            failures.append(f"{table} holds {total:,} rows, {distinct:,} distinct keys (expected {len(rows):,})")

    print(f"PostgreSQL, project upsert (COPY -> stage -> INSERT ON CONFLICT): {rate(len(rows), project_s)}")
    print(f"PostgreSQL, raw binary COPY into an identical table:            {rate(len(rows), copy_s)}")
    ratio = copy_s / project_s
    print(f"ratio project/COPY (throughput): {ratio:.2f}   target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    print(f"PostgreSQL, project upsert re-run (0 new rows, idempotent):       {rate(len(rows), again_s)}")

    if not args.no_sqlite:
        with scratch_sqlite() as engine:
            sqlite_s, sqlite_written = project_pass(engine, batches)
            with engine.connect() as conn:
                sqlite_rows = conn.exec_driver_sql("SELECT count(*) FROM exchange_trades").scalar_one()
        print(f"SQLite, project upsert (executemany INSERT ON CONFLICT):          {rate(len(rows), sqlite_s)}")
        if sqlite_written != len(rows) or sqlite_rows != len(rows):
            failures.append(f"SQLite: upsert reported {sqlite_written:,}, table holds {sqlite_rows:,}")

    print(f"counts: exchange_trades {counts['exchange_trades'][0]:,}, trades_copy {counts['trades_copy'][0]:,}: "
          + ("ok" if not failures else "WRONG"))
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
