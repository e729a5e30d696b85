"""CoinSpot's announcements source (omc_pipelines/sources/announcements/).

Pure parsers on the recorded API page and on the sandbox's HTML, with hand-made
variants; the classifier on a table of titles, near misses first; the client's three
paths against the sandbox (``HelpCentre``), the browser path with a real Chromium.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from omc_pipelines.sandbox.server import Fault, Response, SandboxServer, serve
from omc_pipelines.sandbox.zendesk import RECORDINGS, HelpCentre
from omc_pipelines.sources.announcements import (
    IMPACT,
    KINDS,
    AnnouncementsUnavailable,
    Article,
    CoinSpotAnnouncements,
    HelpCenterApi,
    HelpCenterBrowser,
    HelpCenterPages,
    PathFailure,
    classify,
    is_bot_challenge,
    parse_article_list,
    parse_article_page,
    parse_articles_page,
)
from omc_pipelines.sources.coins import extract_coins
from omc_pipelines.sources.http import HttpSource, SourceError, SourcePayloadError, SourceUnavailable

CHROMIUM = "/usr/bin/chromium"
CATEGORY = "115000579994"
API_PATH = f"/api/v2/help_center/en-us/categories/{CATEGORY}/articles.json"
URL = f"https://coinspot.zendesk.com{API_PATH}?sort_by=created_at&sort_order=desc&per_page=100"
RECORDED = json.loads((RECORDINGS / "articles.json").read_text())
HYPE = 2  # index in the recording: 0 maintenance, 1 the draft, 2 the HYPE listing (edited later)


def _payload() -> dict:
    return copy.deepcopy(RECORDED)


def _payload_error(call, *args) -> SourcePayloadError:
    with pytest.raises(SourcePayloadError) as caught:
        call(*args)
    return caught.value


def _key(article: Article) -> tuple:
    """What every path must agree on."""
    return (article.id, article.title, article.url, article.created_at, article.section_id, article.body_html)


@dataclass
class Centre:
    server: SandboxServer
    centre: HelpCentre

    @property
    def url(self) -> str:
        return self.server.url

    def served(self, prefix: str) -> list[dict]:
        return self.server.requests_to(prefix)


@pytest.fixture
def hc():
    centre = HelpCentre()
    with serve(centre) as server:
        yield Centre(server, centre)


@pytest.fixture
def http(hc):
    # A name of its own: the rate budget is per source name, and tests want it wide.
    with HttpSource("zendesk-test", hc.url, timeout=5.0, retries=2, backoff=0.01, rate_limit=1000.0) as source:
        yield source


def _client(http: HttpSource, **options) -> CoinSpotAnnouncements:
    return CoinSpotAnnouncements(http, CATEGORY, browser_path="/nonexistent/chromium", **options)


@pytest.fixture
def api_articles(http) -> list[Article]:
    """The sandbox's articles as the API path reads them: the reference for the other paths."""
    return HelpCenterApi(http, CATEGORY).latest()


def _chromium_or_skip() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI (.ci/run installs Debian's chromium)", pytrace=False)
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="module")
def chromium():
    """One Chromium for the module's browser tests (a launch costs 1-2 s)."""
    path = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


# --- parse_articles_page ---------------------------------------------------------------


def test_parse_recorded_page_keeps_the_order_and_skips_the_draft():
    articles, next_url = parse_articles_page(_payload(), URL)
    assert next_url is None
    assert len(articles) == len(RECORDED["articles"]) - 1 == 25
    assert all("Secret Network" not in a.title for a in articles)
    assert [a.created_at for a in articles] == sorted((a.created_at for a in articles), reverse=True)
    hype = next(a for a in articles if a.title == "New Coin Listing: Hyperliquid (HYPE)")
    assert hype == Article(
        id=30045615912437, title="New Coin Listing: Hyperliquid (HYPE)",
        url="https://coinspot.zendesk.com/hc/en-us/articles/30045615912437-New-Coin-Listing-Hyperliquid-HYPE",
        body_html=RECORDED["articles"][HYPE]["body"],
        created_at=datetime(2025, 6, 11, 23, 5, 12, tzinfo=timezone.utc),
        updated_at=datetime(2025, 6, 11, 23, 20, tzinfo=timezone.utc),
        section_id=360001711234, labels=("listing",), dated_from="api",
    )
    assert all(a.created_at.tzinfo == timezone.utc for a in articles)


