"""The ledger database: models, migrations, and the one write path."""

from omc_pipelines.db.engine import (
    DatabaseNotMigrated,
    ready_engine,
    ensure_ready,
    get_engine,
    safe_url,
    upgrade,
)
from omc_pipelines.db.writes import upsert

__all__ = ["DatabaseNotMigrated", "ready_engine", "ensure_ready", "get_engine", "safe_url", "upgrade", "upsert"]
