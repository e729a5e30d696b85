"""SEC EDGAR: a filer's submissions, 8-K documents and Form 4 ownership reports.

Pure parse functions (``parse_submissions``, ``parse_8k``, ``parse_form4``) take
what EDGAR sent and return typed rows, or raise ``SourcePayloadError`` naming what
is wrong; the ``SecEdgar`` client fetches over the shared HTTP layer. Nothing here
touches the database.

EDGAR's manners, which the client keeps:

- Every request declares a User-Agent naming the requester and a contact email.
  The client refuses to exist without one (``SecUserAgentError``), before any
  request is sent.
- At most 10 requests a second across everything a user runs: the data and the
  archives hosts share one rate budget (one ``HttpSource`` name, ``"sec"``).
- When the SEC throttles, it usually answers 403, not 429, and blocks the address
  for about ten minutes. Both count as throttling: retried with backoff, then
  ``SourceThrottled``, after which the process sends nothing to the SEC for a
  cool-down (``cooldown`` seconds) instead of hammering a blocked address.
"""

from __future__ import annotations

import email.utils
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from selectolax.lexbor import LexborHTMLParser, LexborNode

from omc_pipelines.settings import SEC_USER_AGENT
from omc_pipelines.sources.coins import extract_coins, is_known
from omc_pipelines.sources.html_text import html_to_text, is_visible, parse_html, squash, text_of
from omc_pipelines.sources.http import USER_AGENT, HttpSource, SourcePayloadError, SourceThrottled
from omc_pipelines.sources.payload import Payload

SOURCE = "sec"
NEW_YORK = ZoneInfo("America/New_York")
DATA_URL = "https://data.sec.gov"
ARCHIVES_URL = "https://www.sec.gov"
USER_AGENT_EXAMPLE = "OMC Pipelines ops@example.com"

# EDGAR accepts filings on business days from 06:00 to 22:00 New York time. A filing
# accepted after 17:30 is, for most forms (8-K among them), dated the next business
# day; Section 16 forms (3, 4, 5) keep the same day until 22:00.
EDGAR_OPENS = clock_time(6, 0)
EDGAR_CLOSES = clock_time(22, 0)
EDGAR_CUTOFF = clock_time(17, 30)
CONVENTIONS = ("utc", "new_york")

_ACCESSION = re.compile(r"^\d{10}-\d{2}-\d{6}$")
_XSL_PREFIX = re.compile(r"^xsl[^/]*/", re.IGNORECASE)


# --- rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class Filing:
    """One row of a filer's ``filings.recent``."""

    cik: str  # the filer's CIK, 10 digits
    company: str
    accession_number: str  # with dashes: 0001050446-26-000031
    form: str
    filing_date: date
    accepted_at: datetime  # aware, UTC, corrected for EDGAR's time-zone label (see acceptance_to_utc)
    report_date: date | None
    items: tuple[str, ...]  # 8-K items ("7.01", "8.01"); () for other forms
    primary_document: str  # as EDGAR lists it; for Form 4 the XSL-rendered path
    primary_doc_description: str
    document_url: str  # the primary document under the archives base; "" when the filing has none
    url: str  # the filing's index page

    @property
    def accession_folder(self) -> str:
        """The accession number as the archive's folder names it: no dashes."""
        return self.accession_number.replace("-", "")


@dataclass(frozen=True)
class Submissions:
    """One poll of ``/submissions/CIK##########.json``."""

    cik: str
    filings: list[Filing]
    etag: str | None
    last_modified: str | None
    not_modified: bool  # the server answered 304: nothing changed since etag/last_modified, filings empty


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


@dataclass(frozen=True)
class Owner:
    cik: str
    name: str
    is_director: bool
    is_officer: bool
    officer_title: str | None
    is_ten_percent_owner: bool
    is_other: bool = False