def test_parse_optional_fields_and_lenient_forms():
    body = _payload()
    row = body["articles"][HYPE]
    for name in ("body", "section_id", "label_names"):
        del row[name]
    row["updated_at"] = None
    del row["title"]  # "name" is the older field, still sent
    row["id"] = "30045615912437"
    row["created_at"] = "2025-06-12T09:05:12+10:00"  # an offset, not Z
    body["articles"][0]["created_at"] = "2025-06-13T01:30:00"  # naive: Zendesk's times are UTC
    articles, _ = parse_articles_page(body, URL)
    hype = articles[1]
    assert (hype.id, hype.title, hype.body_html, hype.updated_at, hype.section_id, hype.labels) == (
        30045615912437, "New Coin Listing: Hyperliquid (HYPE)", None, None, None, ())
    assert hype.created_at == datetime(2025, 6, 11, 23, 5, 12, tzinfo=timezone.utc)
    assert articles[0].created_at == datetime(2025, 6, 13, 1, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda a: a.pop("id"), "articles[2] has no 'id'"),
        (lambda a: a.update(id="abc"), "articles[2].id is 'abc'"),
        (lambda a: a.update(id=True), "articles[2].id is a boolean"),
        (lambda a: (a.pop("title"), a.pop("name")), "articles[2] has no 'title'"),
        (lambda a: a.update(title="   ", name="   "), "articles[2].title"),
        (lambda a: a.pop("html_url"), "articles[2] has no 'html_url'"),
        (lambda a: a.pop("created_at"), "articles[2] has no 'created_at'"),
        (lambda a: a.update(created_at=None), "articles[2] has no 'created_at'"),
        (lambda a: a.update(created_at="last Tuesday"), "articles[2].created_at is 'last Tuesday'"),
        (lambda a: a.update(created_at=1749683112), "articles[2].created_at is 1749683112"),
        (lambda a: a.update(updated_at="2025-13-45T00:00:00Z"), "articles[2].updated_at"),
        (lambda a: a.update(section_id="news"), "articles[2].section_id"),
        # Zendesk's ids are positive: a negative or zero one is no article.
        (lambda a: a.update(id=-30045615912437), "articles[2].id is -30045615912437"),
        (lambda a: a.update(id=0), "articles[2].id is 0"),
        (lambda a: a.update(id="0"), "articles[2].id is '0'"),
        (lambda a: a.update(section_id=-115000579994), "articles[2].section_id is -115000579994"),
        (lambda a: a.update(label_names="listing"), "articles[2].label_names"),
        (lambda a: a.update(body={"html": "<p>"}), "articles[2].body"),
    ],
)
def test_malformed_article_names_the_field(mutate, named):
    body = _payload()
    mutate(body["articles"][HYPE])
    error = _payload_error(parse_articles_page, body, URL)
    assert named in str(error)
    assert (error.source, error.url) == ("zendesk", URL)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ([], "expected a JSON object, got list"),
        ({"count": 0}, "body has no 'articles'"),
        ({"articles": {"id": 1}}, "articles is not a list"),
        ({"articles": ["x"]}, "articles[0] is not an object"),
        ({"articles": [], "next_page": 2}, "next_page is 2"),
        ({"articles": [], "meta": {"has_more": True}}, "neither links.next nor meta.after_cursor"),
    ],
)
def test_malformed_page_names_what_is_wrong(payload, named):
    assert named in str(_payload_error(parse_articles_page, payload, URL))


def test_a_draft_is_skipped_even_when_malformed():
    # A token-holder's API shows drafts; they are not announcements, whatever they hold.
    articles, _ = parse_articles_page({"articles": [{"id": 7, "draft": True}]}, URL)
    assert articles == []


def test_next_page_in_both_paging_styles():
    offset = {"articles": [], "next_page": "https://coinspot.zendesk.com/x.json?page=2&per_page=30"}
    assert parse_articles_page(offset, URL)[1] == offset["next_page"]
    cursor = {"articles": [], "meta": {"has_more": True, "after_cursor": "xyz"},
              "links": {"next": "https://coinspot.zendesk.com/x.json?page%5Bafter%5D=xyz&page%5Bsize%5D=30"}}
    assert parse_articles_page(cursor, URL)[1] == cursor["links"]["next"]
    # has_more decides, whatever links.next says
    done = {"articles": [], "meta": {"has_more": False, "after_cursor": "xyz"}, "links": {"next": "https://x/y"}}
    assert parse_articles_page(done, URL)[1] is None
    # only a cursor: this URL with page[after] set (replaced, not repeated)
    bare = {"articles": [], "meta": {"has_more": True, "after_cursor": "c2"}}
    here = "https://coinspot.zendesk.com/a.json?page%5Bsize%5D=5&page%5Bafter%5D=c1&sort_by=created_at"
    assert parse_articles_page(bare, here)[1] == (
        "https://coinspot.zendesk.com/a.json?page%5Bsize%5D=5&sort_by=created_at&page%5Bafter%5D=c2")


# --- the HTML pages ----------------------------------------------------------------------

