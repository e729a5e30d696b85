"""The sandbox's SEC EDGAR (omc_pipelines/sandbox/sec.py): EDGAR's shape, manners and publishing.

Talked to with plain httpx, the way a person or another process would.
"""

from __future__ import annotations

import email.utils
import json
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from omc_pipelines.sandbox.sec import (
    COINBASE,
    CONVENTIONS,
    RECORDINGS,
    STRATEGY,
    SecEdgarSandbox,
    acceptance_label,
    filing_date_for,
)
from omc_pipelines.sources.sec import acceptance_to_utc, form4_xml_path, parse_form4, parse_submissions

AGENT = "OMC Pipelines ops@example.com"
ARRAYS = ("accessionNumber", "filingDate", "reportDate", "acceptanceDateTime", "act", "form", "fileNumber",
          "filmNumber", "items", "core_type", "size", "isXBRL", "isInlineXBRL", "primaryDocument", "primaryDocDescription")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.fixture
def client(edgar):
    server, _ = edgar
    with httpx.Client(base_url=server.url, timeout=5.0, headers={"User-Agent": AGENT}) as c:
        yield c


def _recent(client: httpx.Client, cik: str) -> dict:
    return client.get(f"/submissions/CIK{cik}.json").json()["filings"]["recent"]


# --- submissions ---------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("cik, name, count", [(STRATEGY, "Strategy Inc", 6), (COINBASE, "Coinbase Global, Inc.", 5)])
def test_submissions_in_edgar_shape(client, cik, name, count):
    response = client.get(f"/submissions/CIK{cik}.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["etag"].startswith('"') and response.headers["last-modified"].endswith("GMT")
    body = response.json()
    assert body == json.loads((RECORDINGS / "submissions" / f"CIK{cik}.json").read_text())
    assert (body["cik"], body["name"]) == (cik.lstrip("0"), name)
    recent = body["filings"]["recent"]
    assert set(recent) == set(ARRAYS)
    assert {len(v) for v in recent.values()} == {count}  # parallel arrays
    assert recent["filingDate"] == sorted(recent["filingDate"], reverse=True)  # newest first
    assert all(v.endswith(".000Z") for v in recent["acceptanceDateTime"])


@pytest.mark.integration
def test_every_recorded_filing_has_its_documents(client):
    for cik in (STRATEGY, COINBASE):
        recent = _recent(client, cik)
        for accession, document, form in zip(recent["accessionNumber"], recent["primaryDocument"], recent["form"]):
            folder = f"/Archives/edgar/data/{int(cik)}/{accession.replace('-', '')}"
            response = client.get(f"{folder}/{document}")
            assert response.status_code == 200, document
            assert response.headers["content-type"] == "text/html"
            if form == "4":  # the XSL path renders; the raw XML sits beside it
                raw = client.get(f"{folder}/{document.split('/', 1)[1]}")
                assert raw.headers["content-type"] == "text/xml"
                assert ET.fromstring(raw.content).tag == "ownershipDocument"
            index = client.get(f"{folder}/{accession}-index.htm")
            assert index.status_code == 200 and accession in index.text


def test_recorded_conventions_are_what_the_parser_finds():
    """The sandbox's idea of each filer's labels agrees with the parser's, filing by filing."""
    for cik, convention in CONVENTIONS.items():
        payload = json.loads((RECORDINGS / "submissions" / f"CIK{cik}.json").read_text())
        recent = payload["filings"]["recent"]
        for filing, label in zip(parse_submissions(payload), recent["acceptanceDateTime"]):
            assert acceptance_label(filing.accepted_at, convention) == label


@pytest.mark.integration
def test_unknown_cik_is_404(client):
    response = client.get("/submissions/CIK0000000001.json")
    assert response.status_code == 404 and b"NoSuchKey" in response.content
    assert client.get("/submissions/CIK1050446.json").status_code == 404  # not zero-padded: no such file
    assert client.get("/Archives/edgar/data/1050446/000105044626000031/nothing.htm").status_code == 404
    assert client.get("/Archives/edgar/data/1050446/000105044626000099/0001050446-26-000099-index.htm").status_code == 404


# --- the SEC's manners -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("agent", ["", "python-httpx/0.28.1", "OMC Pipelines"])
@pytest.mark.parametrize("path", [
    "/submissions/CIK0001050446.json",
    "/Archives/edgar/data/1050446/000105044626000031/mstr-20261123.htm",
])
def test_an_undeclared_agent_gets_403(edgar, agent, path):
    server, box = edgar
    response = httpx.get(server.url + path, headers={"User-Agent": agent})
    assert response.status_code == 403
    assert "Undeclared Automated Tool" in response.text and response.headers["content-type"] == "text/html"
    assert httpx.get(server.url + path, headers={"User-Agent": AGENT}).status_code == 200
    assert box.user_agents == [agent, AGENT]


@pytest.mark.integration
def test_fair_access_blocks_a_burst(edgar, client):
    server, _ = edgar
    assert client.post("/_sandbox/sec/fair-access", json={"max_per_second": 3, "block_seconds": 0.3}).json()["status"] == "ok"
    statuses = [client.get(f"/submissions/CIK{STRATEGY}.json").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 403, 403]
    assert "Request Rate Threshold Exceeded" in client.get(f"/submissions/CIK{COINBASE}.json").text
    time.sleep(0.35)
    assert client.get(f"/submissions/CIK{STRATEGY}.json").status_code == 200
    client.post("/_sandbox/sec/fair-access", json={"max_per_second": None})
    assert {client.get(f"/submissions/CIK{STRATEGY}.json").status_code for _ in range(12)} == {200}


# --- conditional requests --------------------------------------------------------------------


@pytest.mark.integration
def test_conditional_get(client):
    path = f"/submissions/CIK{STRATEGY}.json"
    first = client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert modified == "Mon, 23 Nov 2026 12:32:18 GMT"  # the newest filing's acceptance
    not_modified = client.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    later = email.utils.format_datetime(utc(2026, 11, 24), usegmt=True)
    earlier = email.utils.format_datetime(utc(2026, 11, 23, 12, 32, 17), usegmt=True)
    assert client.get(path, headers={"If-Modified-Since": later}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
    assert client.get(path, headers={"If-Modified-Since": "not a date"}).status_code == 200
    # If-None-Match decides when both are sent.
    assert client.get(path, headers={"If-None-Match": '"other"', "If-Modified-Since": later}).status_code == 200


# --- publishing ------------------------------------------------------------------------------


@pytest.mark.integration
def test_publish_8k_over_http(client):
    path = f"/submissions/CIK{STRATEGY}.json"
    before = client.get(path)
    answer = client.post("/_sandbox/sec/8k", json={
        "cik": "1050446",
        "text": "Strategy acquired 1,000 bitcoins for approximately $95.0 million.\n\nItem 9.01 Exhibits.",
        "items": "7.01,8.01",
        "accepted_at": "2026-11-30T12:45:10Z",
    }).json()
    assert answer == {
        "status": "ok", "accession_number": "0001050446-26-000032", "primary_document": "mstr-20261130.htm",
        "acceptance_date_time": "2026-11-30T07:45:10.000Z", "filing_date": "2026-11-30",
    }
    after = client.get(path, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert email.utils.parsedate_to_datetime(after.headers["last-modified"]) > email.utils.parsedate_to_datetime(
        before.headers["last-modified"])
    recent, old = after.json()["filings"]["recent"], before.json()["filings"]["recent"]
    assert {len(v) for v in recent.values()} == {7}
    assert {k: v[0] for k, v in recent.items()} == {
        "accessionNumber": "0001050446-26-000032", "filingDate": "2026-11-30", "reportDate": "2026-11-30",
        "acceptanceDateTime": "2026-11-30T07:45:10.000Z", "act": "34", "form": "8-K", "fileNumber": "000-24209",
        "filmNumber": "260000032", "items": "7.01,8.01", "core_type": "8-K", "size": recent["size"][0],
        "isXBRL": 1, "isInlineXBRL": 1, "primaryDocument": "mstr-20261130.htm", "primaryDocDescription": "8-K",
    }
    assert {k: v[1:] for k, v in recent.items()} == old
    document = client.get("/Archives/edgar/data/1050446/000105044626000032/mstr-20261130.htm")
    assert document.status_code == 200 and len(document.content) == recent["size"][0]
    assert "<p>Strategy acquired 1,000 bitcoins for approximately $95.0 million.</p>" in document.text
    assert "<p>Item 9.01 Exhibits.</p>" in document.text
    second = client.post("/_sandbox/sec/8k", json={"cik": STRATEGY, "html": "<p>Other events.</p>",
                                                   "accepted_at": "2026-11-30T13:00:00Z"}).json()
    assert second["accession_number"] == "0001050446-26-000033"
    assert _recent(client, STRATEGY)["items"][:2] == ["8.01", "7.01,8.01"]


@pytest.mark.integration
def test_published_times_follow_the_filers_convention(edgar, client):
    _, box = edgar
    late = utc(2026, 12, 4, 22, 40)  # Friday 17:40 in New York: after the 8-K cut-off
    box.publish_8k(COINBASE, "Item 8.01.", accepted_at=late)
    box.publish_8k(STRATEGY, "Item 8.01.", accepted_at=late)
    coinbase, strategy = _recent(client, COINBASE), _recent(client, STRATEGY)
    assert (coinbase["acceptanceDateTime"][0], coinbase["filingDate"][0]) == ("2026-12-04T22:40:00.000Z", "2026-12-07")
    assert (strategy["acceptanceDateTime"][0], strategy["filingDate"][0]) == ("2026-12-04T17:40:00.000Z", "2026-12-07")
    assert coinbase["accessionNumber"][0] == "0001679788-26-000062"
    # Both read back as the same instant.
    for recent in (coinbase, strategy):
        payload = {"cik": "1", "name": "x", "filings": {"recent": recent}}
        assert parse_submissions(payload)[0].accepted_at == late


@pytest.mark.integration
def test_publish_form4_over_http(client):
    answer = client.post("/_sandbox/sec/form4", json={
        "cik": COINBASE, "owner_name": "Roe Alex", "owner_cik": "1234567", "officer_title": "Chief Financial Officer",
        "code": "S", "shares": 750, "price": None, "shares_owned_after": 10000, "transaction_date": "2026-11-27",
        "footnote": "Sold at prices ranging from $300.10 to $301.00.", "accepted_at": "2026-11-30T21:05:00Z",
    }).json()
    assert answer["accession_number"] == "0001679788-26-000062"
    assert answer["primary_document"] == "xslF345X05/wk-form4_1796072700.xml"
    assert (answer["filing_date"], answer["acceptance_date_time"]) == ("2026-11-30", "2026-11-30T21:05:00.000Z")
    recent = _recent(client, COINBASE)
    assert (recent["form"][0], recent["reportDate"][0], recent["items"][0]) == ("4", "2026-11-27", "")
    folder = "/Archives/edgar/data/1679788/000167978826000062"
    root = ET.fromstring(client.get(f"{folder}/wk-form4_1796072700.xml").content)
    assert root.findtext("issuer/issuerName") == "Coinbase Global, Inc."
    assert root.findtext("issuer/issuerTradingSymbol") == "COIN"
    assert root.findtext("reportingOwner/reportingOwnerRelationship/officerTitle") == "Chief Financial Officer"
    price = root.find("nonDerivativeTable/nonDerivativeTransaction/transactionAmounts/transactionPricePerShare")
    assert price.find("value") is None and price.find("footnoteId").get("id") == "F1"
    assert root.findtext("footnotes/footnote") == "Sold at prices ranging from $300.10 to $301.00."
    rendered = client.get(f"{folder}/xslF345X05/wk-form4_1796072700.xml")
    assert rendered.headers["content-type"] == "text/html" and "Roe Alex" in rendered.text


def test_a_structured_form4_round_trips_through_the_parser():
    box = SecEdgarSandbox()
    accession = box.publish_form4(
        STRATEGY, owner_name="Roe Alex & Co", owner_cik="77", is_director=True, officer_title=None,
        is_ten_percent_owner=True, code="P", shares=1_234_567, price=228.4133, shares_owned_after=2_500_000.5,
        transaction_date=date(2026, 11, 27), accepted_at=utc(2026, 11, 30, 15),
    )
    document = form4_xml_path(box.submissions(STRATEGY)["filings"]["recent"]["primaryDocument"][0])
    form = parse_form4(box.documents[("1050446", accession.replace("-", ""), document)].body)
    assert (form.issuer_cik, form.issuer_name, form.issuer_symbol) == (STRATEGY, "Strategy Inc", "MSTR")
    (owner,) = form.owners
    assert (owner.cik, owner.name, owner.is_director, owner.is_officer, owner.is_ten_percent_owner) == (
        "0000000077", "Roe Alex & Co", True, False, True,
    )
    (t,) = form.transactions
    assert (t.date, t.code, t.shares, t.price, t.acquired_disposed, t.shares_owned_after, t.footnotes) == (
        date(2026, 11, 27), "P", 1_234_567.0, 228.4133, "A", 2_500_000.5, [],
    )


@pytest.mark.integration
def test_publish_raw_form4_xml(edgar, client):
    _, box = edgar
    xml = (RECORDINGS / "Archives/edgar/data/1679788/000167978826000057/wk-form4_1793741400.xml").read_text()
    accession = box.publish_form4(COINBASE, xml, accepted_at=utc(2026, 11, 30, 15, 0))
    recent = _recent(client, COINBASE)
    assert recent["accessionNumber"][0] == accession and recent["reportDate"][0] == "2026-10-30"
    document = recent["primaryDocument"][0].split("/", 1)[1]
    assert client.get(f"/Archives/edgar/data/1679788/{accession.replace('-', '')}/{document}").text == xml
    # A malformed form can be published on purpose; its rendering says so.
    broken = box.publish_form4(COINBASE, "<ownershipDocument><issuer>", accepted_at=utc(2026, 11, 30, 15, 1))
    rendered = client.get(f"/Archives/edgar/data/1679788/{broken.replace('-', '')}/{_recent(client, COINBASE)['primaryDocument'][0]}")
    assert "could not be rendered" in rendered.text


@pytest.mark.integration
def test_control_route_errors(client):
    assert client.post("/_sandbox/sec/8k", json={"cik": "42", "text": "x"}).status_code == 404
    assert client.post("/_sandbox/sec/form4", json={"cik": "42"}).status_code == 404
    assert client.post("/_sandbox/sec/8k", json={"cik": STRATEGY}).status_code == 400  # neither text nor html
    assert client.post("/_sandbox/sec/8k", json={"cik": STRATEGY, "text": "x", "html": "<p>x</p>"}).status_code == 400
    assert client.post("/_sandbox/sec/8k", json={"cik": STRATEGY, "text": "x", "colour": "red"}).status_code == 400
    assert client.post("/_sandbox/sec/8k", json={"text": "x"}).status_code == 400
    assert client.post("/_sandbox/sec/form4", json={"cik": STRATEGY, "shoe_size": 9}).status_code == 400


@pytest.mark.integration
def test_reset_forgets_publications(edgar, client):
    _, box = edgar
    etag = box.etag(STRATEGY)
    box.publish_8k(STRATEGY, "Item 8.01.", accepted_at=utc(2026, 11, 30, 13))
    box.fair_access(1, 60)
    assert box.etag(STRATEGY) != etag
    assert client.post("/_sandbox/sec/reset").json() == {"status": "ok"}
    assert box.etag(STRATEGY) == etag and len(box.submissions(STRATEGY)["filings"]["recent"]["form"]) == 6
    assert {client.get(f"/submissions/CIK{STRATEGY}.json").status_code for _ in range(3)} == {200}
    assert client.get("/Archives/edgar/data/1050446/000105044626000032/mstr-20261130.htm").status_code == 404


def test_publishing_without_a_time_uses_the_clock():
    now = utc(2026, 11, 30, 14, 0)
    box = SecEdgarSandbox(now=lambda: now)
    box.publish_8k(STRATEGY, "Item 8.01.")
    box.publish_8k(STRATEGY, "Item 8.01.")
    recent = box.submissions(STRATEGY)["filings"]["recent"]
    assert recent["acceptanceDateTime"][:2] == ["2026-11-30T09:00:00.000Z"] * 2
    # Two publications in one second still move Last-Modified: a poll by date sees both.
    assert box.filers[STRATEGY].last_modified == now + timedelta(seconds=1)
    with pytest.raises(KeyError):
        box.publish_8k("0000000042", "x")


# --- EDGAR's calendar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accepted, form, filed",
    [
        (utc(2026, 12, 1, 14, 0), "8-K", date(2026, 12, 1)),  # Tuesday 09:00 ET
        (utc(2026, 12, 1, 22, 29), "8-K", date(2026, 12, 1)),  # 17:29 ET: still today
        (utc(2026, 12, 1, 22, 31), "8-K", date(2026, 12, 2)),  # 17:31 ET: tomorrow
        (utc(2026, 12, 4, 22, 40), "8-K", date(2026, 12, 7)),  # Friday evening: Monday
        (utc(2026, 12, 2, 2, 0), "4", date(2026, 12, 1)),  # Form 4 at 21:00 ET keeps its day
        (utc(2026, 12, 2, 3, 30), "4", date(2026, 12, 2)),  # 22:30 ET: EDGAR closed, next day
        (utc(2026, 12, 5, 15, 0), "8-K", date(2026, 12, 7)),  # Saturday
        (utc(2026, 12, 6, 15, 0), "4", date(2026, 12, 7)),  # Sunday
        (utc(2026, 7, 6, 21, 29), "8-K", date(2026, 7, 6)),  # 17:29 EDT
        (utc(2026, 7, 6, 21, 31), "8-K", date(2026, 7, 7)),
    ],
)
def test_filing_date_for(accepted, form, filed):
    assert filing_date_for(accepted, form) == filed


def test_acceptance_label_and_the_parser_agree():
    accepted = utc(2026, 7, 6, 20, 30, 15)
    assert acceptance_label(accepted, "new_york") == "2026-07-06T16:30:15.000Z"
    assert acceptance_label(accepted, "utc") == "2026-07-06T20:30:15.000Z"
    assert acceptance_to_utc(acceptance_label(accepted, "new_york"), date(2026, 7, 6)) == accepted
    assert acceptance_to_utc(acceptance_label(accepted, "utc"), date(2026, 7, 6), "utc") == accepted