@dataclass(frozen=True)
class Transaction:
    security_title: str
    date: date
    code: str  # P purchase, S sale, A grant, M exercise, F tax withholding, G gift, ...
    shares: float
    price: float | None  # None when the form gives the price only in a footnote (or not at all)
    acquired_disposed: str  # "A" or "D"
    shares_owned_after: float | None
    footnotes: list[str]  # texts of every footnote the transaction cites, in order
    derivative: bool = False  # from derivativeTable (options, units) rather than nonDerivativeTable
    direct_or_indirect: str | None = None  # "D" or "I"
    footnote_price: float | None = None  # a weighted average price stated as one number in a price footnote
    price_range: tuple[float, float] | None = None  # "at prices ranging from $X to $Y" in a price footnote


@dataclass(frozen=True)
class Form4:
    issuer_cik: str
    issuer_name: str
    issuer_symbol: str
    owners: list[Owner]
    transactions: list[Transaction]
    document_type: str = "4"
    period_of_report: date | None = None


# --- payload reading -------------------------------------------------------------------


class _Payload(Payload):
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


# --- the time-zone trap ----------------------------------------------------------------


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


# --- submissions -----------------------------------------------------------------------

# Parallel arrays a filing cannot do without, and those that may be missing in older payloads.
REQUIRED_ARRAYS = ("accessionNumber", "filingDate", "acceptanceDateTime", "form", "primaryDocument")
OPTIONAL_ARRAYS = ("reportDate", "items", "primaryDocDescription")


def normalise_cik(cik: str | int) -> str:
    """``1050446``, ``"1050446"`` or ``"0001050446"`` -> ``"0001050446"``."""
    text = str(cik).strip()
    if not text.isdigit() or len(text) > 10:
        raise ValueError(f"a CIK is up to 10 digits, got {cik!r}")
    return text.zfill(10)


def archive_path(cik: str | int, accession_number: str, document: str) -> str:
    """``/Archives/edgar/data/{cik}/{accession without dashes}/{document}``, the CIK unpadded."""
    return f"/Archives/edgar/data/{int(normalise_cik(cik))}/{accession_number.replace('-', '')}/{document}"


def filings_of(filings: Iterable[Filing], forms: Iterable[str], amendments: bool = False) -> list[Filing]:
    """The filings of the given forms (exact names: "8-K", "4"); with ``amendments``
    their amendments too ("8-K/A", "4/A")."""
    wanted = {f.upper() for f in forms}
    if amendments:
        wanted |= {f"{f}/A" for f in wanted}
    return [f for f in filings if f.form.upper() in wanted]