LIST_HTML = """<!DOCTYPE html><html><head><title>Announcements &ndash; CoinSpot</title></head><body>
<ol class="breadcrumbs"><li><a href="/hc/en-us/categories/115000579994-Announcements">Announcements</a></li></ol>
<section class="section">
  <h2 class="section-tree-title"><a href="/hc/en-us/sections/111-New-Coin-Listings">New Coin Listings</a></h2>
  <ul class="article-list">
    <li class="article-list-item article-promoted"><span class="icon-star"></span>
      <a href="/hc/en-us/articles/1003-Pinned" class="article-list-link">Read   this <em>first</em></a></li>
    <li class="article-list-item"><a href="/hc/en-us/articles/1002-Foo" class="article-list-link">Foo &amp; Bar (FOO)</a>
    <li class="article-list-item"><a href="https://coinspot.zendesk.com/hc/en-us/articles/1001" class="article-list-link">Old</a></li>
  </ul>
  <a href="/hc/en-us/sections/111-New-Coin-Listings" class="see-all-articles">See all 9 articles</a>
</section>
<section class="section">
  <h2 class="section-tree-title"><a href="/hc/en-us/sections/222-Maintenance">Maintenance</a></h2>
  <ul class="article-list"><li class="article-list-item"><a href="/hc/en-us/articles/1004-Down" class="article-list-link">Down</a></li></ul>
</section>
<a href="/hc/en-us/articles/9999-Not-in-a-list" class="article-list-link">Elsewhere</a>
<nav class="pagination"><ul><li class="pagination-next"><a href="/hc/en-us/sections/111?page=2#articles">Next</a></li></ul></nav>
</body></html>"""


def test_parse_article_list_reads_items_sections_and_next():
    page = parse_article_list(LIST_HTML, "https://coinspot.zendesk.com/hc/en-us/categories/115000579994")
    assert [(a.id, a.title, a.url, a.section_id) for a in page.articles] == [
        (1003, "Read this first", "https://coinspot.zendesk.com/hc/en-us/articles/1003-Pinned", 111),
        (1002, "Foo & Bar (FOO)", "https://coinspot.zendesk.com/hc/en-us/articles/1002-Foo", 111),
        (1001, "Old", "https://coinspot.zendesk.com/hc/en-us/articles/1001", 111),
        (1004, "Down", "https://coinspot.zendesk.com/hc/en-us/articles/1004-Down", 222),
    ]
    assert page.section_urls == ["https://coinspot.zendesk.com/hc/en-us/sections/111-New-Coin-Listings"]
    assert page.next_url == "https://coinspot.zendesk.com/hc/en-us/sections/111?page=2#articles"
    assert page.challenge is False and page.scripted is False
    scripted = LIST_HTML.replace("</body>", "<script src='/theme.js'></script></body>")
    assert parse_article_list(scripted, "https://coinspot.zendesk.com/hc/en-us/categories/1").scripted


@pytest.mark.parametrize("href", ["/hc/en-us/search", "/hc/en-us/articles/0-Zero", "/hc/en-us/articles/-5-Minus"])
def test_parse_article_list_refuses_a_link_without_an_id(href):
    html = f'<ul><li class="article-list-item"><a class="article-list-link" href="{href}">Search</a></li></ul>'
    error = _payload_error(parse_article_list, html, "https://x/hc/en-us/categories/1")
    assert f"li.article-list-item a.article-list-link[0] href '{href}' names no article id" in str(error)


@pytest.mark.parametrize(
    ("html", "challenge"),
    [
        ("<html><head><title>Just a moment...</title></head><body></body></html>", True),
        ("<html><head><title>Attention Required! | Cloudflare</title></head></html>", True),
        ("<html><head><title>x</title><script>window._cf_chl_opt={}</script></head></html>", True),
        ("<html><head><title>Announcements &ndash; CoinSpot</title></head><body>Just a moment</body></html>", False),
        # Cloudflare's script injected into ordinary pages is no challenge
        ("<html><head><title>Announcements</title></head><body><script>(function(){var a=document.createElement("
         "'script');a.src='/cdn-cgi/challenge-platform/scripts/jsd/main.js';})();</script></body></html>", False),
    ],
)
def test_bot_challenge_detection(html, challenge):
    assert is_bot_challenge(html) is challenge
    assert parse_article_list(html, "https://x/").challenge is challenge


ARTICLE_HTML = """<html><body><article class="article">
<header><h1 class="article-title">New Coin Listing: Foo (FOO)</h1>
<ul class="meta-group"><li><time datetime="2025-06-11T23:20:00Z">12 June</time></li>
<li>Updated <time datetime="2025-06-11T23:05:12Z">12 June</time></li></ul></header>
<div class="article-body"><p>Foo &amp; <b>bar</b></p><div class="note"><p>inner</p></div><img src="/a.png"><br/></div>
<div class="article-footer">not the body</div></article></body></html>"""


def test_parse_article_page_takes_the_earliest_time_and_the_body():
    page = parse_article_page(ARTICLE_HTML, "https://x/hc/en-us/articles/1")
    assert page.title == "New Coin Listing: Foo (FOO)"
    assert page.created_at == datetime(2025, 6, 11, 23, 5, 12, tzinfo=timezone.utc)
    assert page.updated_at == datetime(2025, 6, 11, 23, 20, tzinfo=timezone.utc)
    # As the HTML5 parser serialises it: the source's "<br/>" comes back as "<br>", the same element.
    assert page.body_html == '<p>Foo &amp; <b>bar</b></p><div class="note"><p>inner</p></div><img src="/a.png"><br>'


