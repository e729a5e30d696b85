"""Form 4 (and 3 and 5): an ownership document's issuer, owners and transactions, read
from its raw XML."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import InvalidOperation

from defusedxml import DefusedXmlException, EntitiesForbidden
from defusedxml.ElementTree import fromstring as defused_fromstring

from omc_pipelines.sources.html_text import squash
from omc_pipelines.sources.sec.common import APPROX, NUMBER, SOURCE, EdgarPayload, amount, normalise_cik, to_decimal

_XSL_PREFIX = re.compile(r"^xsl[^/]*/", re.IGNORECASE)


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


def form4_xml_path(primary_document: str) -> str:
    """The raw XML of an ownership form: ``xslF345X05/wk-form4_123.xml`` -> ``wk-form4_123.xml``."""
    return _XSL_PREFIX.sub("", primary_document, count=1)


_WEIGHTED_AVERAGE = re.compile(
    rf"weighted[\s-]+average\s+(?:sale\s+|sales\s+|purchase\s+)?price\s+(?:per\s+share\s+)?(?:of|was|is|equal\s+to)\s+"
    rf"{APPROX}\$\s?(?P<n>{NUMBER})",
    re.IGNORECASE,
)
_RANGE = re.compile(rf"rang(?:ing|ed|e)\s+from\s+{APPROX}\$\s?(?P<low>{NUMBER})\s+to\s+{APPROX}\$\s?(?P<high>{NUMBER})",
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
    p = EdgarPayload(SOURCE, url)
    raw = xml.encode() if isinstance(xml, str) else xml
    try:
        # An ownership document never declares entities: defusedxml refuses any entity
        # declaration (expansion bombs) and external reference, in whatever encoding.
        root = defused_fromstring(raw)
    except EntitiesForbidden as exc:
        raise p.fail(f"the XML declares entities ({exc})") from None
    except DefusedXmlException as exc:
        raise p.fail(f"the XML refers outside itself ({exc})") from None
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
            value = float(to_decimal(text))
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
            low, high = (amount(ranges[0]["low"]), amount(ranges[0]["high"])) if len(ranges) == 1 else (None, None)
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
                    footnote_price=amount(stated[0]["n"]) if len(stated) == 1 else None,
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
