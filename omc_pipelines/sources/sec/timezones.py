"""The time-zone trap: EDGAR's ``acceptanceDateTime`` says ``Z`` and, for some filers,
means New York wall time. Read both ways and judged against EDGAR's hours."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

# EDGAR accepts filings on business days from 06:00 to 22:00 New York time. A filing
# accepted after 17:30 is, for most forms (8-K among them), dated the next business
# day; Section 16 forms (3, 4, 5) keep the same day until 22:00.
EDGAR_OPENS = clock_time(6, 0)
EDGAR_CLOSES = clock_time(22, 0)
EDGAR_CUTOFF = clock_time(17, 30)
CONVENTIONS = ("utc", "new_york")


def _read_acceptance(value: str) -> datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if not 1 < parsed.year < 9999:  # read in New York or in UTC, it would leave datetime's range
        raise ValueError(f"{value!r} is out of range")
    return parsed


def _within_edgar_hours(instant: datetime, filing_date: date) -> bool:
    """Could EDGAR have accepted a filing at ``instant`` and dated it ``filing_date``?"""
    ny = instant.astimezone(NEW_YORK)
    if ny.weekday() >= 5 or not EDGAR_OPENS <= ny.time() <= EDGAR_CLOSES:
        return False
    lag = (filing_date - ny.date()).days
    # Same day; or accepted after the 17:30 cut-off and dated the next business day
    # (up to four days later: a Friday evening, a weekend and a Monday holiday).
    return lag == 0 or (ny.time() >= EDGAR_CUTOFF and 1 <= lag <= 4)


def _readings(value: str) -> tuple[datetime, datetime] | datetime:
    """Both readings of a Z-labelled value, (as UTC, as New York wall time); or the one
    instant a value with an explicit non-zero offset means."""
    parsed = _read_acceptance(value)
    if parsed.tzinfo is not None and parsed.utcoffset() != timedelta(0):
        return parsed.astimezone(timezone.utc)
    wall = parsed.replace(tzinfo=None)
    return wall.replace(tzinfo=timezone.utc), wall.replace(tzinfo=NEW_YORK).astimezone(timezone.utc)


def acceptance_to_utc(value: str, filing_date: date, convention: str | None = None) -> datetime:
    """The true UTC instant of an ``acceptanceDateTime``.

    EDGAR labels the value ``Z`` but for some filers writes New York wall time. The
    rule: read the digits both ways, as UTC and as New York time (DST-correct), and
    call a reading *plausible* when, seen in New York, it falls on a weekday within
    EDGAR's hours (06:00-22:00) and on ``filing_date``, or after the 17:30 cut-off
    with ``filing_date`` one to four days later (the next business day).

    - Exactly one reading plausible: that one.
    - Both plausible (any value from about 11:00 to 22:00): the filer's
      ``convention`` ("utc" or "new_york", as ``detect_convention`` finds it over a
      whole submissions payload); without one, New York, EDGAR's own clock.
    - Neither (a filing outside EDGAR's hours, a corrected filing date): the
      ``convention``; without one, the label is taken at its word (UTC).

    A value with an explicit offset other than ``Z``/``+00:00`` means what it says.
    Raises ``ValueError`` for a value that is not an ISO date-time.
    """
    if convention not in (None, *CONVENTIONS):
        raise ValueError(f"convention must be one of {CONVENTIONS} or None, got {convention!r}")
    readings = _readings(value)
    if isinstance(readings, datetime):
        return readings
    as_utc, as_new_york = readings
    utc_ok, new_york_ok = _within_edgar_hours(as_utc, filing_date), _within_edgar_hours(as_new_york, filing_date)
    if utc_ok != new_york_ok:
        return as_utc if utc_ok else as_new_york
    if utc_ok:
        return as_utc if convention == "utc" else as_new_york
    return as_new_york if convention == "new_york" else as_utc


def detect_convention(values: Iterable[tuple[str, date]]) -> str | None:
    """How one filer's payload labels acceptance times: ``"utc"``, ``"new_york"`` or
    None (no value decides it, or a tie). Only values that one reading alone makes
    plausible vote; an EDGAR payload is written by one system, so the majority
    settles the ambiguous rest."""
    votes = {"utc": 0, "new_york": 0}
    for value, filing_date in values:
        try:
            readings = _readings(value)
        except ValueError:
            continue
        if isinstance(readings, datetime):
            continue
        utc_ok, new_york_ok = (_within_edgar_hours(r, filing_date) for r in readings)
        if utc_ok != new_york_ok:
            votes["utc" if utc_ok else "new_york"] += 1
    if votes["utc"] == votes["new_york"]:
        return None
    return max(votes, key=votes.get)
