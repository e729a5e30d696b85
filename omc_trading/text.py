"""How the trading core writes figures into the reasons people read."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from omc_trading.money import coins


def duration(span: timedelta) -> str:
    """A span in the two largest units that matter: "3 d 4 h", "12 min 5 s", "-30 s"."""
    seconds = int(span.total_seconds())
    if seconds < 0:
        return "-" + duration(-span)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def coin_amount(value: Decimal) -> str:
    """A coin amount to its 8 places, written out the same from either database ("0.00000000", not "0E-8")."""
    return format(coins(value), "f")