def parse_submissions(
    payload: Any,
    url: str = DATA_URL + "/submissions",
    *,
    archives_url: str = ARCHIVES_URL,
    forms: Iterable[str] | None = None,
    cik: str | int | None = None,
) -> list[Filing]:
    """``/submissions/CIK##########.json``: the filer's recent filings, newest first.

    ``filings.recent`` is a set of parallel arrays; they must all have one length.
    Every form is kept unless ``forms`` names the wanted ones. Document and index
    URLs are built under ``archives_url``. With ``cik``, the payload must be that filer's.
    """
    p = _Payload(SOURCE, url)
    if not isinstance(payload, dict):
        raise p.fail(f"expected a JSON object, got {type(payload).__name__}")
    raw_cik = p.field(payload, "cik", "body")
    try:
        filer = normalise_cik(raw_cik)
    except ValueError:
        raise p.fail(f"cik is {raw_cik!r}, not a CIK") from None
    if cik is not None and filer != normalise_cik(cik):
        raise p.fail(f"cik is {filer}, expected {normalise_cik(cik)}")
    company = p.text(p.field(payload, "name", "body"), "name")
    recent = p.field(p.field(payload, "filings", "body"), "recent", "filings")
    if not isinstance(recent, dict):
        raise p.fail("filings.recent is not an object")

    for name in REQUIRED_ARRAYS:
        p.field(recent, name, "filings.recent")
    lengths = {}
    for name, value in recent.items():
        if name in REQUIRED_ARRAYS or name in OPTIONAL_ARRAYS or isinstance(value, list):
            if not isinstance(value, list):
                raise p.fail(f"filings.recent.{name} is {type(value).__name__}, not an array")
            lengths[name] = len(value)
    if len(set(lengths.values())) > 1:
        common = max(set(lengths.values()), key=list(lengths.values()).count)
        odd = ", ".join(f"{n} has {n_}" for n, n_ in lengths.items() if n_ != common)
        raise p.fail(f"filings.recent arrays differ in length: {odd}, the others {common}")
    count = lengths[REQUIRED_ARRAYS[0]]

    def column(name: str, default: Any) -> list[Any]:
        return recent[name] if name in recent else [default] * count

    accessions, forms_ = recent["accessionNumber"], recent["form"]
    filing_dates = [p.date(v, f"filings.recent.filingDate[{i}]") for i, v in enumerate(recent["filingDate"])]
    acceptances = [
        p.text(v, f"filings.recent.acceptanceDateTime[{i}]", empty=False) for i, v in enumerate(recent["acceptanceDateTime"])
    ]
    convention = detect_convention(zip(acceptances, filing_dates))
    report_dates, items, documents, descriptions = (
        column("reportDate", ""), column("items", ""), recent["primaryDocument"], column("primaryDocDescription", "")
    )
    base = archives_url.rstrip("/")
    filings = []
    for i in range(count):
        where = f"filings.recent.{{}}[{i}]"
        accession = p.text(accessions[i], where.format("accessionNumber"))
        if not _ACCESSION.match(accession):
            raise p.fail(f"{where.format('accessionNumber')} is {accession!r}, not like 0001050446-26-000123")
        try:
            accepted = acceptance_to_utc(acceptances[i], filing_dates[i], convention)
        except ValueError:
            raise p.fail(f"{where.format('acceptanceDateTime')} is {acceptances[i]!r}, not an ISO time") from None
        document = p.text(documents[i], where.format("primaryDocument"))
        item_text = p.text(items[i] or "", where.format("items"))
        folder = f"{base}/Archives/edgar/data/{int(filer)}/{accession.replace('-', '')}"
        filings.append(
            Filing(
                cik=filer,
                company=company,
                accession_number=accession,
                form=p.text(forms_[i], where.format("form"), empty=False).strip(),
                filing_date=filing_dates[i],
                accepted_at=accepted,
                report_date=p.optional_date(report_dates[i], where.format("reportDate")),
                items=tuple(item.strip() for item in item_text.split(",") if item.strip()),
                primary_document=document,
                primary_doc_description=p.text(descriptions[i] or "", where.format("primaryDocDescription")),
                document_url=f"{folder}/{document}" if document else "",
                url=f"{folder}/{accession}-index.htm",
            )
        )
    return filings if forms is None else filings_of(filings, forms)


# --- 8-K documents ---------------------------------------------------------------------

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

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def _money(name: str) -> str:
    """"$98.7 million", "$ 584,123,456": the amount in group ``name``, the unit in ``name_unit``."""
    return rf"\$\s?(?P<{name}>{_NUMBER})(?:\s*(?P<{name}_unit>thousand|million|billion)\b)?"


_SCALE = {None: 1, "": 1, "thousand": 10**3, "million": 10**6, "billion": 10**9}
_APPROX = r"(?:approximately\s+|about\s+|~\s?)?"
_BTC = r"(?:bitcoins?|BTC)\b"

_PURCHASE = re.compile(rf"\bacquired\s+(?:an\s+additional\s+|an\s+aggregate\s+of\s+)?{_APPROX}(?P<btc>{_NUMBER})\s+{_BTC}",
                       re.IGNORECASE)
_FOR_MONEY = re.compile(rf"\bfor\s+(?:an\s+aggregate\s+(?:purchase\s+price\s+)?of\s+)?{_APPROX}" + _money("usd"),
                        re.IGNORECASE)
