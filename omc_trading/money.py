"""Exact money: ``Decimal`` in Python, exact in the database, never a float.

CoinSpot quotes AUD to 2 decimal places and coin amounts to 8. Every amount that
enters the trading core goes through :func:`dec`, which refuses floats: a float
has already lost the exact value, and a refusal here is cheaper than a wrong order.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

AUD_PLACES = Decimal("0.01")
COIN_PLACES = Decimal("0.00000001")


def dec(value: Decimal | int | str) -> Decimal:
    """A finite Decimal from a Decimal, an int or a numeric string; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"money must not be a {type(value).__name__} ({value!r}): pass a str or a Decimal")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return result


def aud(value: Decimal | int | str) -> Decimal:
    """An AUD amount to the cent, rounded half up (how fees and totals are shown)."""
    return dec(value).quantize(AUD_PLACES, rounding=ROUND_HALF_UP)


def coins(value: Decimal | int | str) -> Decimal:
    """A coin amount to 8 places, rounded down: never claim a fraction not bought."""
    return dec(value).quantize(COIN_PLACES, rounding=ROUND_DOWN)
