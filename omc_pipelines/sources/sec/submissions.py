"""A filer's submissions (``/submissions/CIK##########.json``): its recent filings as rows."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from omc_pipelines.sources.sec.common import ARCHIVES_URL, DATA_URL, SOURCE, EdgarPayload, normalise_cik
from omc_pipelines.sources.sec.timezones import acceptance_to_utc, detect_convention

_ACCESSION = re.compile(r"^\d{10}-\d{2}-\d{6}$")


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


# Parallel arrays a filing cannot do without, and those that may be missing in older payloads.
REQUIRED_ARRAYS = ("accessionNumber", "filingDate", "acceptanceDateTime", "form", "primaryDocument")
OPTIONAL_ARRAYS = ("reportDate", "items", "primaryDocDescription")


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
    p = EdgarPayload(SOURCE, url)
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
