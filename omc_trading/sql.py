"""A SQL statement the trading core needs the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_missing(conn: sa.Connection, table: sa.Table, row: Mapping[str, object], key: str) -> None:
    """Insert ``row`` unless a row with its ``key`` exists (then nothing changes).

    On SQLite this statement also takes the database's write lock, done or not.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(table).values(**row).on_conflict_do_nothing(index_elements=[key]))