def test_parse_article_page_without_time_or_with_a_bad_one():
    assert parse_article_page("<h1>T</h1><div class='article-body'>x</div>", "u").created_at is None
    error = _payload_error(parse_article_page, '<time datetime="soon">soon</time>', "https://x/hc/en-us/articles/1")
    assert "time[datetime][0] is 'soon'" in str(error)


@pytest.mark.integration
def test_parse_the_sandbox_pages_like_the_api(hc, api_articles):
    with httpx.Client(base_url=hc.url) as client:
        category = client.get(f"/hc/en-us/categories/{CATEGORY}").text
        listed = parse_article_list(category, f"{hc.url}/hc/en-us/categories/{CATEGORY}")
        by_id = {a.id: a for a in api_articles}
        assert listed.articles and all(by_id[a.id].title == a.title and by_id[a.id].url == a.url
                                       and by_id[a.id].section_id == a.section_id for a in listed.articles)
        assert len(listed.section_urls) == 3  # the sections with more than the category page shows
        hype = next(a for a in api_articles if "HYPE" in a.title)
        page = parse_article_page(client.get(hype.url).text, hype.url)
    assert (page.created_at, page.updated_at, page.body_html) == (hype.created_at, hype.updated_at, hype.body_html)


# --- the classifier ------------------------------------------------------------------------

CLASSIFIED = [
    # listings, and the near misses around them
    ("New Coin Listing: XYZ", "listing", ["XYZ"]),
    ("New Coin Listing: Hyperliquid (HYPE)", "listing", ["HYPE"]),
    ("New Coin Listings: Jupiter (JUP) and Pyth Network (PYTH)", "listing", ["JUP", "PYTH"]),
    ("We have listed Solana and Cardano", "listing", ["SOL", "ADA"]),
    ("Bonk (BONK) is now available on CoinSpot", "listing", ["BONK"]),
    ("XYZ is now available", "listing", ["XYZ"]),
    ("Kaspa (KAS) now listed", "listing", ["KAS"]),
    ("Listing of dogwifhat (WIF)", "listing", ["WIF"]),
    ("Listing: Sui (SUI)", "listing", ["SUI"]),
    ("Relisting of Stellar Lumens (XLM)", "listing", ["XLM"]),
    ("NEW COIN LISTING: Foo (FOO)", "listing", ["FOO"]),
    # delistings: never listings
    ("Delisting of Terra Classic (LUNC)", "delisting", ["LUNC"]),
    ("Delisting: XYZ", "delisting", ["XYZ"]),
    ("CoinSpot will delist XYZ and ABC", "delisting", ["XYZ", "ABC"]),
    ("Loopring (LRC) will be removed from CoinSpot", "delisting", ["LRC"]),
    ("Monero (XMR) is no longer supported", "delisting", ["XMR"]),
    ("Delisting of XYZ; our new listing process", "delisting", ["XYZ"]),
    # maintenance names its coin but is not a listing
    ("Scheduled maintenance: Bitcoin (BTC) wallet", "maintenance", ["BTC"]),
    ("BTC wallet maintenance", "maintenance", ["BTC"]),
    ("Ethereum network upgrade: deposits and withdrawals paused", "maintenance", ["ETH"]),
    ("Hedera (HBAR) hard fork: HBAR wallet suspended", "maintenance", ["HBAR"]),
    ("Scheduled downtime this weekend", "maintenance", []),
    # trading changes
    ("New USDT trading pairs for SOL and XRP", "trading_change", ["USDT", "SOL", "XRP"]),
    ("USDT markets now available for BTC", "trading_change", ["USDT", "BTC"]),
    ("Trading halted for Render (RNDR)", "trading_change", ["RNDR"]),
    ("Trading resumed for RNDR", "trading_change", ["RNDR"]),
    ("Deposits suspended for Cosmos (ATOM)", "trading_change", ["ATOM"]),
    ("dogwifhat (WIF) deposits re-enabled", "trading_change", ["WIF"]),
    # features, promotions, news: "new" means nothing, "now available" needs a coin
    ("New feature: price alerts", "other", []),
    ("New: Recurring buys", "other", []),
    ("Recurring buys are now available", "other", []),
    ("Solana (SOL) staking now available", "other", ["SOL"]),
    ("Updates to our listing policy", "other", []),
    ("Market update: Bitcoin reaches a new all-time high", "other", ["BTC"]),
    ("SMS 2FA will no longer be supported", "other", []),
    ("Win $500 in our newsletter giveaway", "other", []),
]


@pytest.mark.parametrize(("title", "kind", "currencies"), CLASSIFIED, ids=[t for t, _, _ in CLASSIFIED])
def test_classify(title, kind, currencies):
    result = classify(title)
    assert (result.kind, result.currencies) == (kind, currencies), result
    assert result.impact == IMPACT[kind]


def test_impact_by_kind():
    assert IMPACT == {"listing": 9, "delisting": 7, "trading_change": 5, "maintenance": 3, "other": 1}
    assert set(IMPACT) == set(KINDS)
    assert {kind for _, kind, _ in CLASSIFIED} == set(KINDS)


