"""Times as the sandbox's sources write and read them, and where their recordings are anchored."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def hour_anchor(now: datetime | None = None) -> datetime:
    """The start of ``now``'s UTC hour, where a source's newest recorded item goes."""
    # The hour is UTC's: a clock in a half-hour zone (India, +05:30) must not anchor at :30.
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def iso_z(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """An ISO time (``Z`` or an offset; none is UTC), a datetime, or None for nothing."""
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
