"""SEC EDGAR in the sandbox: submissions and archives from the recordings, new filings on demand.

Serves, like the SEC (both hosts on the one sandbox URL):

- ``GET /submissions/CIK##########.json``: the filer's submissions with ``ETag`` and
  ``Last-Modified``; 304 to a matching ``If-None-Match`` (or, without one, to an
  ``If-Modified-Since`` no older than the last change); 404 for an unknown CIK.
- ``GET /Archives/edgar/data/{cik}/{accession without dashes}/{document}``: 8-K
  HTML, Form 4 raw XML, the Form 4 rendered as HTML under its ``xslF345X05/``
  path, and the filing's ``{accession}-index.htm`` page.
- Every one of those demands a User-Agent naming the requester with a contact
  email and answers 403 without one, as the SEC refuses undeclared tools. With
  ``fair_access(...)`` on, more than ``max_per_second`` requests in a second earn
  403s for ``block_seconds``, like the SEC's block of an address.

Publishing, from Python or over HTTP (JSON bodies):

- ``publish_8k`` / ``POST /_sandbox/sec/8k``: ``{"cik", "text" | "html", "items",
  "accepted_at", "report_date"}`` -> ``{"accession_number", "primary_document"}``
- ``publish_form4`` / ``POST /_sandbox/sec/form4``: ``{"cik", "xml"}`` or structured
  fields (``owner_name``, ``code``, ``shares``, ``price``, ``footnote``, ...)
- ``POST /_sandbox/sec/fair-access`` ``{"max_per_second", "block_seconds"}``
  (``max_per_second`` null turns it off); ``POST /_sandbox/sec/reset``.

A new filing goes to the top of ``filings.recent`` (newest first, like EDGAR), its
``acceptanceDateTime`` written in the filer's convention (Strategy's recordings
label New York wall time ``Z``, Coinbase's are true UTC), and the ETag changes.
"""

from __future__ import annotations

import copy
import email.utils
import hashlib
import html
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from omc_pipelines.sandbox.times import parse_time
from omc_pipelines.sandbox.server import Request, Response, SandboxServer

RECORDINGS = Path(__file__).with_name("recordings") / "sec"
NEW_YORK = ZoneInfo("America/New_York")
STRATEGY, COINBASE = "0001050446", "0001679788"
# How each recorded filer labels acceptanceDateTime: the time-zone trap, both ways.
CONVENTIONS = {STRATEGY: "new_york", COINBASE: "utc"}
XSL_FORM4 = "xslF345X05"
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
_CUTOFF = clock_time(17, 30)
_CLOSES = clock_time(22, 0)


def _http_date(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(timezone.utc), usegmt=True)


def _parse_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def filing_date_for(accepted_at: datetime, form: str) -> date:
    """The date EDGAR gives a filing accepted at ``accepted_at``: the New York date,
    moved to the next business day for a filing accepted on a weekend, or after 17:30
    (after 22:00 for Section 16 forms 3, 4 and 5, which keep the day until then)."""
    ny = accepted_at.astimezone(NEW_YORK)
    cutoff = _CLOSES if form.split("/")[0] in ("3", "4", "5") else _CUTOFF
    day = ny.date()
    if ny.weekday() >= 5 or ny.time() > cutoff:
        return _next_weekday(day if ny.weekday() < 5 else day - timedelta(days=1))
    return day


def acceptance_label(accepted_at: datetime, convention: str) -> str:
    """``acceptanceDateTime`` as a filer of that convention shows it: always ``...Z``."""
    shown = accepted_at.astimezone(NEW_YORK if convention == "new_york" else timezone.utc)
    return shown.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _read_acceptance(value: str, convention: str) -> datetime:
    wall = datetime.fromisoformat(value.replace("Z", "")).replace(tzinfo=None)
    return wall.replace(tzinfo=NEW_YORK if convention == "new_york" else timezone.utc).astimezone(timezone.utc)


