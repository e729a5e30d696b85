"""What the UI shows of every asset: the one place that builds it.

Static, on the definition (the UI shows it before any run): the table the asset writes
(``dagster/table_name``), that table's columns built from the model (``dagster/column_schema``,
the unique key as a constraint), owners per group, tags per ledger and source.

At each materialization (:func:`standard`): the table, the rows of the asset (its part of a
shared table, its partition's rows for a partitioned asset: :func:`per_partition_counts`) and a
preview of the newest rows, every number written out (thousands separators, fixed decimals,
never ``4.61804e+09``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from dagster import (
    MetadataValue, TableColumn, TableColumnConstraints, TableConstraints, TableRecord, TableSchema,
)

if TYPE_CHECKING:
    import pandas as pd
    from dagster import AssetExecutionContext

# One owner per group: who answers for what the group's assets hold.
OWNERS = {
    "exchange": "team:market-data",
    "glass": "team:onchain",
    "human": "team:sentiment",
    "catalyst": "team:catalysts",
    "trading": "team:trading",
    "research": "team:research",
}
PREVIEW_ROWS = 10
# A run over more partitions than this records the run's totals on each of them: per-partition
# metadata costs Dagster a scan of the run's partitions per call (quadratic in the run's length).
PER_PARTITION_LIMIT = 744  # two years of days, a month of hours


# --- the definition's metadata ------------------------------------------------------------------


def _table(model) -> sa.Table:
    return model if isinstance(model, sa.Table) else model.__table__


def _type_name(column: sa.Column) -> str:
    try:
        return str(column.type.compile(dialect=sa.dialects.postgresql.dialect())).lower()
    except Exception:  # a TypeDecorator without a compiled form on this dialect
        return type(column.type).__name__.lower()


def column_schema(model) -> TableSchema:
    """The model's columns (name, type, nullable, unique) and its unique keys as constraints."""
    table = _table(model)
    uniques = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    single = {c.columns.keys()[0] for c in uniques if len(c.columns) == 1} | {c.name for c in table.columns if c.unique}
    columns = [
        TableColumn(
            name=c.name, type=_type_name(c), description=c.comment,
            constraints=TableColumnConstraints(nullable=bool(c.nullable) and not c.primary_key,
                                               unique=c.primary_key or c.name in single),
        )
        for c in table.columns
    ]
    keys = [f"unique ({', '.join(c.columns.keys())})" for c in uniques if len(c.columns) > 1]
    return TableSchema(columns=columns, constraints=TableConstraints(other=keys) if keys else None)


def definition(model, *, group: str, source: str) -> dict[str, Any]:
    """The keyword arguments an ``@asset`` takes for its static metadata, owners and tags:
    ``@asset(group_name=GROUP, **definition(Candle, group=GROUP, source="coinspot"), ...)``."""
    table = _table(model)
    metadata: dict[str, Any] = {
        "dagster/table_name": table.name,
        "dagster/column_schema": column_schema(table),
    }
    return {"metadata": metadata, "owners": [OWNERS[group]], "tags": {"ledger": group, "source": source}}


# --- previews -----------------------------------------------------------------------------------


