"""Column types the trading tables need, exact and time-zone safe on SQLite and PostgreSQL.

``omc_pipelines.db.types`` takes ``UtcDateTime`` from here: one definition for both packages.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from omc_trading.money import dec


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


class Money(TypeDecorator):
    """An exact decimal column: ``NUMERIC(28, 8)`` on PostgreSQL; text on SQLite.

    SQLite's NUMERIC affinity turns values into 8-byte floats (15 significant
    digits), so there the canonical decimal string is stored instead, and read back
    as ``Decimal``. Floats are refused on the way in on both. Sums and comparisons of
    money happen in Python, where they are exact on both databases.
    """

    impl = sa.Numeric(28, 8)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(28, 8, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = dec(value)
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return dec(value) if not isinstance(value, Decimal) else value