def _xml_number(value: float) -> str:
    """1234567 -> "1234567", 310.125 -> "310.125": never the exponent form "1.23457e+06"."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _undeclared(message: str) -> Response:
    body = (
        f"<!DOCTYPE html><html><head><title>SEC.gov | {html.escape(message)}</title></head><body>"
        f"<h1>{html.escape(message)}</h1><p>Please declare your traffic by updating your user agent to include "
        "company specific information. For best practices on efficiently downloading information from SEC.gov, "
        "including the latest EDGAR filings, visit sec.gov/developer.</p></body></html>"
    )
    return Response(403, body, content_type="text/html")


@dataclass
class _Document:
    body: bytes
    content_type: str


@dataclass
class _Filer:
    submissions: dict[str, Any]
    body: bytes
    etag: str
    last_modified: datetime


class SecEdgarSandbox:
    """The sandbox's EDGAR: each filer's submissions and the documents behind them."""

    def __init__(self, now: Callable[[], datetime] | None = None):
        """``now``: the clock of publications without ``accepted_at`` (default: the real UTC now)."""
        self._lock = threading.Lock()
        self._now = now or (lambda: datetime.now(timezone.utc))
        self.conventions = dict(CONVENTIONS)
        self.fair_access(None)
        self._load()

    # --- state --------------------------------------------------------------------

    def _load(self) -> None:
        self.filers: dict[str, _Filer] = {}
        for path in sorted((RECORDINGS / "submissions").glob("CIK*.json")):
            payload = json.loads(path.read_text())
            cik = path.stem[3:]
            recent = payload["filings"]["recent"]
            convention = self.conventions.get(cik, "utc")
            newest = max(
                (_read_acceptance(value, convention) for value in recent["acceptanceDateTime"]),
                default=datetime(2000, 1, 1, tzinfo=timezone.utc),
            )
            self.filers[cik] = self._filer(payload, newest)
        self.user_agents: list[str] = []  # every User-Agent the SEC routes saw, in order
        # (cik unpadded, accession folder, document name) -> what to serve
        self.documents: dict[tuple[str, str, str], _Document] = {}
        archives = RECORDINGS / "Archives" / "edgar" / "data"
        for path in sorted(archives.rglob("*")):
            if path.is_file():
                cik, folder, *name = path.relative_to(archives).parts
                self.documents[(cik, folder, "/".join(name))] = _Document(path.read_bytes(), self._content_type(path.name))

    def _filer(self, payload: dict[str, Any], last_modified: datetime) -> _Filer:
        body = json.dumps(payload).encode()
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        return _Filer(payload, body, etag, last_modified.replace(microsecond=0))

    @staticmethod
    def _content_type(name: str) -> str:
        if name.endswith(".xml"):
            return "text/xml"
        if name.endswith(".txt"):
            return "text/plain"
        return "text/html"

    def reset(self) -> None:
        """Back to the recordings: published filings gone, fair access off."""
        with self._lock:
            self.fair_access(None)
            self._load()

    def submissions(self, cik: str | int) -> dict[str, Any]:
        """A copy of the filer's current submissions payload."""
        return copy.deepcopy(self.filers[str(cik).zfill(10)].submissions)

    def etag(self, cik: str | int) -> str:
        return self.filers[str(cik).zfill(10)].etag

    def fair_access(self, max_per_second: float | None = 10.0, block_seconds: float = 600.0) -> None:
        """Enforce the SEC's 10-a-second rule: over it, 403 for every request for ``block_seconds``.
        ``None`` turns it off (the default, so that tests with a fast client are not blocked)."""
        self._max_per_second = max_per_second
        self._block_seconds = block_seconds
        self._recent_requests: deque[float] = deque()
        self._blocked_until = 0.0

    # --- publishing ---------------------------------------------------------------

    def publish_8k(
        self,
        cik: str | int,
        text: str | None = None,
        *,
        html: str | None = None,
        items: Any = ("8.01",),
        accepted_at: datetime | None = None,
        report_date: date | None = None,
        form: str = "8-K",
    ) -> str:
        """A new 8-K at the top of the filer's submissions; returns its accession number."""
        if (text is None) == (html is None):
            raise ValueError("give exactly one of text or html")
        cik10 = str(cik).zfill(10)
        filer = self._known(cik10)
        accepted = (accepted_at or self._now()).astimezone(timezone.utc)
        report = report_date or accepted.astimezone(NEW_YORK).date()
        ticker = (filer.submissions.get("tickers") or ["filer"])[0].lower()
        name = f"{ticker}-{report:%Y%m%d}.htm"
        body = html if html is not None else self._html_of(text or "", filer.submissions.get("name", ""), form, report)
        item_text = items if isinstance(items, str) else ",".join(items)
        return self._publish(
            cik10, accepted, form=form, report_date=report, items=item_text, primary=name, description=form,
            documents={name: _Document(body.encode(), "text/html")}, xbrl=1,
        )

    def publish_form4(
        self,
        cik: str | int,
        xml: str | None = None,
        *,
        owner_name: str = "Doe Jane",
        owner_cik: str = "0001999999",
        is_director: bool = False,
        officer_title: str | None = "Chief Executive Officer",
        is_ten_percent_owner: bool = False,
        security_title: str = "Class A Common Stock",
        code: str = "P",
        shares: float = 1000.0,
        price: float | None = None,
        acquired_disposed: str | None = None,
        shares_owned_after: float | None = None,
        transaction_date: date | None = None,
        footnote: str | None = None,
        accepted_at: datetime | None = None,
    ) -> str:
        """A new Form 4, from raw ownership XML or from the fields of one owner and one
        transaction (``price`` None with a ``footnote``: the price only in the footnote)."""
        cik10 = str(cik).zfill(10)
        filer = self._known(cik10)
        accepted = (accepted_at or self._now()).astimezone(timezone.utc)
        if xml is None:
            xml = self.form4_xml(
                issuer_cik=cik10, issuer_name=filer.submissions.get("name", ""),
                issuer_symbol=(filer.submissions.get("tickers") or [""])[0], owner_name=owner_name, owner_cik=owner_cik,
                is_director=is_director, officer_title=officer_title, is_ten_percent_owner=is_ten_percent_owner,
                security_title=security_title, code=code, shares=shares, price=price,
                acquired_disposed=acquired_disposed, shares_owned_after=shares_owned_after,
                transaction_date=transaction_date or accepted.astimezone(NEW_YORK).date(), footnote=footnote,
            )
        period = None
        try:
            period = _parse_date((ET.fromstring(xml.encode()).findtext("periodOfReport") or "").strip()[:10])
        except (ET.ParseError, ValueError):
            pass  # publishing a malformed form on purpose is allowed: the client must cope
        name = f"wk-form4_{int(accepted.timestamp())}.xml"
        return self._publish(
            cik10, accepted, form="4", report_date=period, items="", primary=f"{XSL_FORM4}/{name}",
            description="FORM 4", documents={name: _Document(xml.encode(), "text/xml")}, xbrl=0,
        )

    @staticmethod
    def form4_xml(*, issuer_cik: str, issuer_name: str, issuer_symbol: str, owner_name: str, owner_cik: str,
                  is_director: bool, officer_title: str | None, is_ten_percent_owner: bool, security_title: str,
                  code: str, shares: float, price: float | None, acquired_disposed: str | None,
                  shares_owned_after: float | None, transaction_date: date, footnote: str | None) -> str:
        """An ownership document in EDGAR's X0508 schema: one owner, one transaction."""
        e = html.escape
        direction = acquired_disposed or ("A" if code.upper() in ("P", "A", "M", "C", "X") else "D")
        price_xml = f"<value>{_xml_number(price)}</value>" if price is not None else ""
        if footnote:
            price_xml += '<footnoteId id="F1"/>'
        after = (
            f"<sharesOwnedFollowingTransaction><value>{_xml_number(shares_owned_after)}</value>"
            "</sharesOwnedFollowingTransaction>" if shares_owned_after is not None else ""
        )
        title = f"<officerTitle>{e(officer_title)}</officerTitle>" if officer_title else ""
        notes = f'<footnote id="F1">{e(footnote)}</footnote>' if footnote else ""
        return f"""<?xml version="1.0"?>
<ownershipDocument>
    <schemaVersion>X0508</schemaVersion>
    <documentType>4</documentType>
    <periodOfReport>{transaction_date.isoformat()}</periodOfReport>
    <notSubjectToSection16>0</notSubjectToSection16>
    <issuer>
        <issuerCik>{e(issuer_cik)}</issuerCik>
        <issuerName>{e(issuer_name)}</issuerName>
        <issuerTradingSymbol>{e(issuer_symbol)}</issuerTradingSymbol>
    </issuer>
    <reportingOwner>
        <reportingOwnerId>
            <rptOwnerCik>{e(owner_cik)}</rptOwnerCik>
            <rptOwnerName>{e(owner_name)}</rptOwnerName>
        </reportingOwnerId>
        <reportingOwnerRelationship>
            <isDirector>{int(is_director)}</isDirector>
            <isOfficer>{int(bool(officer_title))}</isOfficer>
            <isTenPercentOwner>{int(is_ten_percent_owner)}</isTenPercentOwner>
            <isOther>0</isOther>
            {title}
        </reportingOwnerRelationship>
    </reportingOwner>
    <aff10b5One>0</aff10b5One>
    <nonDerivativeTable>
        <nonDerivativeTransaction>
            <securityTitle><value>{e(security_title)}</value></securityTitle>
            <transactionDate><value>{transaction_date.isoformat()}</value></transactionDate>
            <transactionCoding>
                <transactionFormType>4</transactionFormType>
                <transactionCode>{e(code.upper())}</transactionCode>
                <equitySwapInvolved>0</equitySwapInvolved>
            </transactionCoding>
            <transactionAmounts>
                <transactionShares><value>{_xml_number(shares)}</value></transactionShares>
                <transactionPricePerShare>{price_xml}</transactionPricePerShare>
                <transactionAcquiredDisposedCode><value>{direction}</value></transactionAcquiredDisposedCode>
            </transactionAmounts>
            <postTransactionAmounts>{after}</postTransactionAmounts>
            <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership></ownershipNature>
        </nonDerivativeTransaction>
    </nonDerivativeTable>
    <footnotes>{notes}</footnotes>
    <ownerSignature>
        <signatureName>/s/ {e(owner_name)}</signatureName>
        <signatureDate>{transaction_date.isoformat()}</signatureDate>
    </ownerSignature>
</ownershipDocument>
"""

    def _known(self, cik10: str) -> _Filer:
        if cik10 not in self.filers:
            raise KeyError(f"the sandbox has no filer with CIK {cik10}")
        return self.filers[cik10]

    @staticmethod
    def _html_of(text: str, company: str, form: str, report: date) -> str:
        paragraphs = "\n".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())
        return (
            "<?xml version='1.0' encoding='ASCII'?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\">\n"
            f"<head><title>{html.escape(form)}</title></head>\n<body>\n"
            f'<p style="text-align:center;font-weight:bold">FORM {html.escape(form)}</p>\n'
            f'<p style="text-align:center">Date of Report (Date of earliest event reported): '
            f"{report:%B} {report.day}, {report.year}</p>\n"
            f'<p style="text-align:center;font-weight:bold">{html.escape(company)}</p>\n{paragraphs}\n</body>\n</html>\n'
        )

    def _next_accession(self, cik10: str, year: int) -> str:
        prefix = f"{cik10}-{year % 100:02d}-"
        used = [
            int(a[len(prefix):]) for a in self.filers[cik10].submissions["filings"]["recent"]["accessionNumber"]
            if a.startswith(prefix)
        ]
        return f"{prefix}{max(used, default=0) + 1:06d}"

    def _publish(self, cik10: str, accepted: datetime, *, form: str, report_date: date | None, items: str,
                 primary: str, description: str, documents: dict[str, _Document], xbrl: int) -> str:
        with self._lock:
            filer = self.filers[cik10]
            payload = copy.deepcopy(filer.submissions)
            recent = payload["filings"]["recent"]
            accession = self._next_accession(cik10, accepted.astimezone(NEW_YORK).year)
            size = sum(len(d.body) for d in documents.values())
            row = {
                "accessionNumber": accession,
                "filingDate": filing_date_for(accepted, form).isoformat(),
                "reportDate": report_date.isoformat() if report_date else "",
                "acceptanceDateTime": acceptance_label(accepted, self.conventions.get(cik10, "utc")),
                "act": "34" if form.startswith("8-K") else "",
                "form": form,
                "fileNumber": next((n for n, f in zip(recent.get("fileNumber", []), recent["form"]) if f == form and n), ""),
                "filmNumber": f"{accepted:%y}{int(accession[-6:]):07d}" if form.startswith("8-K") else "",
                "items": items,
                "core_type": form,
                "size": size,
                "isXBRL": xbrl,
                "isInlineXBRL": xbrl,
                "primaryDocument": primary,
                "primaryDocDescription": description,
            }
            for key, values in recent.items():
                if isinstance(values, list):
                    values.insert(0, row.get(key, ""))
            folder = accession.replace("-", "")
            for name, document in documents.items():
                self.documents[(str(int(cik10)), folder, name)] = document
            # Last-Modified has whole seconds: a second publication within the same second must still move it.
            modified = max(self._now().astimezone(timezone.utc).replace(microsecond=0),
                           filer.last_modified + timedelta(seconds=1))
            self.filers[cik10] = self._filer(payload, modified)
        return accession

    # --- serving ------------------------------------------------------------------

    def install(self, server: SandboxServer) -> None:
        server.route("GET", r"/submissions/CIK(?P<cik>\d{10})\.json", self._submissions)
        server.route("GET", r"/Archives/edgar/data/(?P<cik>\d+)/(?P<folder>\d{18})/(?P<document>.+)", self._document)
        server.route("POST", r"/_sandbox/sec/8k", self._control_8k)
        server.route("POST", r"/_sandbox/sec/form4", self._control_form4)
        server.route("POST", r"/_sandbox/sec/fair-access", self._control_fair_access)
        server.route("POST", r"/_sandbox/sec/reset", self._control_reset)

    def _guard(self, request: Request) -> Response | None:
        """The SEC's manners: a declared User-Agent, and (when on) 10 requests a second."""
        if self._max_per_second is not None:
            now = time.monotonic()
            with self._lock:
                if now < self._blocked_until:
                    return _undeclared("Request Rate Threshold Exceeded")
                self._recent_requests.append(now)
                while self._recent_requests and self._recent_requests[0] <= now - 1.0:
                    self._recent_requests.popleft()
                if len(self._recent_requests) > self._max_per_second:
                    self._blocked_until = now + self._block_seconds
                    self._recent_requests.clear()  # the count starts afresh when the block ends
                    return _undeclared("Request Rate Threshold Exceeded")
        agent = request.headers.get("user-agent", "")
        self.user_agents.append(agent)
        if not _EMAIL.search(agent):
            return _undeclared("Your Request Originates from an Undeclared Automated Tool")
        return None

    def _submissions(self, request: Request, m) -> Response:
        refused = self._guard(request)
        if refused:
            return refused
        filer = self.filers.get(m["cik"])
        if filer is None:
            return Response(404, b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
                                 b"<Message>The specified key does not exist.</Message></Error>", content_type="application/xml")
        headers = {"ETag": filer.etag, "Last-Modified": _http_date(filer.last_modified), "Cache-Control": "no-cache"}
        if self._not_modified(request, filer):
            return Response(304, b"", headers)
        return Response(200, filer.body, headers)

    @staticmethod
    def _not_modified(request: Request, filer: _Filer) -> bool:
        match = request.headers.get("if-none-match")
        if match is not None:  # If-None-Match wins over If-Modified-Since (RFC 9110)
            tags = {t.strip().removeprefix("W/") for t in match.split(",")}
            return "*" in tags or filer.etag in tags
        since = request.headers.get("if-modified-since")
        if since:
            try:
                when = email.utils.parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return filer.last_modified <= when
        return False

    def _document(self, request: Request, m) -> Response:
        refused = self._guard(request)
        if refused:
            return refused
        cik, folder, name = str(int(m["cik"])), m["folder"], m["document"]
        document = self.documents.get((cik, folder, name))
        if document is not None:
            return Response(200, document.body, content_type=document.content_type)
        if name.startswith(XSL_FORM4 + "/"):
            raw = self.documents.get((cik, folder, name.split("/", 1)[1]))
            if raw is not None:
                return Response(200, self._render_form4(raw.body), content_type="text/html")
        if re.fullmatch(r"\d{10}-\d{2}-\d{6}-index\.html?", name):
            index = self._index_page(cik, folder, name[:20])
            if index is not None:
                return Response(200, index, content_type="text/html")
        return Response(404, "<html><body><h1>404 Not Found</h1></body></html>", content_type="text/html")

    def _index_page(self, cik: str, folder: str, accession: str) -> str | None:
        if accession.replace("-", "") != folder:
            return None
        names = sorted(n for c, f, n in self.documents if c == cik and f == folder)
        if not names:
            return None
        rows = "".join(f'<tr><td><a href="/Archives/edgar/data/{cik}/{folder}/{html.escape(n)}">{html.escape(n)}</a></td></tr>'
                       for n in names)
        return f"<html><head><title>EDGAR Filing Index {accession}</title></head><body><h1>{accession}</h1>" \
               f"<table class=\"tableFile\">{rows}</table></body></html>"

    @staticmethod
    def _render_form4(xml: bytes) -> str:
        """What the XSL rendering looks like to a person: the form as an HTML page."""
        try:
            root = ET.fromstring(xml)
        except ET.ParseError:
            return "<html><body><p>This document could not be rendered.</p></body></html>"

        def text(element, path):
            found = element.find(path) if element is not None else None
            if found is None:
                return ""
            value = found.find("value")
            return html.escape(((value if value is not None else found).text or "").strip())

        issuer = root.find("issuer")
        owners = "".join(f"<li>{text(o, 'reportingOwnerId/rptOwnerName')} ({text(o, 'reportingOwnerId/rptOwnerCik')})</li>"
                         for o in root.iterfind("reportingOwner"))
        rows = "".join(
            "<tr>" + "".join(f"<td>{text(t, p)}</td>" for p in (
                "securityTitle", "transactionDate", "transactionCoding/transactionCode",
                "transactionAmounts/transactionShares", "transactionAmounts/transactionAcquiredDisposedCode",
                "transactionAmounts/transactionPricePerShare", "postTransactionAmounts/sharesOwnedFollowingTransaction",
            )) + "</tr>"
            for t in root.iterfind("nonDerivativeTable/nonDerivativeTransaction")
        )
        notes = "".join(f"<p>({html.escape(n.get('id', ''))}) {html.escape(''.join(n.itertext()).strip())}</p>"
                        for n in root.iterfind("footnotes/footnote"))
        return (
            "<html><head><title>SEC Form 4</title></head><body>"
            "<h1>FORM 4</h1><p>STATEMENT OF CHANGES IN BENEFICIAL OWNERSHIP</p>"
            f"<p>Issuer: {text(issuer, 'issuerName')} [ {text(issuer, 'issuerTradingSymbol')} ]</p>"
            f"<ul>{owners}</ul>"
            "<table><tr><th>Title of Security</th><th>Transaction Date</th><th>Code</th><th>Amount</th>"
            f"<th>(A) or (D)</th><th>Price</th><th>Amount Owned Following</th></tr>{rows}</table>"
            f"{notes}</body></html>"
        )

    # --- control routes -----------------------------------------------------------

    def _control_8k(self, request: Request, m) -> Response:
        body = request.json()
        cik = str(body.pop("cik"))
        if cik.zfill(10) not in self.filers:
            return Response(404, {"status": "error", "message": f"no filer with CIK {cik}"})
        accession = self.publish_8k(
            cik, body.pop("text", None), html=body.pop("html", None), items=body.pop("items", ("8.01",)),
            accepted_at=parse_time(body.pop("accepted_at", None)), report_date=_parse_date(body.pop("report_date", None)),
            **({"form": body.pop("form")} if "form" in body else {}),
        )
        if body:
            raise ValueError(f"unknown fields {sorted(body)}")
        return self._published(cik, accession)

    def _control_form4(self, request: Request, m) -> Response:
        body = request.json()
        cik = str(body.pop("cik"))
        if cik.zfill(10) not in self.filers:
            return Response(404, {"status": "error", "message": f"no filer with CIK {cik}"})
        if "accepted_at" in body:
            body["accepted_at"] = parse_time(body["accepted_at"])
        if "transaction_date" in body:
            body["transaction_date"] = _parse_date(body["transaction_date"])
        accession = self.publish_form4(cik, body.pop("xml", None), **body)
        return self._published(cik, accession)

    def _published(self, cik: str, accession: str) -> Response:
        recent = self.filers[cik.zfill(10)].submissions["filings"]["recent"]
        i = recent["accessionNumber"].index(accession)
        return Response(body={
            "status": "ok", "accession_number": accession, "primary_document": recent["primaryDocument"][i],
            "acceptance_date_time": recent["acceptanceDateTime"][i], "filing_date": recent["filingDate"][i],
        })

    def _control_fair_access(self, request: Request, m) -> Response:
        body = request.json()
        self.fair_access(body.get("max_per_second", 10.0), float(body.get("block_seconds", 600.0)))
        return Response(body={"status": "ok"})

    def _control_reset(self, request: Request, m) -> Response:
        self.reset()
        return Response(body={"status": "ok"})
