"""Reading fields out of one decoded payload, shared by the source modules.

Every complaint is a ``SourcePayloadError`` naming the source, the URL and the
field, so a broken answer can be traced without the payload at hand. Readers a
single source needs stay in that source's module, on a subclass.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from omc_pipelines.sources.http import SourcePayloadError, safe_url


def parse_utc(value: str) -> datetime | None:
    """An ISO time (``Z`` allowed) as an aware UTC datetime, or None if it is not one.
    A time without an offset is taken as UTC: that is what every source here means."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # "9999-12-31T23:59:59-23:59" is past year 9999 in UTC
        return None


class Payload:
    """Reads fields out of one payload; every complaint names the URL and the field."""

    def __init__(self, source: str, url: str):
        self.source = source
        self.url = safe_url(url)  # parsers are handed whole URLs too (a link, a configured feed)

    def fail(self, what: str) -> SourcePayloadError:
        return SourcePayloadError(self.source, self.url, f"malformed payload: {what}")

    def field(self, obj: Any, name: str, where: str) -> Any:
        if not isinstance(obj, dict) or name not in obj:
            raise self.fail(f"{where} has no {name!r}")
        return obj[name]

    def text_or_empty(self, value: Any, where: str) -> str:
        """Optional text, as sent (not stripped): missing or null reads as ""."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{where} is a {type(value).__name__}, not text")
        return value

    def number(self, value: Any, where: str) -> float | None:
        """A number, a numeric string, "NaN", null or nothing; None when there is no value."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):  # bool is an int in Python, but never a price or an amount
            raise self.fail(f"{where} is a boolean, not a number")
        if isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError:  # a JSON integer past float's range
                raise self.fail(f"{where} is too large") from None
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise self.fail(f"{where} is {value[:40]!r}, not a number") from None
        else:
            raise self.fail(f"{where} is a {type(value).__name__}, not a number")
        if math.isnan(number):
            return None  # how sources say "no value", e.g. CoinSpot's illiquid pairs
        if math.isinf(number):
            raise self.fail(f"{where} is infinite")
        return number

    def time(self, value: Any, where: str) -> datetime:
        """An ISO time string as an aware UTC datetime."""
        if not isinstance(value, str):
            raise self.fail(f"{where} is {value!r}, not a time string")
        parsed = parse_utc(value)
        if parsed is None:
            raise self.fail(f"{where} is {value!r}, not an ISO time")
        return parsed
