"""Time as the trading core counts it: aware UTC, and days that are UTC days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def utc_day(day: date) -> tuple[datetime, datetime]:
    """The first instant of ``day`` in UTC and of the day after."""
    start = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
