"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

# One definition for both packages: the trading core may not import the pipelines.
from omc_trading.columns import UtcDateTime

__all__ = ["BigId", "NameList", "StringList", "UtcDateTime"]  # UtcDateTime: models and migrations use it from here


# A list of strings: a real ARRAY on PostgreSQL, JSON on SQLite.
StringList = sa.ARRAY(sa.String(16)).with_variant(sa.JSON(), "sqlite")

# A list of names (chains, ...): longer than symbols.
NameList = sa.ARRAY(sa.String(64)).with_variant(sa.JSON(), "sqlite")

# A surrogate key that autoincrements on both (SQLite only does so for INTEGER).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