_PER_BITCOIN = re.compile(rf"\$\s?(?P<avg>{_NUMBER})\s+per\s+{_BTC}", re.IGNORECASE)
_HOLDINGS = re.compile(
    rf"\b(?:held|holds|hold|bitcoin\s+holdings\s+(?:of|to|totaled|totalled|were|was))\s+(?:an\s+aggregate\s+of\s+)?"
    rf"{_APPROX}(?P<btc>{_NUMBER})\s+{_BTC}",
    re.IGNORECASE,
)
_AGGREGATE_PRICE = re.compile(rf"aggregate\s+purchase\s+price\s+of\s+{_APPROX}" + _money("usd"), re.IGNORECASE)
_PERIOD = re.compile(
    r"\bperiod\s+(?:between|from)\s+(?P<start>[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})\s+(?:and|to|through)\s+"
    r"(?P<end>[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})"
)
# A sentence ends at a full stop followed by a space: "$98.7 million" is not an end.
_SENTENCE_END = re.compile(r"\.(?=\s|$)")


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _amount(text: str, unit: str | None = None) -> float | None:
    """A number as filed ("1,234.5", scaled by "million" and the like), or None past float's
    range: no filing means a figure of 400 digits, and an infinite one would poison the ledger."""
    value = float(_number(text) * _SCALE[(unit or "").lower()])
    return value if math.isfinite(value) else None


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
        btc, usd = _amount(match["btc"]), _amount(money["usd"], money["usd_unit"])
        if btc is None or usd is None:
            continue
        average = _PER_BITCOIN.search(sentence, money.end())
        holdings = _holdings(text[match.end():])
        period = _PERIOD.search(text[max(0, match.start() - 300): match.start()])
        return BitcoinPurchase(
            btc_amount=btc,
            aggregate_usd=usd,
            average_price_usd=_amount(average["avg"]) if average else None,
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
        found["holdings_btc"] = _amount(match["btc"])
        found["holdings_cost_usd"] = _amount(cost["usd"], cost["usd_unit"]) if cost else None
        found["holdings_average_usd"] = _amount(average["avg"]) if average else None
    return found


_TABLE_UNIT = re.compile(r"\bin\s+(thousands|millions|billions)\b", re.IGNORECASE)
_CELL_VALUE = re.compile(rf"^\$?\s?(?P<n>{_NUMBER})\s*(?P<unit>thousand|million|billion)?$", re.IGNORECASE)


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
                        purchase["holdings_btc"] = _amount(value["n"])
                    elif "acquired" in h:
                        purchase["btc_amount"] = _amount(value["n"])
                    elif "aggregate purchase price" in h:
                        purchase["holdings_cost_usd" if holdings_side else "aggregate_usd"] = _amount(value["n"], unit)
                    elif "average purchase price" in h:
                        purchase["holdings_average_usd" if holdings_side else "average_price_usd"] = _amount(value["n"])
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


# --- Form 4 ----------------------------------------------------------------------------


def form4_xml_path(primary_document: str) -> str:
    """The raw XML of an ownership form: ``xslF345X05/wk-form4_123.xml`` -> ``wk-form4_123.xml``."""
    return _XSL_PREFIX.sub("", primary_document, count=1)


_WEIGHTED_AVERAGE = re.compile(
    rf"weighted[\s-]+average\s+(?:sale\s+|sales\s+|purchase\s+)?price\s+(?:per\s+share\s+)?(?:of|was|is|equal\s+to)\s+"
    rf"{_APPROX}\$\s?(?P<n>{_NUMBER})",
    re.IGNORECASE,
)
_RANGE = re.compile(rf"rang(?:ing|ed|e)\s+from\s+{_APPROX}\$\s?(?P<low>{_NUMBER})\s+to\s+{_APPROX}\$\s?(?P<high>{_NUMBER})",
                    re.IGNORECASE)


def _child_text(element: ET.Element | None, path: str) -> str | None:
    """Text at ``path`` (ownership XML wraps most values in ``<value>``), stripped; None if absent or empty."""
    if element is None:
        return None
    found = element.find(path)
    if found is None:
        return None
    value = found.find("value")
    text = (value if value is not None else found).text
    return text.strip() if text and text.strip() else None


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "y", "yes")


