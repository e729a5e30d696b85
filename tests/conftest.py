"""Shared fixtures: both databases, the sandbox, resources pointed at them.

Every test that takes ``database_url`` runs twice, on SQLite and on PostgreSQL.
PostgreSQL is found at OMC_TEST_POSTGRES_URL (default: the local server). Where
it is missing, its tests skip with the reason on a developer's machine and fail
in CI (CI is set), where a missing database is a broken build, not a pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from dagster import DagsterInstance

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.models import Base
from omc_trading.tables import metadata as trading_metadata
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase
from omc_pipelines.sandbox import Sandbox
from omc_pipelines.sandbox.sec import SecEdgarSandbox
from omc_pipelines.sandbox.server import serve

POSTGRES_SERVER = os.environ.get("OMC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WATCHLIST = ["btc", "eth", "sol", "pepe"]


def _postgres_missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable ({reason}); set OMC_TEST_POSTGRES_URL")


def postgres_admin() -> psycopg.Connection:
    """An autocommit connection to the server's maintenance database (OMC_TEST_POSTGRES_URL)."""
    server = sa.make_url(POSTGRES_SERVER)
    return psycopg.connect(
        host=server.host, port=server.port or 5432, user=server.username, password=server.password,
        dbname=server.database or "postgres", autocommit=True, connect_timeout=5,
    )


@contextlib.contextmanager
def scratch_postgres(prefix: str, drivername: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL with ``drivername``), dropped on exit. Without a
    server: conftest's rule, a skip here with the reason, a failure in CI."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = postgres_admin()
    except psycopg.OperationalError as exc:
        _postgres_missing(str(exc).splitlines()[0])
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.make_url(POSTGRES_SERVER).set(drivername=drivername, database=name).render_as_string(hide_password=False)
    finally:
        # A connection of its own: one held through the session would not outlive a server restart
        # (test_postgres_restart.py).
        with postgres_admin() as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", autouse=True)
def alembic_scripts_read_once():
    """Alembic's migration scripts read once per test process, not at every stamp or upgrade.

    Every Dagster instance a test makes (one per ``materialize`` without ``instance=``) stamps
    its in-memory storages with Dagster's ~90 migration scripts, and alembic reads them all again
    each time: a quarter of the CPU of test_exchange and test_glass. The scripts do not change
    during a session; what is stamped or migrated is the same."""
    from alembic.script import ScriptDirectory

    read = ScriptDirectory.from_config.__func__
    scripts: dict[tuple, ScriptDirectory] = {}

    def from_config(cls, config):
        key = (config.get_main_option("script_location"), config.get_main_option("version_locations"))
        if key not in scripts:
            scripts[key] = read(cls, config)
        return scripts[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ScriptDirectory, "from_config", classmethod(from_config))
        yield


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    with scratch_postgres("omc_test", "postgresql+psycopg") as url:
        upgrade(get_engine(url))
        yield url
        get_engine(url).dispose()


@pytest.fixture(scope="session")
def emptying_postgres(postgres_database) -> str:
    """The SQL that empties the session's PostgreSQL ledger between tests, ids starting at 1 again:
    DELETE and setval, 2 ms. TRUNCATE ... RESTART IDENTITY of the 25 tables took 170 ms (new files
    for every table and sequence), 0.14 s of CPU, for each of the hundreds of PostgreSQL tests."""
    tables = [*Base.metadata.sorted_tables, *trading_metadata.sorted_tables]
    with get_engine(postgres_database).connect() as conn:
        sequences = conn.exec_driver_sql("SELECT sequence_schema || '.' || sequence_name FROM information_schema.sequences "
                                         "WHERE sequence_catalog = current_database()").scalars().all()
    # Dependants first: the trading tables (and each metadata's later tables) may refer to earlier ones.
    deletes = [f'DELETE FROM "{t.name}"' for t in reversed(tables)]
    return "; ".join(deletes) + "; SELECT " + ", ".join(f"setval('{name}', 1, false)" for name in sequences)


@pytest.fixture
def dagster_postgres_url():
    """A scratch PostgreSQL database for Dagster's own storage (runs, event logs, schedules), as the
    postgresql+psycopg2 URL that deploy/postgres/dagster.yaml reads from DAGSTER_POSTGRES_URL."""
    with scratch_postgres("omc_dagster", "postgresql+psycopg2") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_ledger(tmp_path_factory) -> Path:
    """A migrated, empty SQLite ledger, made once per session: each test gets a copy of the file
    (migrating one per test cost ~0.1 s, ~600 times a run)."""
    path = tmp_path_factory.mktemp("migrated") / "ledger.db"
    url = f"sqlite:///{path}"
    upgrade(get_engine(url))
    get_engine(url).dispose()  # the last connection closed: the WAL is checkpointed into the file
    assert not path.with_name("ledger.db-wal").exists()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A migrated, empty ledger database of each kind."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_ledger"), tmp_path / "ledger.db")
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        yield url
        get_engine(url).dispose()
        return
    url = request.getfixturevalue("postgres_database")
    with get_engine(url).begin() as conn:
        conn.exec_driver_sql(request.getfixturevalue("emptying_postgres"))
    yield url


@pytest.fixture
def engine(database_url) -> sa.Engine:
    return get_engine(database_url)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """Dagster's in-memory instance, the one ``materialize`` makes by default, for runs and sensor
    ticks in the test's process. What our sensors and checks read of it (runs by tag, the latest
    materialization) behaves as on the daemon's instance, which test_topology.py runs for real;
    instance_for_test's SQLite file per run costs a connection per event, ~2-3 s of a trading test."""
    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def sandbox():
    with Sandbox() as box:
        yield box


@pytest.fixture
def edgar():
    """EDGAR's sandbox alone, on a server of its own: (server, SecEdgarSandbox)."""
    box = SecEdgarSandbox()
    with serve(box) as server:
        yield server, box


@pytest.fixture
def resources(database_url, sandbox) -> dict:
    return {
        "ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
        "coinspot": CoinSpotResource(base_url=sandbox.url, watchlist=WATCHLIST, timeout=2.0, retries=3, backoff=0.01),
    }


def pytest_collection_modifyitems(items):
    # The slow tests (the production stack, the browser, the demo: up to two minutes each) start
    # first: under xdist they then overlap the many short ones instead of running alone at the end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one and a half workers per CPU. The suite's tests wait on sockets, databases and
    the processes they start about a third of the time: two workers on CI's 2 cores left them 28 %
    idle (470 s); three kept them 92 % busy (416 s). PYTEST_XDIST_AUTO_NUM_WORKERS still wins."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return max(2, (len(os.sched_getaffinity(0)) * 3) // 2)
