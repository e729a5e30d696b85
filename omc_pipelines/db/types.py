"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator):
    """A timestamp that is always stored and returned as aware UTC.

    PostgreSQL keeps it as ``timestamptz``; SQLite has no time zones, so the value
    is stored as naive UTC and made aware again on the way out. A naive value
    given to it is refused: guessing its zone is how times go wrong.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give the time zone")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# A list of strings: a real ARRAY on PostgreSQL, JSON on SQLite.
StringList = sa.ARRAY(sa.String(16)).with_variant(sa.JSON(), "sqlite")

# A list of names (chains, ...): longer than symbols.
NameList = sa.ARRAY(sa.String(64)).with_variant(sa.JSON(), "sqlite")

# A surrogate key that autoincrements on both (SQLite only does so for INTEGER).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
