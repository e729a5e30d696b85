"""8-K documents: does a filing speak of crypto, which coins, and is it Strategy's weekly
bitcoin purchase (in prose, or in the table its updates carry since 2025)?"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from selectolax.lexbor import LexborHTMLParser, LexborNode

from omc_pipelines.sources.coins import extract_coins, is_known
from omc_pipelines.sources.html_text import html_to_text, is_visible, parse_html, squash, text_of
from omc_pipelines.sources.http import SourcePayloadError
from omc_pipelines.sources.sec.common import APPROX, NUMBER, SOURCE, amount
from omc_pipelines.sources.sec.submissions import Filing


@dataclass(frozen=True)
class BitcoinPurchase:
    """Strategy's weekly "bitcoin update": what it bought and, when stated, what it holds."""

    btc_amount: float
    aggregate_usd: float
    average_price_usd: float | None
    period_start: date | None = None
    period_end: date | None = None
    holdings_btc: float | None = None
    holdings_cost_usd: float | None = None
    holdings_average_usd: float | None = None


@dataclass(frozen=True)
class EightK:
    mentions_crypto: bool  # crypto words appear ("digital assets" alone counts, and names no coin)
    currencies: list[str]  # coin symbols the registry knows, in order of first mention
    bitcoin_purchase: BitcoinPurchase | None


def _tables(tree: LexborHTMLParser) -> list[list[list[str]]]:
    """The document's visible tables as rows of cells, each cell's text on one line.
    A nested table is a table of its own, not part of its parent's cells' rows."""
    tables = []
    for table in tree.css("table"):
        if not is_visible(table):
            continue
        rows = [row for row in table.css("tr") if _nearest_table(row) == table.mem_id]
        tables.append([[squash(text_of(cell)) for cell in row.iter() if cell.tag in ("td", "th")] for row in rows])
    return tables


def _nearest_table(node: LexborNode) -> int | None:
    parent = node.parent
    while parent is not None and parent.tag != "table":
        parent = parent.parent
    return None if parent is None else parent.mem_id


# Words that make a filing crypto content, on word boundaries, any case.
_CRYPTO_WORDS = re.compile(
    r"\b(?:bitcoins?|btc|ether|ethereum|digital[\s-]+assets?|crypto[\s-]*assets?|crypto[\s-]*currenc(?:y|ies)"
    r"|crypto|stablecoins?)\b",
    re.IGNORECASE,
)


def _money(name: str) -> str:
    """"$98.7 million", "$ 584,123,456": the amount in group ``name``, the unit in ``name_unit``."""
    return rf"\$\s?(?P<{name}>{NUMBER})(?:\s*(?P<{name}_unit>thousand|million|billion)\b)?"


_BTC = r"(?:bitcoins?|BTC)\b"

_PURCHASE = re.compile(rf"\bacquired\s+(?:an\s+additional\s+|an\s+aggregate\s+of\s+)?{APPROX}(?P<btc>{NUMBER})\s+{_BTC}",
                       re.IGNORECASE)
_FOR_MONEY = re.compile(rf"\bfor\s+(?:an\s+aggregate\s+(?:purchase\s+price\s+)?of\s+)?{APPROX}" + _money("usd"),
                        re.IGNORECASE)
_PER_BITCOIN = re.compile(rf"\$\s?(?P<avg>{NUMBER})\s+per\s+{_BTC}", re.IGNORECASE)
_HOLDINGS = re.compile(
    rf"\b(?:held|holds|hold|bitcoin\s+holdings\s+(?:of|to|totaled|totalled|were|was))\s+(?:an\s+aggregate\s+of\s+)?"
    rf"{APPROX}(?P<btc>{NUMBER})\s+{_BTC}",
    re.IGNORECASE,
)
_AGGREGATE_PRICE = re.compile(rf"aggregate\s+purchase\s+price\s+of\s+{APPROX}" + _money("usd"), re.IGNORECASE)
_PERIOD = re.compile(
    r"\bperiod\s+(?:between|from)\s+(?P<start>[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})\s+(?:and|to|through)\s+"
    r"(?P<end>[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})"
)
# A sentence ends at a full stop followed by a space: "$98.7 million" is not an end.
_SENTENCE_END = re.compile(r"\.(?=\s|$)")


def _us_date(text: str) -> date | None:
    for fmt in ("%B %d, %Y", "%b %d, %Y", "%b. %d, %Y"):
        try:
            return datetime.strptime(re.sub(r"\s+", " ", text), fmt).date()
        except ValueError:
            continue
    return None


def _sentence_from(text: str, start: int) -> str:
    end = _SENTENCE_END.search(text, start)
    return text[start: end.start() if end else len(text)]


def _prose_purchase(text: str) -> BitcoinPurchase | None:
    for match in _PURCHASE.finditer(text):
        sentence = _sentence_from(text, match.end())
        money = _FOR_MONEY.search(sentence)
        if not money:
            continue
        btc, usd = amount(match["btc"]), amount(money["usd"], money["usd_unit"])
        if btc is None or usd is None:
            continue
        average = _PER_BITCOIN.search(sentence, money.end())
        holdings = _holdings(text[match.end():])
        period = _PERIOD.search(text[max(0, match.start() - 300): match.start()])
        return BitcoinPurchase(
            btc_amount=btc,
            aggregate_usd=usd,
            average_price_usd=amount(average["avg"]) if average else None,
            period_start=_us_date(period["start"]) if period else None,
            period_end=_us_date(period["end"]) if period else None,
            **holdings,
        )
    return None