def test_the_body_names_coins_but_never_decides_the_kind():
    listing = classify("New coin listing today", "<p>We are listing <strong>Foo Token (FOO)</strong>.</p>")
    assert (listing.kind, listing.currencies) == ("listing", ["FOO"])
    # the title names a coin: the body's are not added
    assert classify("Kaspa (KAS) now listed", "<p>Buy KAS with BTC.</p>").currencies == ["KAS"]
    update = classify("Important update", "<p>We will delist XYZ. Bitcoin is unaffected.</p>")
    assert (update.kind, update.currencies) == ("other", ["BTC"])


def test_every_recorded_title_is_classified_as_its_section_says():
    expected = {360001711234: {"listing"}, 360001711254: {"delisting", "maintenance", "trading_change"},
                360001711274: {"maintenance"}, 360001711294: {"other", "trading_change"}}
    articles, _ = parse_articles_page(_payload(), URL)
    for article in articles:
        assert classify(article.title, article.body_html).kind in expected[article.section_id], article.title


def test_two_coin_listings_name_both_coins():
    assert extract_coins("New Coin Listings: Jupiter (JUP) and Pyth Network (PYTH)") == ["JUP", "PYTH"]
    assert extract_coins("New listings: Solana and Cardano") == ["SOL", "ADA"]
    assert classify("New listings: Solana and Cardano").currencies == ["SOL", "ADA"]


# --- the API path --------------------------------------------------------------------------


@pytest.mark.integration
def test_api_path_reads_the_category_newest_first(hc, http):
    fetched = _client(http).fetch()
    assert fetched.path_used == "api" and fetched.failures == ()
    expected = hc.centre.articles()
    assert [a.id for a in fetched.articles] == [a["id"] for a in expected]
    assert len(fetched.articles) == 25
    assert all(a.dated_from == "api" and a.url.startswith(hc.url + "/hc/en-us/articles/") for a in fetched.articles)
    assert hc.served("/hc/") == []  # no fallback was needed
    [request] = hc.served("/api/")
    assert request["path"] == API_PATH


@pytest.mark.integration
@pytest.mark.parametrize("paging", ["offset", "cursor"])
def test_api_paging_stops_at_since(hc, http, paging, api_articles):
    hc.server.requests.clear()
    since = api_articles[9].created_at  # the 10th newest: inclusive
    articles = HelpCenterApi(http, CATEGORY, per_page=4, paging=paging).latest(since=since)
    assert [a.id for a in articles] == [a.id for a in api_articles[:10]]
    assert len(hc.served(API_PATH)) == 3  # pages of 4: the 3rd holds the 11th, older: stop


@pytest.mark.integration
@pytest.mark.parametrize("paging", ["offset", "cursor"])
def test_api_paging_follows_the_links_to_the_end(hc, http, paging, api_articles):
    hc.server.requests.clear()
    articles = HelpCenterApi(http, CATEGORY, per_page=7, paging=paging).latest(limit=100)
    assert [_key(a) for a in articles] == [_key(a) for a in api_articles]
    assert len(hc.served(API_PATH)) == 4  # 7 + 7 + 7 + 4


@pytest.mark.integration
def test_api_limit_and_a_future_since_ask_one_page(hc, http, api_articles):
    hc.server.requests.clear()
    assert [a.id for a in HelpCenterApi(http, CATEGORY).latest(limit=3)] == [a.id for a in api_articles[:3]]
    assert HelpCenterApi(http, CATEGORY).latest(since=datetime.now(timezone.utc) + timedelta(days=1)) == []
    assert [r["path"] for r in hc.served("/api/")] == [API_PATH, API_PATH]


def test_api_refuses_a_next_link_that_repeats():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"articles": [], "next_page": "https://elsewhere.example/a.json?page=2"})

    http = HttpSource("zendesk-loop", "http://proxy.example/zendesk", transport=httpx.MockTransport(answer), retries=0)
    error = _payload_error(HelpCenterApi(http, CATEGORY).latest)
    assert "next page link repeats" in str(error)


def test_next_links_are_followed_under_the_configured_base():
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if "page=2" in str(request.url):
            return httpx.Response(200, json={"articles": [], "next_page": None})
        # the upstream names its own host; a proxy in front keeps its prefix
        return httpx.Response(200, json={"articles": [], "next_page":
                                         f"https://coinspot.zendesk.com{API_PATH}?page=2&per_page=30"})

    http = HttpSource("zendesk-proxy", "http://proxy.example/zendesk", transport=httpx.MockTransport(answer), retries=0)
    assert HelpCenterApi(http, CATEGORY).latest() == []
    assert seen[1] == f"http://proxy.example/zendesk{API_PATH}?page=2&per_page=30"


def test_bounds_are_checked(http):
    with pytest.raises(ValueError, match="aware"):
        _client(http).fetch(since=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="limit"):
        _client(http).fetch(limit=0)
    with pytest.raises(ValueError, match="unknown paths"):
        _client(http, paths=("api", "rss"))


