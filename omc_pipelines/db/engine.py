"""Engines and migrations: one cached engine per URL, Alembic run from code."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

# Dagster keeps its own alembic_version table; ours must not collide with it.
VERSION_TABLE = "omc_alembic_version"
MIGRATIONS = Path(__file__).with_name("migrations")
_migrate_lock = threading.Lock()


class DatabaseNotMigrated(RuntimeError):
    """The database is behind the code's schema."""


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; every PostgreSQL URL goes through psycopg 3."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str | sa.URL) -> str:
    """The URL as it may appear in logs and errors: without its password."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Dagster runs steps in several processes: wait for the lock, don't fail on it.
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


@functools.cache
def get_engine(url: str) -> sa.Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Naive timestamps (there should be none) then mean UTC, as they do on SQLite.
    return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"options": "-c timezone=utc"})


def alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to call again."""
    with _migrate_lock:
        command.upgrade(alembic_config(engine), revision)


_ready: set[str] = set()


def ready_engine(url: str, auto_migrate: bool) -> sa.Engine:
    """The engine of ``url``, its schema checked (and migrated if allowed) once per process."""
    engine = get_engine(url)
    if url not in _ready:
        ensure_ready(engine, auto_migrate)
        _ready.add(url)
    return engine


def ensure_ready(engine: sa.Engine, auto_migrate: bool) -> None:
    """Migrate when allowed; otherwise refuse to write into an out-of-date schema."""
    if current_revision(engine) == head_revision():
        return
    if auto_migrate:
        upgrade(engine)
        return
    raise DatabaseNotMigrated(
        f"the ledger database {safe_url(engine.url)} is not at schema {head_revision()}: "
        "run `omc db upgrade` with the same OMC_DATABASE_URL"
    )
