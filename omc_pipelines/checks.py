"""The check builders every ledger shares; each ledger's own checks are in its ``checks.py``
(``omc_pipelines/ledgers/<ledger>/checks.py``): what must hold of its rows, asked of the database itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition, asset_check

from omc_pipelines.resources import LedgerDatabase


def no_duplicate_keys(asset, table: sa.Table, key: Sequence[str]) -> AssetChecksDefinition:
    """A check that no two rows of ``table`` share the natural ``key``.

    The unique constraint should make this impossible; the check is how a schema
    that drifted away from its constraint would be noticed."""

    @asset_check(asset=asset, name="no_duplicate_keys", description=f"No two rows share ({', '.join(key)}).")
    def _check(ledger_db: LedgerDatabase) -> AssetCheckResult:
        columns = [table.c[k] for k in key]
        duplicated = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).subquery()
        with ledger_db.engine().connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(duplicated)).scalar_one()
        return AssetCheckResult(passed=count == 0, metadata={"duplicated_keys": count})

    return _check


def written_by_latest_run(context: AssetCheckExecutionContext, asset) -> datetime | None:
    """The ``collected_at`` the asset's latest materialization stamped on the rows it wrote:
    a check of those rows judges that run, and one bad row never fails every later run."""
    event = context.instance.get_latest_materialization_event(asset.key)
    stamp = event.asset_materialization.metadata.get("collected_at") if event and event.asset_materialization else None
    return datetime.fromisoformat(stamp.value) if stamp else None


def source_configured(asset, resource_key: str, fields: tuple[str, ...], variables: str) -> AssetChecksDefinition:
    """A warning, not a failure: a source without credentials is shown, never blocking."""

    @asset_check(asset=asset, name="source_configured", required_resource_keys={resource_key},
                 description=f"The source has its credentials ({variables}).")
    def _check(context) -> AssetCheckResult:
        resource = getattr(context.resources, resource_key)
        configured = all(getattr(resource, field) for field in fields)
        return AssetCheckResult(
            passed=configured, severity=AssetCheckSeverity.WARN,
            metadata={"status": "configured" if configured else f"not configured: set {variables}"},
        )

    return _check