def _footnote_ids(element: ET.Element | None) -> list[str]:
    if element is None:
        return []
    return list(dict.fromkeys(f.get("id", "") for f in element.iter("footnoteId") if f.get("id")))


def parse_form4(xml: str | bytes, url: str = "form4") -> Form4:
    """An ownership document (Form 4, also 3 and 5): issuer, every reporting owner,
    every transaction of both tables, footnotes attached to what cites them."""
    p = _Payload(SOURCE, url)
    raw = xml.encode() if isinstance(xml, str) else xml
    if b"<!ENTITY" in raw:
        # An ownership document never declares entities; refusing them is the cheap
        # defence against entity-expansion bombs without a new dependency.
        raise p.fail("the XML declares entities")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise p.fail(f"not well-formed XML ({exc})") from None
    if root.tag != "ownershipDocument":
        raise p.fail(f"root element is <{root.tag}>, not <ownershipDocument>")

    footnotes = {}
    for note in root.iterfind("footnotes/footnote"):
        footnotes[note.get("id", "")] = squash("".join(note.itertext()))

    def required(element: ET.Element | None, path: str, where: str) -> str:
        value = _child_text(element, path)
        if value is None:
            raise p.fail(f"{where}.{path.replace('/', '.')} is missing or empty")
        return value

    def number(text: str | None, where: str) -> float | None:
        if text is None:
            return None
        try:
            value = float(_number(text))
        except InvalidOperation:
            raise p.fail(f"{where} is {text!r}, not a number") from None
        if not math.isfinite(value):  # Decimal reads "NaN", "Infinity" and "1e999999"
            raise p.fail(f"{where} is {text!r}, not a finite number")
        return value

    def notes(ids: Iterable[str], where: str) -> list[str]:
        texts = []
        for note_id in ids:
            if note_id not in footnotes:
                raise p.fail(f"{where} cites footnote {note_id!r}, which the document does not have")
            texts.append(footnotes[note_id])
        return texts

    issuer = root.find("issuer")
    if issuer is None:
        raise p.fail("ownershipDocument has no issuer")
    def cik(value: str, where: str) -> str:
        try:
            return normalise_cik(value)  # up to 10 digits: "00000000000" is not one
        except ValueError:
            raise p.fail(f"{where} is {value!r}, not a CIK") from None

    issuer_cik = cik(required(issuer, "issuerCik", "issuer"), "issuer.issuerCik")

    owners = []
    for i, element in enumerate(root.iterfind("reportingOwner")):
        where = f"reportingOwner[{i}]"
        owner_cik = cik(required(element, "reportingOwnerId/rptOwnerCik", where), f"{where}.rptOwnerCik")
        relation = element.find("reportingOwnerRelationship")
        owners.append(
            Owner(
                cik=owner_cik,
                name=required(element, "reportingOwnerId/rptOwnerName", where),
                is_director=_flag(_child_text(relation, "isDirector")),
                is_officer=_flag(_child_text(relation, "isOfficer")),
                officer_title=_child_text(relation, "officerTitle"),
                is_ten_percent_owner=_flag(_child_text(relation, "isTenPercentOwner")),
                is_other=_flag(_child_text(relation, "isOther")),
            )
        )
    if not owners:
        raise p.fail("ownershipDocument has no reportingOwner")

    transactions = []
    for table, row, derivative in (
        ("nonDerivativeTable", "nonDerivativeTransaction", False),
        ("derivativeTable", "derivativeTransaction", True),
    ):
        for i, element in enumerate(root.iterfind(f"{table}/{row}")):
            where = f"{row}[{i}]"
            code = required(element, "transactionCoding/transactionCode", where)
            shares = number(required(element, "transactionAmounts/transactionShares", where),
                            f"{where}.transactionShares")
            price_element = element.find("transactionAmounts/transactionPricePerShare")
            price = number(_child_text(element, "transactionAmounts/transactionPricePerShare"),
                           f"{where}.transactionPricePerShare")
            price_notes = notes(_footnote_ids(price_element), where)
            stated = [m for note in price_notes for m in _WEIGHTED_AVERAGE.finditer(note)]
            ranges = [m for note in price_notes for m in _RANGE.finditer(note)]
            low, high = (_amount(ranges[0]["low"]), _amount(ranges[0]["high"])) if len(ranges) == 1 else (None, None)
            direction = required(element, "transactionAmounts/transactionAcquiredDisposedCode", where).upper()
            if direction not in ("A", "D"):
                raise p.fail(f"{where}.transactionAcquiredDisposedCode is {direction!r}, not A or D")
            transactions.append(
                Transaction(
                    security_title=required(element, "securityTitle", where),
                    date=p.date(required(element, "transactionDate", where), f"{where}.transactionDate"),
                    code=code.upper(),
                    shares=shares,
                    price=price,
                    acquired_disposed=direction,
                    shares_owned_after=number(
                        _child_text(element, "postTransactionAmounts/sharesOwnedFollowingTransaction"),
                        f"{where}.sharesOwnedFollowingTransaction",
                    ),
                    footnotes=notes(_footnote_ids(element), where),
                    derivative=derivative,
                    direct_or_indirect=_child_text(element, "ownershipNature/directOrIndirectOwnership"),
                    footnote_price=_amount(stated[0]["n"]) if len(stated) == 1 else None,
                    price_range=(low, high) if low is not None and high is not None else None,
                )
            )

    period = _child_text(root, "periodOfReport")
    return Form4(
        issuer_cik=issuer_cik,
        issuer_name=required(issuer, "issuerName", "issuer"),
        issuer_symbol=_child_text(issuer, "issuerTradingSymbol") or "",
        owners=owners,
        transactions=transactions,
        document_type=_child_text(root, "documentType") or "4",
        period_of_report=p.date(period, "periodOfReport") if period else None,
    )


