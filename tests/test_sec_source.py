"""SEC EDGAR's client and parse functions (omc_pipelines/sources/sec/).

The recordings the sandbox serves are the main fixtures; hand-made variants cover
what they do not (broken arrays, malformed XML, near misses). Client tests run
against a sandbox built here, with waits recorded instead of slept.
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timezone

import httpx
import pytest

from omc_pipelines import settings as settings_module
from omc_pipelines.sandbox.sec import COINBASE, RECORDINGS, STRATEGY
from omc_pipelines.sandbox.server import Fault
from omc_pipelines.sources import http, sec
from omc_pipelines.sources.html_text import html_to_text
from omc_pipelines.sources.http import (
    HttpSource,
    RateLimiter,
    SourceError,
    SourcePayloadError,
    SourceRefused,
    SourceThrottled,
)
from omc_pipelines.sources.sec import client as sec_client
from omc_pipelines.sources.sec import (
    BitcoinPurchase,
    Filing,
    SecEdgar,
    SecUserAgentError,
    acceptance_to_utc,
    archive_path,
    check_user_agent,
    detect_convention,
    filings_of,
    form4_xml_path,
    normalise_cik,
    parse_8k,
    parse_form4,
    parse_submissions,
)

AGENT = "OMC Pipelines ops@example.com"
ARCHIVES = RECORDINGS / "Archives" / "edgar" / "data"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def _submissions(cik: str) -> dict:
    return json.loads((RECORDINGS / "submissions" / f"CIK{cik}.json").read_text())


def _archived(cik: str, folder: str, name: str) -> str:
    return (ARCHIVES / str(int(cik)) / folder / name).read_text()


def _payload_error(call, *args, **kwargs) -> SourcePayloadError:
    with pytest.raises(SourcePayloadError) as caught:
        call(*args, **kwargs)
    return caught.value


@pytest.fixture
def strategy() -> dict:
    return _submissions(STRATEGY)


@pytest.fixture
def coinbase() -> dict:
    return _submissions(COINBASE)


# --- parse_submissions ------------------------------------------------------------------


def test_parse_submissions_reads_the_recorded_strategy_filings(strategy):
    filings = parse_submissions(strategy, "https://data.sec.gov/submissions/CIK0001050446.json")
    assert [f.accession_number for f in filings] == [
        "0001050446-26-000031", "0001050446-26-000030", "0001050446-26-000028",
        "0001050446-26-000026", "0001050446-26-000024", "0001050446-26-000021",
    ]
    assert [f.form for f in filings] == ["8-K", "4", "8-K", "8-K", "8-K", "8-K"]
    assert filings[0] == Filing(
        cik="0001050446",
        company="Strategy Inc",
        accession_number="0001050446-26-000031",
        form="8-K",
        filing_date=date(2026, 11, 23),
        accepted_at=utc(2026, 11, 23, 12, 32, 18),  # labelled 07:32:18Z, New York time in truth
        report_date=date(2026, 11, 23),
        items=("7.01", "8.01"),
        primary_document="mstr-20261123.htm",
        primary_doc_description="8-K",
        document_url="https://www.sec.gov/Archives/edgar/data/1050446/000105044626000031/mstr-20261123.htm",
        url="https://www.sec.gov/Archives/edgar/data/1050446/000105044626000031/0001050446-26-000031-index.htm",
    )
    form4 = filings[1]
    assert form4.items == () and form4.primary_document == "xslF345X05/wk-form4_1795218069.xml"
    assert form4.report_date == date(2026, 11, 18) and form4.accession_folder == "000105044626000030"
    assert filings[4].items == ("2.02", "7.01", "9.01")
    assert all(f.accepted_at.tzinfo is timezone.utc for f in filings)


# Every recorded acceptanceDateTime as the instant it really is. Strategy's payload
# writes New York wall time labelled Z; Coinbase's is true UTC.
RECORDED_INSTANTS = {
    "0001050446-26-000031": utc(2026, 11, 23, 12, 32, 18),  # 07:32 EST: only New York is plausible
    "0001050446-26-000030": utc(2026, 11, 20, 23, 41, 9),  # 18:41: both plausible, the payload says New York
    "0001050446-26-000028": utc(2026, 11, 16, 13, 1, 45),
    "0001050446-26-000026": utc(2026, 11, 9, 12, 45, 2),
    "0001050446-26-000024": utc(2026, 10, 29, 20, 6, 2),  # 16:06 EDT: summer time, four hours
    "0001050446-26-000021": utc(2026, 10, 8, 21, 10, 33),
    "0001679788-26-000061": utc(2026, 11, 18, 22, 47, 12),  # 17:47 EST; as New York 22:47 is after EDGAR closes
    "0001679788-26-000059": utc(2026, 11, 13, 2, 20, 5),  # 21:20 EST on the 12th, dated the next business day
    "0001679788-26-000057": utc(2026, 11, 3, 21, 30),  # ambiguous alone; the payload says UTC
    "0001679788-26-000052": utc(2026, 10, 30, 20, 10, 12),
    "0001679788-26-000051": utc(2026, 10, 30, 20, 5, 41),
}


@pytest.mark.parametrize("cik", [STRATEGY, COINBASE])
def test_recorded_acceptance_times_come_out_as_true_utc(cik):
    filings = parse_submissions(_submissions(cik))
    assert {f.accession_number: f.accepted_at for f in filings} == {
        a: t for a, t in RECORDED_INSTANTS.items() if a.startswith(cik)
    }


def test_the_payload_convention_settles_values_that_are_ambiguous_alone(coinbase):
    # Alone, 21:30 "Z" on a business day reads best as New York time ...
    assert acceptance_to_utc("2026-11-03T21:30:00.000Z", date(2026, 11, 3)) == utc(2026, 11, 4, 2, 30)
    # ... but Coinbase's payload shows true UTC where a value decides it, so it stays.
    filing = next(f for f in parse_submissions(coinbase) if f.accession_number == "0001679788-26-000057")
    assert filing.accepted_at == utc(2026, 11, 3, 21, 30)


def test_forms_filter_and_filings_of(strategy, coinbase):
    assert {f.form for f in parse_submissions(coinbase)} == {"4", "8-K", "10-Q"}  # every form kept by default
    eight_ks = parse_submissions(coinbase, forms=["8-K"])
    assert [f.accession_number for f in eight_ks] == ["0001679788-26-000059", "0001679788-26-000051"]
    both = parse_submissions(coinbase, forms=("4", "8-K"))
    assert [f.form for f in both] == ["4", "8-K", "4", "8-K"]
    amended = copy.deepcopy(strategy)
    amended["filings"]["recent"]["form"][2] = "8-K/A"
    filings = parse_submissions(amended)
    assert [f.form for f in filings_of(filings, ["8-K"])] == ["8-K", "8-K", "8-K", "8-K"]
    assert [f.form for f in filings_of(filings, ["8-k"], amendments=True)] == ["8-K", "8-K/A", "8-K", "8-K", "8-K"]


def test_parallel_arrays_of_unequal_length_are_named(strategy):
    del strategy["filings"]["recent"]["items"][3]
    error = _payload_error(parse_submissions, strategy, "https://data.sec.gov/submissions/CIK0001050446.json")
    assert "filings.recent arrays differ in length: items has 5, the others 6" in str(error)
    assert error.url == "https://data.sec.gov/submissions/CIK0001050446.json" and error.source == "sec"


def test_two_short_arrays_are_both_named(coinbase):
    recent = coinbase["filings"]["recent"]
    recent["acceptanceDateTime"].pop()
    recent["primaryDocument"].pop()
    message = str(_payload_error(parse_submissions, coinbase))
    assert "acceptanceDateTime has 4" in message and "primaryDocument has 4" in message and "the others 5" in message


@pytest.mark.parametrize("array", ["accessionNumber", "filingDate", "acceptanceDateTime", "form", "primaryDocument"])
def test_a_missing_required_array_is_named(strategy, array):
    del strategy["filings"]["recent"][array]
    assert f"filings.recent has no {array!r}" in str(_payload_error(parse_submissions, strategy))


def test_optional_arrays_may_be_missing(coinbase):
    for name in ("items", "reportDate", "primaryDocDescription"):
        del coinbase["filings"]["recent"][name]
    filings = parse_submissions(coinbase)
    assert len(filings) == 5
    assert all(f.items == () and f.report_date is None and f.primary_doc_description == "" for f in filings)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p["filings"]["recent"]["accessionNumber"].__setitem__(1, "0001050446-26-30"),
         "filings.recent.accessionNumber[1] is '0001050446-26-30', not like"),
        (lambda p: p["filings"]["recent"]["filingDate"].__setitem__(2, "yesterday"),
         "filings.recent.filingDate[2] is 'yesterday', not a date"),
        (lambda p: p["filings"]["recent"]["acceptanceDateTime"].__setitem__(0, "soon"),
         "filings.recent.acceptanceDateTime[0] is 'soon', not an ISO time"),
        (lambda p: p["filings"]["recent"]["acceptanceDateTime"].__setitem__(0, None),
         "filings.recent.acceptanceDateTime[0] is NoneType, not a string"),
        (lambda p: p["filings"]["recent"]["form"].__setitem__(4, ""), "filings.recent.form[4] is empty"),
        (lambda p: p["filings"]["recent"]["reportDate"].__setitem__(3, "2026-13-45"),
         "filings.recent.reportDate[3] is '2026-13-45', not a date"),
        (lambda p: p["filings"]["recent"].__setitem__("items", "7.01"), "filings.recent.items is str, not an array"),
        (lambda p: p["filings"].__setitem__("recent", []), "filings.recent is not an object"),
        (lambda p: p.pop("filings"), "body has no 'filings'"),
        (lambda p: p.pop("cik"), "body has no 'cik'"),
        (lambda p: p.__setitem__("cik", "MSTR"), "cik is 'MSTR', not a CIK"),
        (lambda p: p.__setitem__("name", None), "name is NoneType, not a string"),
    ],
)
def test_malformed_submissions_name_the_field(strategy, mutate, message):
    mutate(strategy)
    assert message in str(_payload_error(parse_submissions, strategy))


def test_submissions_must_be_the_asked_filers(strategy):
    assert len(parse_submissions(strategy, cik=1050446)) == 6
    assert "cik is 0001050446, expected 0001679788" in str(_payload_error(parse_submissions, strategy, cik=COINBASE))
    assert "expected a JSON object, got list" in str(_payload_error(parse_submissions, [strategy]))


def test_a_filing_without_a_primary_document_is_kept_without_a_document_url(coinbase):
    coinbase["filings"]["recent"]["primaryDocument"][3] = ""
    filing = parse_submissions(coinbase, archives_url="http://sandbox/")[3]
    assert filing.primary_document == "" and filing.document_url == ""
    assert filing.url == "http://sandbox/Archives/edgar/data/1679788/000167978826000052/0001679788-26-000052-index.htm"


def test_cik_and_archive_paths():
    assert normalise_cik(1050446) == normalise_cik("1050446") == normalise_cik("0001050446") == "0001050446"
    for bad in ("CIK1050446", "12345678901", "", "-1"):
        with pytest.raises(ValueError):
            normalise_cik(bad)
    assert archive_path("0001050446", "0001050446-26-000031", "mstr-20261123.htm") == (
        "/Archives/edgar/data/1050446/000105044626000031/mstr-20261123.htm"
    )


# --- the time-zone trap -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, filed, convention, expected",
    [
        # True UTC: 17:45 New York; read as New York, 22:45 is after EDGAR closes.
        ("2026-01-05T22:45:00.000Z", date(2026, 1, 5), None, utc(2026, 1, 5, 22, 45)),
        # New York time labelled Z: filed 16:30 ET, shown as 16:30:15Z, really 21:30:15Z.
        ("2026-01-05T16:30:15.000Z", date(2026, 1, 5), None, utc(2026, 1, 5, 21, 30, 15)),
        # The same digits from a filer known to write true UTC stay as they are.
        ("2026-01-05T16:30:15.000Z", date(2026, 1, 5), "utc", utc(2026, 1, 5, 16, 30, 15)),
        # A morning filing: as UTC it would be 02:30 New York, before EDGAR opens,
        # so it is New York time whatever the filer's convention says.
        ("2026-01-05T07:30:00.000Z", date(2026, 1, 5), "utc", utc(2026, 1, 5, 12, 30)),
        # Summer: New York is UTC-4.
        ("2026-07-06T16:30:15.000Z", date(2026, 7, 6), None, utc(2026, 7, 6, 20, 30, 15)),
        ("2026-07-06T08:00:00.000Z", date(2026, 7, 6), None, utc(2026, 7, 6, 12, 0)),
        # Either side of the March change (Sunday 8 March 2026): five hours, then four.
        ("2026-03-06T08:00:00.000Z", date(2026, 3, 6), None, utc(2026, 3, 6, 13, 0)),
        ("2026-03-09T08:00:00.000Z", date(2026, 3, 9), None, utc(2026, 3, 9, 12, 0)),
        # Late evening near midnight UTC: 21:15 ET on the 5th is 02:15Z on the 6th,
        # an 8-K after the 17:30 cut-off dated the next business day.
        ("2026-01-06T02:15:00.000Z", date(2026, 1, 6), None, utc(2026, 1, 6, 2, 15)),
        # The same filing from a filer who writes New York time: the UTC date moves on.
        ("2026-01-05T21:15:00.000Z", date(2026, 1, 5), None, utc(2026, 1, 6, 2, 15)),
        ("2026-01-05T21:15:00.000Z", date(2026, 1, 6), "new_york", utc(2026, 1, 6, 2, 15)),
        # Friday 19:30 ET, dated Monday.
        ("2026-01-10T00:30:00.000Z", date(2026, 1, 12), None, utc(2026, 1, 10, 0, 30)),
        # Neither reading is a time EDGAR accepts (a Saturday): the label, or the convention.
        ("2026-01-10T12:00:00.000Z", date(2026, 1, 10), None, utc(2026, 1, 10, 12, 0)),
        ("2026-01-10T12:00:00.000Z", date(2026, 1, 10), "new_york", utc(2026, 1, 10, 17, 0)),
        # An explicit offset means what it says.
        ("2026-01-05T16:30:15-05:00", date(2026, 1, 5), "utc", utc(2026, 1, 5, 21, 30, 15)),
        ("2026-01-05T16:30:15", date(2026, 1, 5), None, utc(2026, 1, 5, 21, 30, 15)),
    ],
)
def test_acceptance_to_utc(value, filed, convention, expected):
    got = acceptance_to_utc(value, filed, convention)
    assert got == expected and got.utcoffset().total_seconds() == 0


def test_acceptance_to_utc_refuses_nonsense():
    with pytest.raises(ValueError):
        acceptance_to_utc("last Tuesday", date(2026, 1, 5))
    with pytest.raises(ValueError, match="convention"):
        acceptance_to_utc("2026-01-05T16:30:15Z", date(2026, 1, 5), "eastern")


def test_detect_convention(strategy, coinbase):
    def pairs(payload):
        recent = payload["filings"]["recent"]
        return [(a, date.fromisoformat(d)) for a, d in zip(recent["acceptanceDateTime"], recent["filingDate"])]

    assert detect_convention(pairs(strategy)) == "new_york"
    assert detect_convention(pairs(coinbase)) == "utc"
    assert detect_convention([]) is None
    assert detect_convention([("2026-01-05T16:30:15Z", date(2026, 1, 5))]) is None  # ambiguous: no vote
    tie = [("2026-01-05T07:30:00Z", date(2026, 1, 5)), ("2026-01-05T22:45:00Z", date(2026, 1, 5))]
    assert detect_convention(tie) is None
    assert detect_convention(tie + [("not a time", date(2026, 1, 5)), ("2026-01-06T08:00:00Z", date(2026, 1, 6))]) == "new_york"


# --- 8-K documents ----------------------------------------------------------------------

RECORDED_8KS = [
    (STRATEGY, "000105044626000031", "mstr-20261123.htm", True, ["BTC"], True),
    (STRATEGY, "000105044626000028", "mstr-20261116.htm", True, ["BTC"], True),
    (STRATEGY, "000105044626000026", "mstr-20261109.htm", True, ["BTC"], False),  # did not purchase
    (STRATEGY, "000105044626000024", "mstr-20261029.htm", True, [], False),  # earnings; "digital asset" only
    (STRATEGY, "000105044626000021", "mstr-20261006.htm", False, [], False),  # a stockholder vote
    (COINBASE, "000167978826000059", "coin-20261112.htm", True, ["BTC", "ETH", "USDC"], False),
    (COINBASE, "000167978826000051", "coin-20261030.htm", True, [], False),  # earnings; "crypto economy"
]


@pytest.mark.parametrize("cik, folder, name, mentions, currencies, purchase", RECORDED_8KS)
def test_recorded_8ks(cik, folder, name, mentions, currencies, purchase):
    eight_k = parse_8k(_archived(cik, folder, name))
    assert eight_k.mentions_crypto is mentions
    assert eight_k.currencies == currencies
    assert (eight_k.bitcoin_purchase is not None) is purchase


def test_strategy_purchase_in_prose():
    eight_k = parse_8k(_archived(STRATEGY, "000105044626000028", "mstr-20261116.htm"))
    assert eight_k.bitcoin_purchase == BitcoinPurchase(
        btc_amount=8178.0,
        aggregate_usd=835_600_000.0,
        average_price_usd=102_171.0,
        period_start=date(2026, 11, 10),
        period_end=date(2026, 11, 16),
        holdings_btc=649_870.0,
        holdings_cost_usd=48_370_000_000.0,
        holdings_average_usd=74_430.0,
    )


def test_strategy_purchase_in_a_table():
    eight_k = parse_8k(_archived(STRATEGY, "000105044626000031", "mstr-20261123.htm"))
    assert eight_k.bitcoin_purchase == BitcoinPurchase(
        btc_amount=1234.0,
        aggregate_usd=98_700_000.0,  # "(in millions)" in the header, "$" in a cell of its own
        average_price_usd=79_999.0,
        period_start=date(2026, 11, 17),
        period_end=date(2026, 11, 23),
        holdings_btc=651_104.0,
        holdings_cost_usd=48_470_000_000.0,
        holdings_average_usd=74_443.0,
    )


@pytest.mark.parametrize(
    "text, btc, usd, average",
    [
        ("During the period, Strategy acquired approximately 1,234 bitcoins for approximately $98.7 million in cash, "
         "at an average price of approximately $79,999 per bitcoin, inclusive of fees and expenses.",
         1234.0, 98_700_000.0, 79_999.0),
        ("MicroStrategy acquired an additional 2,500 bitcoins for an aggregate purchase price of approximately "
         "$1.2 billion, or approximately $480,000 per bitcoin.", 2500.0, 1_200_000_000.0, 480_000.0),
        ("The Company acquired 0.5 BTC for $25,000 at an average price of $50,000 per BTC.", 0.5, 25_000.0, 50_000.0),
        ("Strategy acquired 10 bitcoins for approximately $1.0&#160;million.", 10.0, 1_000_000.0, None),
    ],
)
def test_purchase_sentences(text, btc, usd, average):
    purchase = parse_8k(f"<html><body><p>{text}</p></body></html>").bitcoin_purchase
    assert (purchase.btc_amount, purchase.aggregate_usd, purchase.average_price_usd) == (btc, usd, average)


def test_bitcoin_holdings_wording():
    purchase = parse_8k(
        "<p>Strategy acquired 3,000 bitcoins for approximately $300.0 million, at an average price of approximately "
        "$100,000 per bitcoin. With this purchase Strategy increased its bitcoin holdings to 700,000 bitcoins, "
        "acquired at an aggregate purchase price of approximately $50.1 billion.</p>"
    ).bitcoin_purchase
    assert purchase.holdings_btc == 700_000.0 and purchase.holdings_cost_usd == 50_100_000_000.0
    assert purchase.holdings_average_usd is None


def test_an_average_from_the_next_sentence_is_not_the_purchase_price():
    purchase = parse_8k(
        "<p>Strategy acquired 100 bitcoins for approximately $10.0 million. As of today Strategy held an aggregate of "
        "500 bitcoins, acquired at an average purchase price of approximately $70,000 per bitcoin.</p>"
    ).bitcoin_purchase
    assert purchase.average_price_usd is None and purchase.holdings_average_usd == 70_000.0


@pytest.mark.parametrize(
    "document",
    [
        "<p>Strategy acquired 1,000 bitcoins during the quarter.</p>",  # no price: not a purchase update
        "<p>Strategy did not purchase any bitcoin. It held an aggregate of 500 bitcoins.</p>",
        "<p>The Company acquired 1,000 shares for $5.0 million at an average price of $5,000 per share.</p>",
    ],
)
def test_no_purchase(document):
    assert parse_8k(document).bitcoin_purchase is None


@pytest.mark.parametrize(
    "document",
    [
        "<p>The Bitcoinist conference and antibitcoinage rules are covered elsewhere.</p>",
        "<p>Whether or not together, the Ethernet switches were sold; the etherealness of it all.</p>",
        "<p>Our BTCUSD feed and the cryptographic module (the &#8220;Module&#8221;) were upgraded.</p>",
        "<p>Item 5.02 Departure of Directors. The Board appointed a new director (the &#8220;Director&#8221;).</p>",
        "<html><head><title>bitcoin</title></head><body><script>var btc = 'bitcoin';</script>"
        "<div style=\"display:none\"><ix:header>bitcoin ether</ix:header><div>digital assets</div></div>"
        "<p>Annual meeting results.</p></body></html>",
    ],
)
def test_near_misses_are_not_crypto(document):
    assert parse_8k(document) == sec.EightK(mentions_crypto=False, currencies=[], bitcoin_purchase=None)


def test_digital_assets_alone_are_crypto_content_without_a_coin():
    eight_k = parse_8k("<p>The Company holds digital assets as part of its treasury reserve policy.</p>")
    assert eight_k.mentions_crypto and eight_k.currencies == []
    assert parse_8k("Our digital-asset strategy.").mentions_crypto


def test_coins_come_from_the_registry_and_defined_terms_are_not_coins():
    eight_k = parse_8k(
        "<p>Strategy Inc (the &#8220;Company&#8221;) adopted Accounting Standards Update (ASU) 2023-08 for its "
        "class A common stock (MSTR) program and holds Bitcoin, ether and Solana.</p>"
    )
    assert eight_k.currencies == ["BTC", "ETH", "SOL"]  # not ASU, not MSTR


def test_plain_text_document():
    eight_k = parse_8k("ITEM 8.01\nThe Company acquired 5 bitcoins for $500,000, or $100,000 per bitcoin.\n")
    assert eight_k.currencies == ["BTC"] and eight_k.bitcoin_purchase.aggregate_usd == 500_000.0


def test_html_to_text():
    text = html_to_text(
        "<html><head><title>8-K</title><style>p {}</style></head><body>"
        "<div style='display: none'><ix:header><div>hidden</div>still hidden</ix:header></div>"
        "<p>Strategy Inc (&#8220;Strategy&#8221;)&#160;acquired   bitcoin.</p><p>Item&#160;9.01<br/>Exhibits</p>"
        "<table><tr><td>99.1</td><td>Press release</td></tr></table></body></html>"
    )
    assert text == "Strategy Inc (\u201cStrategy\u201d) acquired bitcoin.\nItem 9.01\nExhibits\n99.1 Press release"


# --- Form 4 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "primary, raw",
    [
        ("xslF345X05/wk-form4_123.xml", "wk-form4_123.xml"),
        ("xslF345X03/doc3.xml", "doc3.xml"),
        ("wk-form4_123.xml", "wk-form4_123.xml"),
        ("primary_doc.xml", "primary_doc.xml"),
    ],
)
def test_form4_xml_path(primary, raw):
    assert form4_xml_path(primary) == raw


def test_form4_with_several_owners():
    form = parse_form4(_archived(STRATEGY, "000105044626000030", "wk-form4_1795218069.xml"))
    assert (form.issuer_cik, form.issuer_name, form.issuer_symbol) == ("0001050446", "Strategy Inc", "MSTR")
    assert form.document_type == "4" and form.period_of_report == date(2026, 11, 18)
    assert [(o.cik, o.name, o.is_director, o.is_other) for o in form.owners] == [
        ("0001904417", "Roe Richard P", True, False),
        ("0001904418", "Roe Family Holdings LLC", False, True),  # "false"/"true" spelled out
    ]
    assert [(t.code, t.shares, t.price, t.acquired_disposed, t.derivative, t.direct_or_indirect)
            for t in form.transactions] == [
        ("M", 12000.0, 121.5, "A", False, "D"),
        ("S", 12000.0, 228.4133, "D", False, "D"),
        ("G", 2500.0, 0.0, "D", False, "I"),
        ("M", 12000.0, 0.0, "D", True, "D"),
    ]
    sale = form.transactions[1]
    assert sale.shares_owned_after == 15400.0 and sale.date == date(2026, 11, 18)
    assert sale.footnotes[0].startswith("The sale reported in this Form 4 was effected pursuant to a Rule 10b5-1")
    assert sale.footnotes[1].startswith("The price reported is a weighted average price.")
    assert sale.price_range == (227.90, 229.05) and sale.footnote_price is None
    assert form.transactions[3].security_title == "Stock Option (right to buy)"
    assert form.transactions[3].footnotes == ["The option vested in full on July 29, 2018."]


def test_form4_with_the_price_only_in_a_footnote():
    form = parse_form4(_archived(COINBASE, "000167978826000061", "wk-form4_1795042032.xml"))
    owner = form.owners[0]
    assert (owner.name, owner.is_officer, owner.officer_title, owner.is_ten_percent_owner) == (
        "Doe Jane A.", True, "Chief Legal Officer", False,
    )
    ranged, stated = form.transactions
    assert ranged.price is None and ranged.code == "S" and ranged.shares == 2500.0
    assert "ranging from $310.12 to $312.55" in ranged.footnotes[1]
    assert ranged.price_range == (310.12, 312.55) and ranged.footnote_price is None
    assert stated.price is None and stated.footnote_price == 313.07 and stated.price_range is None
    assert stated.date == date(2026, 11, 16)  # written "2026-11-16-05:00"


def test_form4_plain_purchase():
    form = parse_form4(_archived(COINBASE, "000167978826000057", "wk-form4_1793741400.xml").encode())
    (t,) = form.transactions
    assert (t.code, t.shares, t.price, t.acquired_disposed, t.shares_owned_after, t.footnotes) == (
        "P", 3000.0, 290.40, "A", 18250.0, [],
    )
    assert form.owners[0].is_director and not form.owners[0].is_officer and form.owners[0].officer_title is None


FORM4 = _archived(COINBASE, "000167978826000057", "wk-form4_1793741400.xml")


@pytest.mark.parametrize(
    "xml, message",
    [
        (FORM4[: len(FORM4) // 2], "not well-formed XML"),
        ("<html><body>Form 4</body></html>", "root element is <html>, not <ownershipDocument>"),
        ("", "not well-formed XML"),
        (FORM4.replace("<issuerCik>0001679788</issuerCik>", ""), "issuer.issuerCik is missing or empty"),
        (FORM4.replace("<issuerCik>0001679788</issuerCik>", "<issuerCik>COIN</issuerCik>"), "issuerCik is 'COIN'"),
        (FORM4.replace("<issuer>", "<issuerX>").replace("</issuer>", "</issuerX>"), "ownershipDocument has no issuer"),
        (FORM4.replace("reportingOwner>", "reportingOwnerX>"), "ownershipDocument has no reportingOwner"),
        (FORM4.replace("<transactionCode>P</transactionCode>", "<transactionCode/>"),
         "nonDerivativeTransaction[0].transactionCoding.transactionCode is missing or empty"),
        (FORM4.replace("<value>3000</value>", "<value>lots</value>"),
         "nonDerivativeTransaction[0].transactionShares is 'lots', not a number"),
        (FORM4.replace("<value>A</value>", "<value>X</value>"), "transactionAcquiredDisposedCode is 'X', not A or D"),
        (FORM4.replace("<value>290.40</value>", '<footnoteId id="F9"/>'), "cites footnote 'F9'"),
        (FORM4.replace("<value>2026-10-30</value>", "<value>30/10/2026</value>"), "transactionDate is '30/10/2026'"),
        ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
         "<ownershipDocument>&b;</ownershipDocument>", "declares entities"),
    ],
)
def test_malformed_form4(xml, message):
    error = _payload_error(parse_form4, xml, "https://www.sec.gov/Archives/edgar/data/1679788/x/wk-form4.xml")
    assert message in str(error)
    assert error.url.endswith("wk-form4.xml")


_BOMB = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
         "<ownershipDocument>&b;</ownershipDocument>")


@pytest.mark.parametrize(
    "xml",
    [
        _BOMB.encode("utf-16"),  # an expansion bomb a byte search for "<!ENTITY" does not see
        FORM4.replace("<ownershipDocument>", '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                      "<ownershipDocument><remarks>&x;</remarks>", 1),  # an external entity
        '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><ownershipDocument/>',  # a parameter entity
    ],
    ids=["utf-16 bomb", "external entity", "external parameter entity"],
)
def test_form4_entities_are_refused_as_a_source_error(xml):
    error = _payload_error(parse_form4, xml, "https://www.sec.gov/Archives/edgar/data/1679788/x/wk-form4.xml")
    assert "declares entities" in str(error) and error.source == "sec"


# --- the client: user agent and construction ----------------------------------------------


@pytest.mark.parametrize(
    "agent, problem",
    [
        (None, "none is set"),
        ("", "none is set"),
        ("   ", "none is set"),
        ("python-httpx/0.28.1", "has no contact email"),
        ("OMC Pipelines", "has no contact email"),
        ("ops@example.com", "gives an email but no name"),
        ("OMC Pipelines ops@example.com\r\nX-Evil: 1", "spans several lines"),
    ],
)
def test_user_agent_is_refused(agent, problem):
    with pytest.raises(SecUserAgentError) as caught:
        check_user_agent(agent)
    message = str(caught.value)
    assert problem in message
    assert 'set OMC_SEC_USER_AGENT, e.g. OMC_SEC_USER_AGENT="OMC Pipelines ops@example.com"' in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("agent", [AGENT, "Sample Company Name AdminContact@sample-company.co.uk", " OMC <ops@omc.io> "])
def test_user_agent_is_accepted(agent):
    assert check_user_agent(agent) == agent.strip()


def test_no_request_without_a_user_agent():
    sent = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200, json={}))
    with pytest.raises(SecUserAgentError):
        SecEdgar.create("http://data", "http://archives", None, transport=transport)
    # An HttpSource left with the layer's generic agent is refused as well.
    data = HttpSource("sec", "http://data", transport=transport)
    archives = HttpSource("sec", "http://archives", transport=transport, headers={"User-Agent": AGENT})
    with pytest.raises(SecUserAgentError, match="has no contact email"):
        SecEdgar(data, archives)
    assert sent == []


def _from_settings(settings, **options) -> SecEdgar:
    """A client from ``omc_pipelines.settings.Settings``, its values mapped onto ``SecEdgar.create``."""
    values = dict(
        data_url=settings.sec_data_url, archives_url=settings.sec_archives_url, user_agent=settings.sec_user_agent,
        rate_limit=settings.sec_rate_limit, timeout=settings.http_timeout, retries=settings.http_retries,
    )
    return SecEdgar.create(**{**values, **options})


def test_from_settings():
    loaded = settings_module.load({
        settings_module.SEC_USER_AGENT: AGENT, settings_module.SEC_DATA_URL: "http://data.local/",
        settings_module.SEC_ARCHIVES_URL: "http://archives.local", settings_module.SEC_RATE_LIMIT: "5",
        settings_module.HTTP_RETRIES: "2",
    })
    with _from_settings(loaded) as client:
        assert (client.data.base_url, client.archives.base_url) == ("http://data.local", "http://archives.local")
        assert client.data.headers["User-Agent"] == client.archives.headers["User-Agent"] == AGENT
        assert client.data.retries == 2 and client.data.rate_limit == 5.0
        assert set(client.data.throttle_statuses) == set(client.archives.throttle_statuses) == {403, 429}
    with pytest.raises(SecUserAgentError):
        _from_settings(settings_module.load({}))


def test_data_and_archives_share_one_rate_budget(monkeypatch):
    clock = _Clock()
    monkeypatch.setitem(http._limiters, "sec", RateLimiter(10.0, clock=clock, sleep=clock.sleep))
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
    client = SecEdgar.create("http://data", "http://archives", AGENT, rate_limit=10.0, transport=transport)
    assert client.data._limiter is client.archives._limiter is http._limiters["sec"]
    for host in (client.data, client.archives, client.data, client.archives):
        host.get("/x")
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])  # one budget: 10 a second across both hosts


class _Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- the client against the sandbox -------------------------------------------------------


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def client(edgar, sleeps, clock, monkeypatch):
    server, _ = edgar
    # A fresh budget and no cool-down left over from another test.
    monkeypatch.setitem(http._limiters, "sec", RateLimiter(1000.0))
    monkeypatch.setattr(sec_client, "_cooldowns", {})
    edgar = SecEdgar.create(server.url, server.url, AGENT, rate_limit=1000.0, timeout=2.0, retries=3, backoff=0.05,
                            sleep=sleeps.append, clock=clock, cooldown=60.0)
    yield edgar
    edgar.close()


def _served(server) -> list[dict]:
    return [r for r in server.requests if not r["path"].startswith("/_sandbox")]


@pytest.mark.integration
def test_submissions_through_the_client(client, edgar):
    server, box = edgar
    result = client.submissions("1050446")
    assert result.cik == STRATEGY and not result.not_modified
    assert result.etag == box.etag(STRATEGY) and result.last_modified == "Mon, 23 Nov 2026 12:32:18 GMT"
    assert [f.accepted_at for f in result.filings] == [t for a, t in RECORDED_INSTANTS.items() if a.startswith(STRATEGY)]
    assert result.filings[0].document_url == f"{server.url}/Archives/edgar/data/1050446/000105044626000031/mstr-20261123.htm"
    assert [f.form for f in client.submissions(COINBASE, forms=["4"]).filings] == ["4", "4"]
    # The agent really went out, to both hosts.
    client.document(result.filings[0])
    assert box.user_agents == [AGENT, AGENT, AGENT]


@pytest.mark.integration
def test_unchanged_poll_is_a_304(client, edgar):
    server, box = edgar
    first = client.submissions(STRATEGY)
    again = client.submissions(STRATEGY, etag=first.etag)
    assert again.not_modified and again.filings == []
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    by_date = client.submissions(STRATEGY, last_modified=first.last_modified)
    assert by_date.not_modified
    as_datetime = client.submissions(STRATEGY, last_modified=datetime(2026, 11, 23, 12, 32, 18, tzinfo=timezone.utc))
    assert as_datetime.not_modified
    stale = client.submissions(STRATEGY, etag='"stale"')
    assert not stale.not_modified and len(stale.filings) == 6
    assert [r["status"] for r in _served(server)] == [200, 304, 304, 304, 200]


@pytest.mark.integration
def test_a_published_8k_shows_up_at_the_top_with_a_new_etag(client, edgar):
    _, box = edgar
    before = client.submissions(STRATEGY)
    accession = box.publish_8k(
        STRATEGY,
        "During the period between November 24, 2026 and November 30, 2026, Strategy acquired 2,000 bitcoins for "
        "approximately $190.0 million in cash, at an average price of approximately $95,000 per bitcoin.",
        items=("7.01", "8.01"),
        accepted_at=utc(2026, 11, 30, 12, 45, 10),  # 07:45 in New York, written "07:45:10.000Z"
    )
    assert accession == "0001050446-26-000032"
    after = client.submissions(STRATEGY, etag=before.etag)
    assert not after.not_modified and after.etag != before.etag
    assert after.filings[1:] == before.filings
    top = after.filings[0]
    assert (top.accession_number, top.form, top.items, top.filing_date) == (
        accession, "8-K", ("7.01", "8.01"), date(2026, 11, 30),
    )
    assert top.accepted_at == utc(2026, 11, 30, 12, 45, 10)
    purchase = client.eight_k(top).bitcoin_purchase
    assert (purchase.btc_amount, purchase.aggregate_usd, purchase.average_price_usd) == (2000.0, 190_000_000.0, 95_000.0)
    assert client.submissions(STRATEGY, etag=after.etag).not_modified


@pytest.mark.integration
def test_form4_is_read_from_the_raw_xml(client, edgar):
    server, _ = edgar
    filing = next(f for f in client.submissions(STRATEGY).filings if f.form == "4")
    form = client.form4(filing)
    assert [o.name for o in form.owners] == ["Roe Richard P", "Roe Family Holdings LLC"]
    assert _served(server)[-1]["path"] == "/Archives/edgar/data/1050446/000105044626000030/wk-form4_1795218069.xml"
    rendered = client.document(filing)  # the primary document as listed: the XSL rendering
    assert "<h1>FORM 4</h1>" in rendered and "Roe Family Holdings LLC" in rendered
    with pytest.raises(ValueError, match="no XML primary document"):
        client.form4(next(f for f in client.submissions(STRATEGY).filings if f.form == "8-K"))


@pytest.mark.integration
def test_a_published_form4_with_the_price_in_a_footnote(client, edgar):
    _, box = edgar
    box.publish_form4(COINBASE, owner_name="Roe Alex", code="S", shares=500, price=None,
                      footnote="Sold at a weighted average sale price of $305.25 per share.",
                      accepted_at=utc(2026, 11, 30, 21, 5))
    filing = client.submissions(COINBASE).filings[0]
    assert filing.form == "4" and filing.accepted_at == utc(2026, 11, 30, 21, 5)
    (t,) = client.form4(filing).transactions
    assert (t.code, t.shares, t.price, t.footnote_price, t.acquired_disposed) == ("S", 500.0, None, 305.25, "D")


@pytest.mark.integration
def test_403_is_throttling_retried_with_backoff_then_cooled_down(client, edgar, sleeps, clock):
    server, _ = edgar
    server.inject(Fault("/submissions/", "403", times=0))
    with pytest.raises(SourceThrottled) as caught:
        client.submissions(STRATEGY)
    assert "HTTP 403 after 4 tries" in str(caught.value)
    assert [r["status"] for r in _served(server)] == [403] * 4
    assert len(sleeps) == 3 and all(0 <= s <= 0.05 * 2**i for i, s in enumerate(sleeps))
    # Blocked: the next calls send nothing, to either host, until the cool-down is over.
    server.clear_faults()
    with pytest.raises(SourceThrottled, match="cooling down"):
        client.submissions(COINBASE)
    filing = parse_submissions(_submissions(STRATEGY), archives_url=server.url)[0]
    with pytest.raises(SourceThrottled, match="nothing sent"):
        client.document(filing)
    assert len(_served(server)) == 4
    clock.now += 61
    assert len(client.submissions(STRATEGY).filings) == 6


@pytest.mark.integration
def test_a_short_403_burst_is_ridden_out(client, edgar, sleeps):
    server, _ = edgar
    server.inject(Fault("/Archives/", "403", times=2))
    server.inject(Fault("/submissions/", "429", times=1, retry_after=1))
    filing = client.submissions(STRATEGY).filings[2]
    assert "8,178 bitcoins" in client.document(filing)
    assert [r["status"] for r in _served(server)] == [429, 200, 403, 403, 200]
    assert sleeps[0] == 1.0 and len(sleeps) == 3


@pytest.mark.integration
def test_the_sec_fair_access_block_is_throttling(client, edgar):
    _, box = edgar
    box.fair_access(max_per_second=2, block_seconds=60)
    client.submissions(STRATEGY)
    client.submissions(COINBASE)
    with pytest.raises(SourceThrottled):
        client.submissions(STRATEGY)


@pytest.mark.integration
def test_unknown_filer_and_broken_answers(client, edgar):
    server, _ = edgar
    with pytest.raises(SourceRefused) as caught:
        client.submissions("0000000001")
    assert caught.value.status == 404
    server.inject(Fault("/submissions/", "malformed"))
    with pytest.raises(SourcePayloadError, match="not valid JSON"):
        client.submissions(STRATEGY)
    with pytest.raises(ValueError, match="CIK"):
        client.submissions("MSTR")
    no_document = parse_submissions(_submissions(STRATEGY))[0]
    no_document = Filing(**{**no_document.__dict__, "primary_document": ""})
    with pytest.raises(ValueError, match="no primary document"):
        client.document(no_document)
    assert issubclass(SourceThrottled, SourceError)