# --- the HTML path -------------------------------------------------------------------------


@pytest.mark.integration
def test_html_fallback_when_the_api_is_refused(hc, http, api_articles):
    hc.centre.set_mode(api="refused")
    client = _client(http)
    articles = client.latest(limit=8)
    assert client.path_used == "html"
    [failure] = client.failures
    assert failure.path == "api" and "HTTP 403" in failure.reason
    assert [_key(a) for a in articles] == [_key(a) for a in api_articles[:8]]
    assert all(a.dated_from == "page" and a.labels == () for a in articles)
    hype = next(a for a in articles if "HYPE" in a.title)
    assert hype.updated_at == next(a for a in api_articles if a.id == hype.id).updated_at
    assert len(hc.served("/hc/en-us/articles/")) == 8  # only the article pages needed


@pytest.mark.integration
def test_html_path_reads_article_pages_only_down_to_since(hc, http, api_articles):
    since = api_articles[4].created_at
    articles = HelpCenterPages(http, CATEGORY).latest(since=since)
    assert [_key(a) for a in articles] == [_key(a) for a in api_articles[:5]]
    assert len(hc.served("/hc/en-us/articles/")) == 6  # the 6th is older: the walk stops there


@pytest.mark.integration
def test_html_fallback_when_the_api_stays_throttled(hc, http, api_articles):
    hc.server.inject(Fault("/api/", "429", times=0))
    fetched = _client(http).fetch(limit=2)
    assert fetched.path_used == "html"
    assert "HTTP 429 after 3 tries" in fetched.failures[0].reason
    assert [a.id for a in fetched.articles] == [a.id for a in api_articles[:2]]


def _html_source(pages: dict[str, tuple[int, str]], name: str) -> HttpSource:
    def answer(request: httpx.Request) -> httpx.Response:
        status, text = pages.get(request.url.path, (404, "<h1>Not found</h1>"))
        return httpx.Response(status, text=text, headers={"Content-Type": "text/html"})

    return HttpSource(name, "https://help.example", transport=httpx.MockTransport(answer), retries=0, rate_limit=1000.0)


def test_html_path_skips_a_removed_article_and_dates_an_undated_one_by_detection():
    seen_at = datetime(2025, 7, 1, 12, 0, tzinfo=timezone.utc)
    pages = {
        f"/hc/en-us/categories/{CATEGORY}": (200, LIST_HTML),
        "/hc/en-us/sections/111-New-Coin-Listings": (200, LIST_HTML.replace("1002-Foo", "1005-Newer")),
        "/hc/en-us/articles/1005-Newer": (200, ARTICLE_HTML),
        "/hc/en-us/articles/1004-Down": (200, "<h1>Down</h1><div class='article-body'><p>soon</p></div>"),
        # 1003 and 1002 are gone (404); 1001 is dated
        "/hc/en-us/articles/1001": (200, '<time datetime="2024-01-02T03:04:05Z"></time>'),
    }
    pages_path = HelpCenterPages(_html_source(pages, "zendesk-html"), CATEGORY, now=lambda: seen_at)
    articles = pages_path.latest()
    assert [(a.id, a.created_at, a.dated_from) for a in articles] == [
        (1004, seen_at, "detected"),
        (1005, datetime(2025, 6, 11, 23, 5, 12, tzinfo=timezone.utc), "page"),
        (1001, datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "page"),
    ]
    assert articles[0].body_html == "<p>soon</p>" and articles[0].section_id == 222


@pytest.mark.integration
@pytest.mark.parametrize(("mode", "reason"), [
    ("javascript", "no li.article-list-item a.article-list-link in the raw HTML"),
    ("challenge", "HTTP 403"),
])
def test_without_a_browser_the_html_path_names_why_it_failed(hc, http, mode, reason):
    hc.centre.set_mode(api="refused", html=mode)
    with pytest.raises(AnnouncementsUnavailable) as caught:
        _client(http, paths=("api", "html")).fetch(limit=3)
    api, html = caught.value.failures
    assert (api.path, html.path) == ("api", "html")
    assert reason in html.reason


def test_a_challenge_answered_with_200_is_recognised():
    challenge = (RECORDINGS / "challenge.html").read_text()
    http = _html_source({f"/hc/en-us/categories/{CATEGORY}": (200, challenge)}, "zendesk-challenge")
    with pytest.raises(AnnouncementsUnavailable) as caught:
        CoinSpotAnnouncements(http, CATEGORY, paths=("html",)).fetch()
    assert "a bot challenge answered https://help.example/hc/en-us/categories/" in caught.value.failures[0].reason


# --- every path failing --------------------------------------------------------------------


