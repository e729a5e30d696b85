"""What every EDGAR reader shares: the source's name and hosts, the payload reader, CIKs,
and numbers as filings write them."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Any

from omc_pipelines.sources.payload import Payload

SOURCE = "sec"
DATA_URL = "https://data.sec.gov"
ARCHIVES_URL = "https://www.sec.gov"

NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # as filed: "1,234,567.89", "1234.5"
APPROX = r"(?:approximately\s+|about\s+|~\s?)?"
SCALE = {None: 1, "": 1, "thousand": 10**3, "million": 10**6, "billion": 10**9}


class EdgarPayload(Payload):
    """EDGAR's readers on top of the shared ones."""

    def text(self, value: Any, where: str, *, empty: bool = True) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where} is {type(value).__name__}, not a string")
        if not empty and not value.strip():
            raise self.fail(f"{where} is empty")
        return value

    def date(self, value: Any, where: str) -> date:
        try:
            return date.fromisoformat(self.text(value, where, empty=False)[:10])
        except ValueError:
            raise self.fail(f"{where} is {value!r}, not a date") from None

    def optional_date(self, value: Any, where: str) -> date | None:
        return None if value in (None, "") else self.date(value, where)


def normalise_cik(cik: str | int) -> str:
    """``1050446``, ``"1050446"`` or ``"0001050446"`` -> ``"0001050446"``."""
    text = str(cik).strip()
    if not text.isdigit() or len(text) > 10:
        raise ValueError(f"a CIK is up to 10 digits, got {cik!r}")
    return text.zfill(10)


def to_decimal(text: str) -> Decimal:
    """A number as filed, its thousands separators dropped."""
    return Decimal(text.replace(",", ""))


def amount(text: str, unit: str | None = None) -> float | None:
    """A number as filed ("1,234.5", scaled by "million" and the like), or None past float's
    range: no filing means a figure of 400 digits, and an infinite one would poison the ledger."""
    value = float(to_decimal(text) * SCALE[(unit or "").lower()])
    return value if math.isfinite(value) else None