def plain(value: Any) -> str:
    """A cell as people read it: numbers positional with thousands separators (never 1e+09 or
    1e-05), times to the second in UTC, lists joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return _number(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    try:  # pandas' Timestamp and NaT, numpy's scalars
        import numpy as np

        if isinstance(value, np.integer):
            return f"{int(value):,}"
        if isinstance(value, np.floating):
            return _number(float(value))
    except ImportError:  # pragma: no cover
        pass
    if hasattr(value, "to_pydatetime"):
        return plain(value.to_pydatetime()) if str(value) != "NaT" else ""
    return str(value).replace("|", "/").replace("\n", " ")


def _number(value: float | Decimal) -> str:
    number = Decimal(str(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return "" if number.is_nan() else str(value)
    if abs(number) >= 1000:
        return f"{number:,.2f}"  # 4,618,040,000.00
    if abs(number) >= 1:
        text = f"{number:,.6f}"  # 1.234568; trailing zeros dropped
    else:
        # Small prices keep their significant digits: 0.00001234, not 1.234e-05.
        text = f"{number.quantize(Decimal(1).scaleb(-12)) if abs(number) >= Decimal('1e-12') else 0:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def preview(rows: Sequence[Mapping] | pd.DataFrame, limit: int = PREVIEW_ROWS,
            columns: Sequence[str] | None = None) -> MetadataValue:
    """The first ``limit`` rows as a table shown inline on the asset's page, every cell text
    written by :func:`plain`.

    A table, not Markdown: the UI shows a table entry inline, but Markdown over 1,000 characters
    (any preview of ten rows) only behind a "[Show Markdown]" link."""
    if hasattr(rows, "to_dict"):  # a DataFrame
        names = [str(name) for name in rows.columns]
        records = rows.head(limit).to_dict("records")
    else:
        records = [dict(row) for row in list(rows)[:limit]]
        names = list(columns or dict.fromkeys(name for row in records for name in row))
    return MetadataValue.table(
        records=[TableRecord({name: plain(row.get(name)) for name in names}) for row in records],
        schema=TableSchema(columns=[TableColumn(name=name, type="string") for name in names]),
    )


# --- at each materialization --------------------------------------------------------------------


def newest_rows(conn: sa.Connection, model, newest: str | Sequence[str], where=None,
                columns: Sequence[str] | None = None, limit: int = PREVIEW_ROWS) -> list[dict]:
    """The newest ``limit`` rows of the table (of its ``where`` part), without the surrogate id."""
    table = _table(model)
    order = [newest] if isinstance(newest, str) else list(newest)
    chosen = [table.c[name] for name in columns] if columns else [c for c in table.c if c.name != "id"]
    query = sa.select(*chosen).order_by(*(table.c[name].desc() for name in order)).limit(limit)
    if where is not None:
        query = query.where(where)
    return [dict(row) for row in conn.execute(query).mappings()]


def count(conn: sa.Connection, model, where=None) -> int:
    query = sa.select(sa.func.count()).select_from(_table(model))
    return conn.execute(query.where(where) if where is not None else query).scalar_one()


def standard(conn: sa.Connection, model, newest: str | Sequence[str], where=None,
             columns: Sequence[str] | None = None, limit: int = PREVIEW_ROWS) -> dict[str, Any]:
    """``dagster/table_name``, ``dagster/row_count`` (the rows of ``where``: the asset's part of the
    table) and ``preview``: the newest rows, numbers written out."""
    table = _table(model)
    return {
        "dagster/table_name": table.name,
        "dagster/row_count": count(conn, table, where),
        "preview": preview(newest_rows(conn, table, newest, where, columns, limit),
                           columns=columns or [c.name for c in table.c if c.name != "id"]),
    }


def per_partition(context: AssetExecutionContext, metadata: Mapping[str, Mapping[str, Any]]) -> bool:
    """Each partition of the run gets its own metadata (``metadata[key]``).

    Partition-scoped metadata adds no event (Dagster records a materialization per partition
    anyway), but each call scans the run's partitions: a run over more than
    ``PER_PARTITION_LIMIT`` partitions keeps the run's metadata on each. Returns whether it did."""
    keys = context.partition_keys
    if len(keys) <= 1 or len(keys) > PER_PARTITION_LIMIT:
        return False
    for key in keys:
        context.add_asset_metadata(dict(metadata.get(key, {})), partition_key=key)
    return True


def per_partition_counts(context: AssetExecutionContext, counts: Mapping[str, int]) -> bool:
    """Each partition of the run gets its own ``dagster/row_count`` (``counts``; 0 where absent)."""
    return per_partition(context, {key: {"dagster/row_count": int(counts.get(key, 0))} for key in context.partition_keys})