@pytest.mark.integration
def test_when_every_path_fails_the_error_names_each(hc, http):
    hc.centre.set_mode(api="refused", html="challenge")
    with pytest.raises(AnnouncementsUnavailable) as caught:
        _client(http).fetch()
    error = caught.value
    assert isinstance(error, SourceUnavailable) and isinstance(error, SourceError)
    assert [f.path for f in error.failures] == ["api", "html", "browser"]
    assert error.failures[2] == PathFailure("browser", "no browser at /nonexistent/chromium")
    text = str(error)
    assert text.startswith("zendesk-test: every path failed (api: zendesk-test: HTTP 403")
    assert "; html: " in text and "; browser: no browser at /nonexistent/chromium)" in text
    copied = pickle.loads(pickle.dumps(error))  # crosses Dagster's process boundary intact
    assert (str(copied), copied.failures) == (text, error.failures)


# --- publishing ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_published_listing_comes_first_on_the_api_and_the_html_paths(hc, http):
    published = hc.centre.publish("New Coin Listing: Foo Token (FOO)", "<p>Foo is here.</p>")
    before = datetime.fromisoformat(published["created_at"].replace("Z", "+00:00"))
    assert published["id"] > max(a["id"] for a in hc.centre.articles() if a["id"] != published["id"])
    client = _client(http)
    [newest] = client.latest(since=before)
    assert (newest.id, newest.title, newest.body_html) == (published["id"], published["title"], "<p>Foo is here.</p>")
    assert classify(newest.title, newest.body_html) == classify("New Coin Listing: Foo Token (FOO)")
    assert classify(newest.title).kind == "listing" and classify(newest.title).currencies == ["FOO"]
    hc.centre.set_mode(api="refused")
    fetched = client.fetch(since=before)
    assert fetched.path_used == "html" and [_key(a) for a in fetched.articles] == [_key(newest)]


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["oversized", "503", "malformed"])
def test_a_browser_is_not_tried_when_the_help_centre_answers_badly(hc, http, fault):
    """A browser passes a bot challenge and renders a list; it mends no server that answers
    too much, an error or garbage: it would only read the same bad page, slowly."""
    hc.server.inject(Fault("/api/", fault, times=0))
    hc.server.inject(Fault("/hc/", fault, times=0))
    never = object()  # a "browser" that fails with an AttributeError the moment it is used
    with pytest.raises(AnnouncementsUnavailable) as caught:
        _client(http, browser=never).fetch(limit=3)
    api, html, browser = caught.value.failures
    assert (api.path, html.path, browser.path) == ("api", "html", "browser")
    assert browser.reason.startswith("not tried: ")
    assert "; browser: not tried: " in str(caught.value)


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["negative", "zero"])
def test_articles_with_impossible_ids_are_never_recorded(database_url, sandbox, variant):
    """The API's answer with every id negated (or zeroed) was stored as 25 new events (or one, "0")."""
    import sqlalchemy as sa
    from dagster import materialize

    from omc_pipelines.db import get_engine
    from omc_pipelines.db.models import CatalystEvent
    from omc_pipelines.ledgers.catalyst import assets as catalyst
    from omc_pipelines.resources import AnnouncementsResource, LedgerDatabase

    resources = {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False),
                 "announcements": AnnouncementsResource(base_url=sandbox.url, retries=1, backoff=0.01,
                                                        history_days=3650, browser_path="/nonexistent/chromium")}
    columns = [CatalystEvent.external_id, CatalystEvent.event_type, CatalystEvent.title, CatalystEvent.published_at,
               CatalystEvent.url, CatalystEvent.currencies]

    def recorded():
        with get_engine(database_url).connect() as conn:
            return sorted(conn.execute(sa.select(*columns).where(CatalystEvent.source == "coinspot_announcements")))

    assert materialize([catalyst.coinspot_announcements], resources=resources).success
    before = recorded()
    sandbox.inject(Fault("/api/v2/help_center", "wrong_shape", times=0, variant=variant))

    result = materialize([catalyst.coinspot_announcements], resources=resources)

    assert result.success and recorded() == before  # the HTML pages name the same articles
    metadata = result.asset_materializations_for_node("coinspot_announcements")[0].metadata
    assert metadata["path_used"].value == "html"


# --- the browser path ------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.browser
def test_browser_fallback_reads_a_list_rendered_by_javascript(hc, http, api_articles, chromium):
    hc.centre.set_mode(api="refused", html="javascript")
    fetched = _client(http, browser=chromium).fetch(limit=6)
    assert fetched.path_used == "browser"
    assert [f.path for f in fetched.failures] == ["api", "html"]
    assert "raw HTML" in fetched.failures[1].reason
    assert [_key(a) for a in fetched.articles] == [_key(a) for a in api_articles[:6]]
    assert all(a.dated_from == "page" for a in fetched.articles)