def _holdings(text: str) -> dict[str, float | None]:
    found: dict[str, float | None] = {"holdings_btc": None, "holdings_cost_usd": None, "holdings_average_usd": None}
    match = _HOLDINGS.search(text)
    if match:
        sentence = _sentence_from(text, match.end())
        cost, average = _AGGREGATE_PRICE.search(sentence), _PER_BITCOIN.search(sentence)
        found["holdings_btc"] = amount(match["btc"])
        found["holdings_cost_usd"] = amount(cost["usd"], cost["usd_unit"]) if cost else None
        found["holdings_average_usd"] = amount(average["avg"]) if average else None
    return found


_TABLE_UNIT = re.compile(r"\bin\s+(thousands|millions|billions)\b", re.IGNORECASE)
_CELL_VALUE = re.compile(rf"^\$?\s?(?P<n>{NUMBER})\s*(?P<unit>thousand|million|billion)?$", re.IGNORECASE)


def _table_purchase(tables: Sequence[Sequence[Sequence[str]]], text: str) -> BitcoinPurchase | None:
    """The table Strategy's updates carry since 2025: a header row with "BTC Acquired",
    "Aggregate Purchase Price (in millions)", "Average Purchase Price", "Aggregate BTC
    Holdings", ... and a row of values below it ("$" often in a cell of its own)."""
    for table in tables:
        for r, row in enumerate(table):
            headers = [cell for cell in row if cell]
            if not any(re.search(r"\bBTC\s+Acquired\b", h, re.IGNORECASE) for h in headers):
                continue
            for values_row in table[r + 1:]:
                values = [cell for cell in values_row if cell and cell.strip("$ ")]
                parsed = [_CELL_VALUE.match(v) for v in values]
                if len(values) != len(headers) or not all(parsed):
                    continue
                purchase: dict[str, Any] = {}
                holdings_side = False
                for header, value in zip(headers, parsed):
                    h = header.lower()
                    unit = value["unit"]
                    if not unit and (in_unit := _TABLE_UNIT.search(header)):
                        unit = in_unit[1][:-1].lower()  # "(in millions)" -> "million"
                    if "holdings" in h:
                        holdings_side = True
                        purchase["holdings_btc"] = amount(value["n"])
                    elif "acquired" in h:
                        purchase["btc_amount"] = amount(value["n"])
                    elif "aggregate purchase price" in h:
                        purchase["holdings_cost_usd" if holdings_side else "aggregate_usd"] = amount(value["n"], unit)
                    elif "average purchase price" in h:
                        purchase["holdings_average_usd" if holdings_side else "average_price_usd"] = amount(value["n"])
                if purchase.get("btc_amount") is None or purchase.get("aggregate_usd") is None:
                    continue
                period = _PERIOD.search(text)
                return BitcoinPurchase(
                    btc_amount=purchase["btc_amount"],
                    aggregate_usd=purchase["aggregate_usd"],
                    average_price_usd=purchase.get("average_price_usd"),
                    period_start=_us_date(period["start"]) if period else None,
                    period_end=_us_date(period["end"]) if period else None,
                    holdings_btc=purchase.get("holdings_btc"),
                    holdings_cost_usd=purchase.get("holdings_cost_usd"),
                    holdings_average_usd=purchase.get("holdings_average_usd"),
                )
    return None


def parse_8k(document: str) -> EightK:
    """An 8-K's primary document (HTML, inline XBRL or plain text): does it speak of
    crypto, which coins, and is it Strategy's weekly bitcoin purchase?

    Coins come from the shared registry (``coins.extract_coins``), kept only where the
    registry knows the symbol: filings put every defined term in parentheses
    ("(ASU)", "(MSTR)"), which the registry would otherwise take for new coins.
    """
    tree = parse_html(document)
    text = squash(text_of(tree.root)) if tree.root is not None else ""
    currencies = [symbol for symbol in extract_coins(text) if is_known(symbol)]
    mentions = bool(currencies) or bool(_CRYPTO_WORDS.search(text))
    purchase = None
    if mentions:
        purchase = _prose_purchase(text) or _table_purchase(_tables(tree), text)
    return EightK(mentions_crypto=mentions, currencies=currencies, bitcoin_purchase=purchase)


def check_is_8k(document: str, filing: Filing, url: str) -> None:
    """Refuse a document that is not the filing (a maintenance page, an error page served
    with 200): an 8-K's cover names its form and its filer. Stored from a wrong page, a
    bitcoin purchase would read as a dull filing."""
    text = html_to_text(document)
    company = (filing.company.split() or [""])[0]
    if not re.search(r"\b8-K\b", text, re.IGNORECASE) or company.lower() not in text.lower():
        raise SourcePayloadError(SOURCE, url, f"the document of {filing.accession_number} is not an 8-K of "
                                 f"{filing.company} (no 'Form 8-K' and filer name on it): {text[:80]!r}")