# --- the client ------------------------------------------------------------------------


class SecUserAgentError(ValueError):
    """No usable User-Agent for the SEC: it must name the requester and give a contact email."""


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def check_user_agent(user_agent: str | None) -> str:
    """The User-Agent, stripped, if the SEC's fair-access policy accepts its shape;
    else ``SecUserAgentError`` saying how to set one."""
    value = (user_agent or "").strip()
    if not value:
        problem = "none is set"
    elif any(c in value for c in "\r\n"):
        problem = "it spans several lines"
    elif not _EMAIL.search(value):
        problem = f"{value!r} has no contact email"
    elif not re.search(r"[A-Za-z]{2,}", _EMAIL.sub("", value)):
        problem = f"{value!r} gives an email but no name"
    else:
        return value
    raise SecUserAgentError(
        f"SEC EDGAR requires a User-Agent naming you and giving a contact email, and {problem}: "
        f'set {SEC_USER_AGENT}, e.g. {SEC_USER_AGENT}="{USER_AGENT_EXAMPLE}"'
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


# After the SEC throttles, nothing is sent to it from this process until the time here
# (time.monotonic), per source name: its block lasts about ten minutes, and every
# request inside it only prolongs the wait.
_cooldowns: dict[str, float] = {}
_cooldowns_lock = threading.Lock()


class SecEdgar:
    """EDGAR's submissions (data host) and archives (www host), one rate budget for both."""

    def __init__(self, data: HttpSource, archives: HttpSource, *, cooldown: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        for http in (data, archives):
            # What goes out: the source's own header, else the layer's generic agent (which the SEC refuses).
            check_user_agent(_header(http.headers, "User-Agent") or USER_AGENT)
        self.data, self.archives = data, archives
        self.cooldown = cooldown
        self._clock = clock

    @classmethod
    def create(
        cls,
        data_url: str,
        archives_url: str,
        user_agent: str | None,
        rate_limit: float = 10.0,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.5,
        *,
        cooldown: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        budget: float | None = None,
    ) -> SecEdgar:
        """Refuses (``SecUserAgentError``) before building anything if the agent is unusable."""
        agent = check_user_agent(user_agent)
        common = dict(
            name=SOURCE, timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit,
            throttle_statuses=(429, 403), sleep=sleep, transport=transport, budget=budget,
        )
        data = HttpSource(base_url=data_url, headers={"User-Agent": agent, "Accept": "application/json"}, **common)
        archives = HttpSource(
            base_url=archives_url,
            headers={"User-Agent": agent, "Accept": "text/html, application/xml, text/xml, */*"},
            **common,
        )
        return cls(data, archives, cooldown=cooldown, clock=clock)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> SecEdgar:
        """From ``omc_pipelines.settings.Settings``; ``options`` override (sleep, cooldown, ...)."""
        values = dict(
            data_url=settings.sec_data_url, archives_url=settings.sec_archives_url, user_agent=settings.sec_user_agent,
            rate_limit=settings.sec_rate_limit, timeout=settings.http_timeout, retries=settings.http_retries,
        )
        values.update(options)
        return cls.create(**values)

    def close(self) -> None:
        self.data.close()
        self.archives.close()

    def __enter__(self) -> SecEdgar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, http: HttpSource, path: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        with _cooldowns_lock:
            until = _cooldowns.get(http.name, 0.0)
        now = self._clock()
        if now < until:
            raise SourceThrottled(
                http.name, http.shown_url(path),
                f"cooling down after the SEC throttled this process (403/429): {until - now:.0f} s left, nothing sent",
            )
        try:
            return http.get(path, headers=headers)
        except SourceThrottled:
            if self.cooldown > 0:
                with _cooldowns_lock:
                    _cooldowns[http.name] = max(_cooldowns.get(http.name, 0.0), self._clock() + self.cooldown)
            raise

    def submissions(
        self,
        cik: str | int,
        etag: str | None = None,
        last_modified: str | datetime | None = None,
        forms: Iterable[str] | None = None,
    ) -> Submissions:
        """The filer's recent filings; a conditional GET when ``etag``/``last_modified``
        come from the previous poll, so that an unchanged poll costs a 304 and no parsing."""
        cik10 = normalise_cik(cik)
        path = f"/submissions/CIK{cik10}.json"
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if isinstance(last_modified, datetime):
            last_modified = email.utils.format_datetime(last_modified.astimezone(timezone.utc), usegmt=True)
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response = self._get(self.data, path, headers)
        new_etag = response.headers.get("ETag")
        new_modified = response.headers.get("Last-Modified")
        if response.status_code == 304:
            return Submissions(cik10, [], new_etag or etag, new_modified or last_modified, True)
        filings = parse_submissions(
            self.data.decode_json(response, path), self.data.shown_url(path),
            archives_url=self.archives.base_url, forms=forms, cik=cik10,
        )
        return Submissions(cik10, filings, new_etag, new_modified, False)

    def document(self, filing: Filing) -> str:
        """The text of the filing's primary document (for Form 4, the XSL-rendered HTML)."""
        if not filing.primary_document:
            raise ValueError(f"filing {filing.accession_number} has no primary document")
        path = archive_path(filing.cik, filing.accession_number, filing.primary_document)
        return self._get(self.archives, path).text

    def eight_k(self, filing: Filing) -> EightK:
        document = self.document(filing)
        check_is_8k(document, filing, self.archives.shown_url(
            archive_path(filing.cik, filing.accession_number, filing.primary_document)))
        return parse_8k(document)

    def form4(self, filing: Filing) -> Form4:
        """The ownership report behind a Form 4 filing, read from its raw XML."""
        document = form4_xml_path(filing.primary_document)
        if not document.lower().endswith(".xml"):
            raise ValueError(f"filing {filing.accession_number} ({filing.form}) has no XML primary document")
        path = archive_path(filing.cik, filing.accession_number, document)
        response = self._get(self.archives, path)
        return parse_form4(response.content, self.archives.shown_url(path))
