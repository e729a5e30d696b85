"""PostgreSQL restarted while a run's transaction is open.

The run is a real backfill of ``coinspot_hourly_candles`` on a PostgreSQL ledger. The server
is one this test starts for itself (``initdb`` and ``pg_ctl`` of the installed PostgreSQL, run
as the ``postgres`` user, on a free port, in a temporary folder), so restarting it touches no
other test and no other user of the machine's server. So that the restart never races the
run's commit, the test holds a lock on ``exchange_price_snapshots``: the run's one transaction
deletes the range's candles and rebuilds them from the trades, then waits on that lock to read
the snapshots. The test sees it waiting with writes of its own (``pg_stat_activity``:
``backend_xid`` set, waiting on a lock) and restarts the server (``pg_ctl restart -m fast``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from dagster import materialize

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.models import Candle, PriceSnapshot, Trade
from omc_pipelines.ledgers.exchange.assets import coinspot_hourly_candles
from omc_pipelines.resources import LedgerDatabase
from omc_pipelines.sandbox.stack import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 1, 5, tzinfo=timezone.utc)
DAYS = 2  # one week-long chunk of build_candles, one week partition (START is a Monday)
TRADES = 20_000
WAIT = 20.0  # seconds for each step: the run to reach the lock, the server to come back, the run to end
POSTGRES_BIN = Path("/usr/lib/postgresql")

LOAD_TRADES = """
INSERT INTO exchange_trades (coin, market, side, amount, rate, total, sold_at, collected_at)
SELECT (ARRAY['btc', 'eth', 'sol', 'xrp'])[1 + mod(i, 4)], 'aud', CASE WHEN mod(i, 2) = 0 THEN 'buy' ELSE 'sell' END,
       0.01 + mod(i, 97) / 100.0, 100 + mod(i, 1000), (0.01 + mod(i, 97) / 100.0) * (100 + mod(i, 1000)),
       %(start)s + i * %(step)s, %(start)s + i * %(step)s
FROM generate_series(0, %(count)s - 1) AS i
"""

# A backend of the run's database inside a transaction that has written (it has a transaction
# id) and now waits on a lock.
WAITING_WRITER = """
SELECT pid FROM pg_stat_activity
WHERE datname = %s AND backend_xid IS NOT NULL AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()
"""


def cannot_restart(reason: str):
    """conftest's rule for a missing PostgreSQL: a skip with the reason here, a failure in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"restarting PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"cannot start a PostgreSQL server of this test's own here ({reason})")


class Server:
    """A PostgreSQL server of this test's own: initdb, start, restart, stop."""

    def __init__(self, folder: Path):
        versions = sorted(POSTGRES_BIN.glob("*/bin/pg_ctl")) if POSTGRES_BIN.is_dir() else []
        if not versions:
            cannot_restart(f"no PostgreSQL binaries under {POSTGRES_BIN}")
        if os.geteuid() != 0 or not shutil.which("runuser"):
            cannot_restart("initdb and pg_ctl must run as the postgres user, which takes root here")
        self.bin, self.data, self.port = versions[-1].parent, folder / "data", free_port()
        # The server's output goes to a log file: a pipe held open by it would keep pg_ctl waiting.
        self.log = folder / "log"
        shutil.chown(folder, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=60)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               autocommit=True, connect_timeout=5)

    def restart(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")
        deadline = time.monotonic() + WAIT
        while True:
            try:
                with self.connect() as admin:
                    admin.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def server():
    # Not under pytest's tmp_path: its folders are root's alone, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="omc-test-postgres-"))
    try:
        server = Server(folder)
        yield server
        get_engine(server.url).dispose()
        server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_the_writer(server: Server, database: str) -> None:
    deadline = time.monotonic() + WAIT
    with server.connect() as admin:
        while time.monotonic() < deadline:
            if admin.execute(WAITING_WRITER, (database,)).fetchone():
                return
            time.sleep(0.05)
    raise AssertionError(f"no transaction of the run wrote and waited on the lock within {WAIT:.0f} s")


def backfill(url: str):
    return materialize(
        [coinspot_hourly_candles], resources={"ledger_db": LedgerDatabase(url=url, auto_migrate=False)},
        tags={"dagster/asset_partition_range_start": f"{START:%Y-%m-%d}",
              "dagster/asset_partition_range_end": f"{START:%Y-%m-%d}"},
        raise_on_error=False,
    )


def candles(engine: sa.Engine) -> list[tuple]:
    columns = [c for c in Candle.__table__.c if c.name not in ("id", "computed_at")]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(*columns).order_by(Candle.coin, Candle.hour_start))]


def user_error(result):
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    while error.cause is not None and error.cls_name.startswith("Dagster"):
        error = error.cause
    return error


def test_a_restart_mid_run_fails_the_run_commits_nothing_and_the_next_run_converges(server):
    postgres_database = server.url
    engine = get_engine(postgres_database)
    upgrade(engine)
    database = sa.make_url(postgres_database).database
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {Candle.__tablename__}, {Trade.__tablename__}, {PriceSnapshot.__tablename__}")
        conn.connection.driver_connection.execute(
            LOAD_TRADES, {"start": START, "step": timedelta(days=DAYS) / TRADES, "count": TRADES})
    assert backfill(postgres_database).success
    truth = candles(engine)
    assert len(truth) == 4 * 24 * DAYS  # four coins, every hour
    with engine.begin() as conn:  # stale candles: what the run is to replace
        conn.execute(sa.update(Candle).values(volume=0, trade_count=0))
    before = candles(engine)

    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=backfill(postgres_database)), daemon=True)
    lock = psycopg.connect(postgres_database.replace("postgresql+psycopg", "postgresql"))
    try:
        lock.execute(f"LOCK TABLE {PriceSnapshot.__tablename__} IN ACCESS EXCLUSIVE MODE")
        run.start()
        wait_for_the_writer(server, database)
        server.restart()
    finally:
        lock.close()  # released (or gone with the restart) whatever happened
    run.join(WAIT)
    assert not run.is_alive(), f"the run hung {WAIT:.0f} s after the restart"

    result = outcome["result"]
    assert not result.success
    error = user_error(result)
    assert error.cls_name == "OperationalError", error.message  # a database error, named as such
    assert candles(engine) == before  # nothing of the run was committed

    assert backfill(postgres_database).success
    assert candles(engine) == truth