@pytest.mark.integration
@pytest.mark.browser
def test_browser_fallback_passes_the_challenge_with_its_own_chromium(hc, http, api_articles):
    # No browser handed in: the client launches settings.browser_path itself.
    path = _chromium_or_skip()
    hc.centre.set_mode(api="refused", html="challenge")
    published = hc.centre.publish("Trading halted for Render (RNDR)")
    fetched = CoinSpotAnnouncements(http, CATEGORY, path).fetch(limit=4)
    assert fetched.path_used == "browser"
    assert "a bot challenge or a block" in fetched.failures[1].reason
    assert fetched.articles[0].id == published["id"]
    assert [_key(a) for a in fetched.articles[1:]] == [_key(a) for a in api_articles[:3]]
    category = [r["status"] for r in hc.served(f"/hc/en-us/categories/{CATEGORY}")]
    assert category[:2] == [403, 403] and 200 in category  # the HTML path's 403, the browser's, then through


def test_a_challenge_body_the_browser_already_dropped_is_waited_through(http):
    """Under load a challenge page reloads before its 403 body is read back; Playwright then says
    "No resource with given identifier found". That is a challenge at work, not a failure."""
    from playwright.sync_api import Error as PlaywrightError

    class Dropped:
        status = 403
        request = type("Request", (), {"sizes": lambda self: {"responseBodySize": 120}})()

        def text(self):
            raise PlaywrightError("Protocol error (Network.getResponseBody): No resource with given identifier found")

    class Page:
        waited = []

        def goto(self, url, **_):
            return Dropped()

        def wait_for_selector(self, selector, **_):
            self.waited.append(selector)

        def wait_for_load_state(self, *_, **__):
            pass

        def locator(self, _):
            return type("Html", (), {"evaluate": lambda self, *_, **__: "<html><ul class='article-list'></ul></html>"})()

    browser = HelpCenterBrowser(http, CATEGORY, browser_path="/nonexistent/chromium")
    page = Page()
    assert browser._open(page, browser.category_url, "ul.article-list", "article list") == (
        "<html><ul class='article-list'></ul></html>")
    assert page.waited == ["ul.article-list"]


@pytest.mark.integration
@pytest.mark.browser
def test_browser_path_fails_fast_on_a_missing_category(hc, http, chromium):
    with pytest.raises(AnnouncementsUnavailable) as caught:
        CoinSpotAnnouncements(http, "999", CHROMIUM, browser=chromium, browser_timeout=30, paths=("browser",)).fetch()
    [browser] = caught.value.failures
    assert browser.reason.startswith("HTTP 404 for ")


@pytest.mark.integration
@pytest.mark.browser
@pytest.mark.parametrize("page", ["category", "article"])
@pytest.mark.parametrize("variant", ["declared", "chunked"])
def test_the_browser_reads_no_page_over_the_size_cap(hc, http, chromium, page, variant):
    """Chromium took some 20 s to lay out a 64 MiB page, and reading it back took 250 MB here."""
    hc.centre.set_mode(html="javascript")
    path = f"/hc/en-us/categories/{CATEGORY}" if page == "category" else "/hc/en-us/articles/"
    hc.server.inject(Fault(path, "oversized", times=0, variant=variant))
    started = time.monotonic()
    with pytest.raises(AnnouncementsUnavailable) as caught:
        _client(http, browser=chromium, browser_timeout=10, paths=("browser",)).fetch(limit=3)
    # Refused on the size, not after waiting out the 10 s timeout (nor the 20 s a 64 MiB layout takes).
    assert time.monotonic() - started < 10
    assert "33,554,432" in caught.value.failures[-1].reason and "limit" in caught.value.failures[-1].reason


@pytest.mark.integration
@pytest.mark.browser
def test_a_page_its_script_makes_too_large_is_measured_in_the_page_and_never_read_back(hc, chromium):
    page = ('<html><head><title>Help</title></head><body><script>'
            'document.body.setAttribute("data-x", "x".repeat(2000000))</script></body></html>')
    hc.server.route("GET", r"/hc/en-us/categories/big", lambda req, m: Response(body=page, content_type="text/html"))
    with HttpSource("zendesk-small", hc.url, timeout=5.0, retries=0, rate_limit=1000.0, max_bytes=1_000_000) as http:
        with pytest.raises(AnnouncementsUnavailable) as caught:
            CoinSpotAnnouncements(http, "big", CHROMIUM, browser=chromium, browser_timeout=1,
                                  paths=("browser",)).fetch(limit=3)
    reason = caught.value.failures[0].reason
    assert "a page of 2,0" in reason and "characters is over the 1,000,000-character limit" in reason


@pytest.mark.integration
@pytest.mark.browser
def test_the_browser_path_ends_with_its_clients_budget(hc, chromium):
    """A sensor tick gives its client a budget: the browser's pages are read within it too."""
    hc.centre.set_mode(api="refused", html="javascript")
    hc.server.inject(Fault("/hc/en-us/articles/", "drip", times=0, seconds=0.05))
    with HttpSource("zendesk-budget", hc.url, timeout=5.0, retries=0, rate_limit=1000.0, budget=3.0) as http:
        started = time.monotonic()
        with pytest.raises(AnnouncementsUnavailable) as caught:
            _client(http, browser=chromium, browser_timeout=30).fetch(limit=3)
        assert time.monotonic() - started < 4.5
    assert "budget" in caught.value.failures[-1].reason
