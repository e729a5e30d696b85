"""The Human ledger's sources: news feeds, CryptoPanic, Reddit (omc_pipelines/sources/{news,cryptopanic,reddit}.py)
and their sandbox (omc_pipelines/sandbox/human.py: news_feeds.py, cryptopanic.py, reddit.py).

Parsers first, on small hand-made payloads; then the clients against the sandbox,
started per test: paging, refusals, "not configured" before any request, token
refresh, and secrets that never show in an error.
"""

from __future__ import annotations

import base64
import json
import traceback
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from omc_pipelines import settings
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.cryptopanic import CRYPTOPANIC_TOKEN
from omc_pipelines.sandbox.human import HumanSandbox
from omc_pipelines.sandbox.news_feeds import FEEDS
from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USERNAME
from omc_pipelines.sandbox.server import SandboxServer, serve
from omc_pipelines.sources import http as http_layer
from omc_pipelines.sources.cryptopanic import CryptoPanicClient, CryptoPanicRefused, parse_post, parse_posts
from omc_pipelines.sources.http import (
    HttpSource,
    SourceError,
    SourcePayloadError,
    SourceRefused,
    SourceUnavailable,
)
from omc_pipelines.sources.html_text import html_to_text
from omc_pipelines.sources.human import HumanItem, NotConfigured
from omc_pipelines.sources.news import NewsFeeds, canonical_link, parse_date, parse_feed
from omc_pipelines.sources.reddit import (
    REFUSED,
    RedditClient,
    RedditRefused,
    parse_listing,
    parse_post as parse_reddit_post,
    user_agent,
)

FAST = {"retries": 0, "backoff": 0.01, "rate_limit": 1000.0, "timeout": 5.0}
FETCHED = datetime(2025, 6, 10, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def fresh_rate_limits(monkeypatch):
    """Every test its own rate budgets: a slow budget left by another test must not slow these."""
    monkeypatch.setattr(http_layer, "_limiters", {})


def _all_text(exc: BaseException) -> str:
    """Everything an exception could show: message, repr, attributes, the formatted traceback,
    and the same of every exception chained to it (suppressed or not), with any request they
    hold (an httpx error's request has the full URL and headers)."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    chain: list[BaseException | None] = [exc]
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current)] + [repr(value) for value in vars(current).values()]
        request = getattr(current, "_request", None)
        if isinstance(request, httpx.Request):
            parts += [str(request.url), repr(dict(request.headers)), request.content.decode(errors="replace")]
        chain += [current.__context__, current.__cause__]
    return "\n".join(parts)


# --- news: parsing ----------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Feed</title><link>https://news.test/</link>
<lastBuildDate>Tue, 10 Jun 2025 09:00:00 +0000</lastBuildDate>
<item>
  <title><![CDATA[Bitcoin <b>rallies</b> &amp; ether follows]]></title>
  <link>https://news.test/a?utm_source=rss&amp;utm_medium=feed&amp;id=7</link>
  <dc:creator><![CDATA[Jane Doe]]></dc:creator>
  <category><![CDATA[Solana]]></category>
  <pubDate>Tue, 10 Jun 2025 08:30:00 -0400</pubDate>
  <description><![CDATA[<p>Spot <strong>BTC</strong> funds &amp; more&nbsp;inflows.</p><script>var x = "hidden";</script>
  <style>.a{color:red}</style><img src="/chart.png"/><p>Second <a href="/x">paragraph</a>.</p>]]></description>
</item>
<item>
  <title>Escaped markup</title>
  <link>https://news.test/b</link>
  <pubDate>Tue, 10 Jun 2025 07:15:00</pubDate>
  <description>&lt;p&gt;Dogecoin &lt;em&gt;slumps&lt;/em&gt; &amp;amp; recovers&lt;/p&gt;</description>
</item>
<item>
  <title>No date of its own</title>
  <link>https://news.test/c</link>
  <description></description>
  <content:encoded><![CDATA[<p>Only the <b>full</b> content has text.</p>]]></content:encoded>
</item>
<item>
  <title>Garbage date</title>
  <guid isPermaLink="true">https://news.test/d</guid>
  <pubDate>sometime last week</pubDate>
</item>
<item><title>Nothing to key it by</title><description>lost</description></item>
<item>
  <title>Duplicate of a</title>
  <link>https://news.test/a?id=7&amp;utm_campaign=x</link>
  <pubDate>Tue, 10 Jun 2025 06:00:00 +0000</pubDate>
</item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom feed</title><id>https://atom.test/feed</id><updated>2025-06-10T10:00:00Z</updated>
  <entry>
    <title type="html">Ethereum &lt;i&gt;upgrade&lt;/i&gt; ships</title>
    <link rel="alternate" href="https://atom.test/1"/><id>https://atom.test/?p=1</id>
    <published>2025-06-10T09:35:00+02:00</published>
    <author><name>Sam</name></author>
    <summary type="html">&lt;p&gt;Validators &lt;b&gt;upgrade&lt;/b&gt;.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>Only updated</title><link rel="alternate" href="https://atom.test/2"/><id>https://atom.test/?p=2</id>
    <updated>2025-06-09T20:00:00Z</updated>
  </entry>
</feed>"""


def _by_title(items: list[HumanItem]) -> dict[str, HumanItem]:
    return {item.title: item for item in items}


def test_rss_entries_are_plain_text_keyed_by_link():
    items = parse_feed(RSS, "testfeed", "https://news.test/feed", fetched_at=FETCHED).items
    first = items[0]
    assert first.source == "news:testfeed" and first.channel == "testfeed" and first.kind == "article"
    assert first.title == "Bitcoin rallies & ether follows"
    assert first.text == "Spot BTC funds & more inflows.\nSecond paragraph."
    assert "hidden" not in first.text and "color" not in first.text and "<" not in first.text
    assert first.external_id == "https://news.test/a?id=7"  # utm_* gone: the key survives campaign tags
    assert first.url.startswith("https://news.test/a?")
    assert first.author == "Jane Doe"
    # title and text name BTC and ETH; the category names Solana
    assert first.currencies == ("BTC", "ETH", "SOL")
    assert first.engagement == {} and not first.undated
    escaped = _by_title(items)["Escaped markup"]
    assert escaped.text == "Dogecoin slumps & recovers" and escaped.currencies == ("DOGE",)
    assert escaped.author is None


def test_rss_dates_every_way_feeds_write_them():
    items = _by_title(parse_feed(RSS, "testfeed", "https://news.test/feed", fetched_at=FETCHED).items)
    assert items["Bitcoin rallies & ether follows"].published_at == datetime(2025, 6, 10, 12, 30, tzinfo=timezone.utc)
    # RFC 822 without a zone reads as UTC
    assert items["Escaped markup"].published_at == datetime(2025, 6, 10, 7, 15, tzinfo=timezone.utc)
    # no date, or one that does not read: the feed's lastBuildDate
    for title in ("No date of its own", "Garbage date"):
        assert items[title].published_at == datetime(2025, 6, 10, 9, 0, tzinfo=timezone.utc)
        assert not items[title].undated
    assert all(item.published_at.tzinfo is timezone.utc for item in items.values())


def test_rss_fallbacks_content_guid_and_duplicates():
    page = parse_feed(RSS, "testfeed", "https://news.test/feed", fetched_at=FETCHED)
    items = page.items
    by_title = _by_title(items)
    assert by_title["No date of its own"].text == "Only the full content has text."
    assert by_title["Garbage date"].external_id == "https://news.test/d" == by_title["Garbage date"].url
    assert "Nothing to key it by" not in by_title  # no link, no guid: cannot be upserted
    assert "Duplicate of a" not in by_title  # same link once utm_* is gone: the first entry wins
    assert len(items) == len({i.external_id for i in items}) == 4
    assert page.dropped == {"no link or guid": 1, "same link or guid as an earlier entry": 1}


def test_an_entry_without_a_link_is_keyed_by_its_guid_and_what_is_dropped_is_counted():
    body = b"""<rss version="2.0"><channel><title>x</title><lastBuildDate>Tue, 10 Jun 2025 09:00:00 +0000</lastBuildDate>
    <item><title>URL guid</title><guid isPermaLink="false">https://n.test/g?utm_source=rss</guid></item>
    <item><title>Opaque guid</title><guid isPermaLink="false">n-test-4711</guid></item>
    <item><title>Blank link</title><link>  </link><description>Bitcoin soars</description></item>
    <item><title>Only an enclosure</title><enclosure url="https://n.test/a.mp3" type="audio/mpeg" length="1"/></item>
    <item><title>Linked</title><link>https://n.test/l</link></item>
    <item><title>Linked again</title><link>https://n.test/l#top</link></item>
    </channel></rss>"""
    page = parse_feed(body, "keys", "https://n.test/feed", fetched_at=FETCHED)
    items = _by_title(page.items)
    assert list(items) == ["URL guid", "Opaque guid", "Linked"]
    # a guid that is a URL stands in for the link, as key and as url
    assert (items["URL guid"].external_id, items["URL guid"].url) == ("https://n.test/g", "https://n.test/g?utm_source=rss")
    # a guid that is not one still keys the entry (RSS makes it unique), but is no url
    assert (items["Opaque guid"].external_id, items["Opaque guid"].url) == ("n-test-4711", "")
    assert page.dropped == {"no link or guid": 2, "same link or guid as an earlier entry": 1}


def test_an_atom_entry_keyed_by_a_urn_has_no_url():
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:feed</id>
    <updated>2025-06-10T10:00:00Z</updated>
    <entry><title>Urn only</title><id>urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6</id></entry></feed>"""
    page = parse_feed(body, "atomic", "https://a.test/feed", fetched_at=FETCHED)
    [item] = page.items
    assert (item.external_id, item.url) == ("urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6", "")
    assert page.dropped == {}


def test_entry_and_feed_without_any_date_use_the_fetch_time_and_say_so():
    body = b"""<rss version="2.0"><channel><title>x</title><item><title>t</title>
    <link>https://n.test/1</link></item></channel></rss>"""
    [item] = parse_feed(body, "bare", "https://n.test/feed", fetched_at=FETCHED).items
    assert item.published_at == FETCHED and item.undated


def test_atom_entries():
    first, second = parse_feed(ATOM, "atomic", "https://atom.test/feed", fetched_at=FETCHED).items
    assert first.title == "Ethereum upgrade ships" and first.text == "Validators upgrade."
    assert first.external_id == "https://atom.test/1" and first.author == "Sam"
    assert first.published_at == datetime(2025, 6, 10, 7, 35, tzinfo=timezone.utc)
    assert first.currencies == ("ETH",)
    assert second.published_at == datetime(2025, 6, 9, 20, 0, tzinfo=timezone.utc)  # updated when not published
    assert second.text == "" and second.currencies == ()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Tue, 10 Jun 2025 08:30:00 +0000", datetime(2025, 6, 10, 8, 30)),
        ("Tue, 10 Jun 2025 08:30:00 GMT", datetime(2025, 6, 10, 8, 30)),
        ("Tue, 10 Jun 2025 08:30:00 -0400", datetime(2025, 6, 10, 12, 30)),
        ("Tue, 10 Jun 2025 08:30:00 EDT", datetime(2025, 6, 10, 12, 30)),
        ("Tue, 10 Jun 2025 18:30:00 AEST", datetime(2025, 6, 10, 8, 30)),
        ("Tue, 10 Jun 2025 08:30:00", datetime(2025, 6, 10, 8, 30)),
        ("10 Jun 2025 08:30 +0200", datetime(2025, 6, 10, 6, 30)),
        ("2025-06-10T08:30:00Z", datetime(2025, 6, 10, 8, 30)),
        ("2025-06-10T10:30:00+02:00", datetime(2025, 6, 10, 8, 30)),
        ("2025-06-10 08:30:00", datetime(2025, 6, 10, 8, 30)),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(written, expected):
    assert parse_date(written) == (expected.replace(tzinfo=timezone.utc) if expected else None)


@pytest.mark.parametrize(
    "body",
    [b"<html><body><h1>Just a moment...</h1></body></html>", b'{"status": "ok"}', b"", b"<rss><channel><item>"],
)
def test_a_body_that_is_not_a_feed_is_a_payload_error_naming_the_feed(body):
    with pytest.raises(SourcePayloadError) as caught:
        parse_feed(body, "brokenfeed", "https://b.test/feed")
    assert caught.value.source == "news:brokenfeed"
    assert "brokenfeed" in str(caught.value) and "https://b.test/feed" in str(caught.value)


def test_a_flawed_feed_with_entries_is_still_read_and_an_empty_one_is_empty():
    flawed = b"""<rss version="2.0"><channel><title>x</title><item><title>Solana&nbsp;rallies</title>
    <link>https://f.test/1</link></item></channel></rss>"""  # &nbsp; is HTML's, not XML's: not well-formed
    [item] = parse_feed(flawed, "flawed", "https://f.test/feed", fetched_at=FETCHED).items
    assert item.title == "Solana rallies" and item.currencies == ("SOL",)
    empty = parse_feed(b'<rss version="2.0"><channel><title>x</title></channel></rss>', "empty", "https://e.test/")
    assert (empty.items, empty.dropped) == ([], {})


@pytest.mark.parametrize("cut", [len(RSS) // 2, len(RSS) - len(b"</rss>"), len(RSS) - 3, len(ATOM) // 2])
def test_a_feed_cut_short_is_a_payload_error_not_a_shorter_feed(cut):
    body = (ATOM if cut == len(ATOM) // 2 else RSS)[:cut]
    with pytest.raises(SourcePayloadError) as caught:
        parse_feed(body, "halffeed", "https://h.test/feed", fetched_at=FETCHED)
    assert caught.value.source == "news:halffeed" and "cut short" in caught.value.reason
    assert caught.value.url == "https://h.test/feed"


@pytest.mark.parametrize("tail", [
    b"\n", b"<!-- generated in 0.2 s by a cache plugin -->\n", b"<?cache done?>\r\n",
])
def test_a_whole_feed_with_a_flaw_or_a_trailing_comment_is_read(tail):
    flawed = RSS.replace(b"<title>Feed</title>", b"<title>Feed&nbsp;</title>")  # not XML: feedparser's loose read
    assert len(parse_feed(flawed + tail, "f", "https://f.test/feed", fetched_at=FETCHED).items) == 4
    utf16 = flawed.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16") + tail.decode().encode("utf-16-le")
    assert len(parse_feed(utf16, "f", "https://f.test/feed", fetched_at=FETCHED).items) == 4


def test_html_to_text_and_canonical_link():
    assert html_to_text("<div>a<br>b</div><ul><li>c</li></ul>&amp;&lt;x&gt;") == "a\nb\nc\n&<x>"
    assert html_to_text(None) == "" and html_to_text("plain & simple") == "plain & simple"
    assert canonical_link(" https://x.test/p?utm_source=a&b=2#frag ") == "https://x.test/p?b=2"


# --- CryptoPanic: parsing ---------------------------------------------------------------------

POST = {
    "id": 22741903, "slug": "Bitcoin-ETFs", "title": "Bitcoin ETFs log biggest inflow day",
    "description": "<p>Spot funds took in <b>$386M</b>.</p>", "published_at": "2025-06-10T09:52:17Z",
    "created_at": "2025-06-10T09:52:58.137Z", "kind": "news",
    "source": {"title": "CoinDesk", "region": "en", "domain": "coindesk.com", "type": "feed"},
    "original_url": "https://coindesk.com/a", "url": "https://cryptopanic.com/news/22741903/Bitcoin-ETFs",
    "currencies": [{"code": "BTC", "title": "Bitcoin", "slug": "bitcoin", "url": "https://cryptopanic.com/news/bitcoin/"},
                   {"code": "eth", "title": "Ethereum", "slug": "ethereum", "url": "https://cryptopanic.com/news/ethereum/"}],
    "votes": {"positive": 14, "negative": 1, "important": 3, "liked": 9, "disliked": 0, "lol": 0, "toxic": 0,
              "saved": 2, "comments": 1},
}


def test_cryptopanic_post():
    item = parse_post(POST)
    assert (item.source, item.external_id, item.kind, item.channel, item.author) == (
        "cryptopanic", "22741903", "news", "coindesk.com", "CoinDesk")
    assert item.title == "Bitcoin ETFs log biggest inflow day" and item.text == "Spot funds took in $386M."
    assert item.url == "https://coindesk.com/a"
    assert item.published_at == datetime(2025, 6, 10, 9, 52, 17, tzinfo=timezone.utc)
    assert item.currencies == ("BTC", "ETH")  # the source's own tags, upper-cased
    assert item.engagement == POST["votes"]


def test_cryptopanic_post_with_optional_fields_missing():
    bare = {"title": "Solana and Cardano rally while dogecoin lags", "published_at": "2025-06-10T09:00:00Z"}
    item = parse_post(bare)
    assert item.currencies == ("SOL", "ADA", "DOGE")  # no tags: the coins the title names
    assert item.engagement == {} and item.text == "" and item.url == "" and item.author is None
    assert item.external_id.startswith("sha1:") and item.external_id == parse_post(dict(bare)).external_id
    assert parse_post({**bare, "slug": "Solana-rally"}).external_id == "slug:Solana-rally"
    assert parse_post({**bare, "currencies": []}).currencies == ()  # tagged with nothing is not "missing"
    assert parse_post({**bare, "instruments": [{"code": "XRP"}]}).currencies == ("XRP",)
    assert parse_post({**bare, "url": "https://cryptopanic.com/news/1/x"}).url == "https://cryptopanic.com/news/1/x"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"published_at": None}, "published_at"),
        ({"published_at": "yesterday"}, "published_at"),
        ({"title": None}, "title"),
        ({"votes": {"positive": "many"}}, "votes.positive"),
        ({"currencies": [{"title": "no code"}]}, "currencies[0]"),
        ({"id": -22741903}, "id"),  # CryptoPanic's ids are positive: a negative or zero one is no key
        ({"id": 0}, "id"),
        ({"id": "0"}, "id"),
        ({"id": "abc"}, "id"),
        ({"votes": {"positive": -14}}, "votes.positive"),  # a count
    ],
)
def test_cryptopanic_malformed_post_names_the_field(change, field):
    post = {**POST, **change}
    post = {k: v for k, v in post.items() if v is not None}
    with pytest.raises(SourcePayloadError) as caught:
        parse_posts({"count": 1, "next": None, "results": [post]}, "https://cp.test/api")
    assert "results[0]" in str(caught.value) and field in str(caught.value)


def test_cryptopanic_page_next_link_loses_the_token():
    page = parse_posts({"count": 40, "next": "https://cryptopanic.com/api/developer/v2/posts/?auth_token=s3cret&page=2",
                        "previous": None, "results": [POST]})
    assert page.count == 40 and len(page.items) == 1
    assert "s3cret" not in page.next and "page=2" in page.next and "s3cret" not in repr(page)
    with pytest.raises(SourcePayloadError):
        parse_posts({"results": "nope"})


# --- Reddit: parsing --------------------------------------------------------------------------


def _t3(**data) -> dict:
    base = {"id": "1labc", "name": "t3_1labc", "subreddit": "CryptoCurrency", "title": "ETH to the moon",
            "selftext": "Feeling bullish", "author": "alice", "created_utc": 1749548772.0, "score": 312,
            "upvote_ratio": 0.93, "num_comments": 188, "permalink": "/r/CryptoCurrency/comments/1labc/eth/",
            "url": "https://www.reddit.com/r/CryptoCurrency/comments/1labc/eth/", "stickied": False, "is_self": True}
    base.update(data)
    return {"kind": "t3", "data": {k: v for k, v in base.items() if v is not ...}}


def test_reddit_listing():
    listing = {"kind": "Listing", "data": {"after": "t3_1lzzz", "children": [
        _t3(),
        {"kind": "t1", "data": {"id": "comment"}},  # not a post: skipped
        _t3(id="1ldel", name="t3_1ldel", author="[deleted]", selftext="[removed]", stickied=True, title="Daily thread"),
    ]}}
    page = parse_listing(listing)
    assert page.after == "t3_1lzzz" and len(page.items) == 2
    post, gone = page.items
    assert (post.source, post.external_id, post.channel, post.kind) == ("reddit", "t3_1labc", "CryptoCurrency", "self")
    assert post.url == "https://www.reddit.com/r/CryptoCurrency/comments/1labc/eth/"
    assert post.published_at == datetime.fromtimestamp(1749548772, tz=timezone.utc)
    assert post.engagement == {"score": 312, "num_comments": 188, "upvote_ratio_pct": 93}
    assert post.currencies == ("ETH",) and post.author == "alice" and not post.stickied
    assert gone.author is None and gone.text == "" and gone.stickied


def test_reddit_post_with_optional_fields_missing():
    item = parse_reddit_post({"id": "1lmin", "title": "Just bought my first whole coin", "created_utc": 1749548772,
                              "subreddit": "Bitcoin"})
    assert item.external_id == "t3_1lmin" and item.text == "" and item.author is None
    assert item.engagement == {}
    assert item.currencies == ("BTC",)  # the text names no coin: the subreddit's coin
    link = parse_reddit_post(_t3(selftext="", is_self=False, url="https://i.redd.it/x.jpeg", subreddit="CryptoCurrency",
                                 title="Look at this chart")["data"])
    assert link.kind == "link" and link.text == "https://i.redd.it/x.jpeg" and link.currencies == ()


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({"kind": "t3", "data": {}}, "Listing"),
        ({"kind": "Listing", "data": {"after": None}}, "children"),
        ({"kind": "Listing", "data": {"children": [_t3(id=...)]}}, "children[0].data has no 'id'"),
        ({"kind": "Listing", "data": {"children": [_t3(created_utc="soon")]}}, "children[0].data.created_utc"),
        ({"kind": "Listing", "data": {"children": [_t3(upvote_ratio=1.7)]}}, "upvote_ratio"),
        # Dated before Reddit began (June 2005), 1970 included, or in the future.
        ({"kind": "Listing", "data": {"children": [_t3(created_utc=0)]}}, "children[0].data.created_utc is 0"),
        ({"kind": "Listing", "data": {"children": [_t3(), _t3(created_utc=1104537600)]}}, "children[1].data.created_utc"),
        ({"kind": "Listing", "data": {"children": [_t3(created_utc=-1749548772.0)]}}, "children[0].data.created_utc"),
        ({"kind": "Listing", "data": {"children": [_t3(created_utc=4102444800)]}}, "children[0].data.created_utc"),
    ],
)
def test_reddit_malformed_listing_names_the_field(payload, complaint):
    with pytest.raises(SourcePayloadError) as caught:
        parse_listing(payload, "https://oauth.test/r/x/new.json")
    assert complaint in str(caught.value)


def test_reddit_posts_from_reddits_first_day_to_a_clock_a_little_behind_are_read():
    now = datetime.now(timezone.utc)
    first_day = datetime(2005, 6, 23, 12, tzinfo=timezone.utc)
    for when in (first_day, now + timedelta(minutes=4)):
        assert parse_reddit_post(_t3(created_utc=when.timestamp())["data"]).published_at == when
    with pytest.raises(SourcePayloadError):
        parse_reddit_post(_t3(created_utc=(now + timedelta(minutes=10)).timestamp())["data"])


def test_reddit_user_agent_has_the_required_shape():
    assert user_agent("omc_bot") == "python:omc-pipelines:0.1.0 (by /u/omc_bot)"
    assert user_agent("/u/omc_bot") == "python:omc-pipelines:0.1.0 (by /u/omc_bot)"
    assert user_agent(None) == "python:omc-pipelines:0.1.0"


# --- the sandbox ------------------------------------------------------------------------------


@pytest.fixture
def box():
    human = HumanSandbox(page_size=10)
    with serve(human) as server:
        yield server, human


def _cryptopanic(server: SandboxServer, token: str | None = CRYPTOPANIC_TOKEN, **overrides) -> CryptoPanicClient:
    return CryptoPanicClient.create(server.url, token, **{**FAST, **overrides})


def _reddit(server: SandboxServer, client_id=REDDIT_CLIENT_ID, secret=REDDIT_CLIENT_SECRET, **overrides) -> RedditClient:
    return RedditClient.create(server.url, server.url, client_id, secret, REDDIT_USERNAME, **{**FAST, **overrides})


@pytest.mark.integration
def test_env_points_settings_at_the_sandbox(box):
    server, human = box
    loaded = settings.load(human.env(server.url))
    assert loaded.news_feeds == {name: f"{server.url}/feeds/{name}" for name in FEEDS}
    assert (loaded.cryptopanic_url, loaded.reddit_url, loaded.reddit_auth_url) == (server.url,) * 3
    assert tuple(loaded.secret(name) for name in ("cryptopanic_token", "reddit_client_id", "reddit_client_secret")) == (
        CRYPTOPANIC_TOKEN, REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET)
    bare = settings.load(human.env(server.url, credentials=False))
    assert bare.cryptopanic_token is None and bare.reddit_client_secret is None


@pytest.mark.integration
def test_news_feeds_from_the_sandbox_are_fresh_and_one_bad_feed_loses_nothing(box):
    server, human = box
    feeds = {**settings.load(human.env(server.url)).news_feeds,
             "missing": f"{server.url}/feeds/nosuchfeed", "notafeed": f"{server.url}/_sandbox/human/state"}
    now = datetime.now(timezone.utc)
    with NewsFeeds(feeds, **FAST) as news:
        result = news.fetch_all()
    assert set(result.items) == set(FEEDS) and result.dropped == {}  # every recorded entry has a link
    assert isinstance(result.errors["missing"], SourceRefused) and result.errors["missing"].status == 404
    assert isinstance(result.errors["notafeed"], SourcePayloadError) and "notafeed" in str(result.errors["notafeed"])
    for name in FEEDS:
        items = result.items[name]
        assert len(items) >= 4 and all(i.source == f"news:{name}" for i in items)
        newest = max(i.published_at for i in items)
        # The sandbox dates the newest entry at the start of the hour (to the minute, as some feeds write).
        assert now - timedelta(hours=1, minutes=2) <= newest <= now + timedelta(seconds=5)
        assert all(i.published_at <= now + timedelta(seconds=5) for i in items)
        assert all("<" not in i.text and "<" not in i.title for i in items)
    # the odd date (no zone) still reads, as UTC, between its neighbours
    newsbtc = result.items["newsbtc"]
    xrp = next(i for i in newsbtc if i.title.startswith("XRP Price Dips"))
    assert newsbtc[2].published_at < xrp.published_at < newsbtc[0].published_at
    scripts = next(i for i in result.items["coindesk"] if "Exploit" in i.title)
    assert "ignore me" not in scripts.text and "Server racks" in scripts.text
    assert scripts.currencies == ("ETH", "SOL")


@pytest.mark.integration
def test_published_news_shows_on_the_next_fetch(box):
    server, human = box
    reply = httpx.post(f"{server.url}/_sandbox/human/news", json={
        "feed": "decrypt", "title": "Solana ETF <b>approved</b>", "description": "<p>The SEC said <i>yes</i>.</p>"})
    assert reply.status_code == 200
    link = reply.json()["link"]
    human.news.publish("cointelegraph", "Bitcoin dips", description="<p>Down 2%</p>")
    with NewsFeeds({"decrypt": f"{server.url}/feeds/decrypt", "cointelegraph": f"{server.url}/feeds/cointelegraph"},
                   **FAST) as news:
        first = news.fetch("decrypt").items[0]
        second = news.fetch("cointelegraph").items[0]
    assert (first.external_id, first.title, first.text) == (link, "Solana ETF approved", "The SEC said yes.")
    assert first.currencies == ("SOL",)
    assert datetime.now(timezone.utc) - first.published_at < timedelta(minutes=1)
    assert (second.title, second.text, second.currencies) == ("Bitcoin dips", "Down 2%", ("BTC",))


@pytest.mark.integration
def test_cryptopanic_pages_through_next_links(box):
    server, human = box
    with _cryptopanic(server) as client:
        pages = list(client.pages(max_pages=5))
        limited = client.posts(max_pages=2)
    assert [len(p.items) for p in pages] == [10, 10, 5]
    assert pages[0].count == 25 and pages[-1].next is None
    ids = [i.external_id for p in pages for i in p.items]
    assert len(ids) == len(set(ids)) == 25
    times = [i.published_at for p in pages for i in p.items]
    assert times == sorted(times, reverse=True)
    assert datetime.now(timezone.utc) - times[0] < timedelta(hours=1)
    assert len(limited) == 20
    # posts without currencies: the coins their titles name
    by_title = {i.title: i for p in pages for i in p.items}
    assert by_title["Why I'm bullish on ETH into Q3 (thread)"].currencies == ("ETH",)
    assert by_title["Weekly market wrap: BTC range-bound, alts bleed (video)"].currencies == ("BTC",)
    assert by_title["Weekly market wrap: BTC range-bound, alts bleed (video)"].text == ""
    asked = server.requests_to("/api/developer/v2/posts")
    assert len(asked) == 5 and all(r["status"] == 200 for r in asked)


@pytest.mark.integration
def test_cryptopanic_filters_and_since(box):
    server, human = box
    with _cryptopanic(server) as client:
        btc = client.posts(currencies=["btc"], max_pages=3)
        media = client.posts(kind="media", max_pages=3)
        everything = client.posts(max_pages=3)
        cutoff = everything[12].published_at
        recent = client.posts(max_pages=3, since=cutoff)
    assert btc and all("BTC" in i.currencies for i in btc)
    assert media and all(i.kind == "media" for i in media)
    assert [i.external_id for i in recent] == [i.external_id for i in everything[:13]]
    with pytest.raises(ValueError):
        _cryptopanic(server).posts(filter="moonshot")


@pytest.mark.integration
def test_cryptopanic_published_post_comes_first(box):
    server, human = box
    reply = httpx.post(f"{server.url}/_sandbox/human/cryptopanic", json={
        "title": "Pepe listed on a major exchange", "votes": {"positive": 5}, "currencies": ["PEPE"]})
    assert reply.status_code == 200
    with _cryptopanic(server) as client:
        first = client.posts()[0]
    assert first.external_id == str(reply.json()["post"]["id"])
    assert first.currencies == ("PEPE",) and first.engagement["positive"] == 5


@pytest.mark.integration
def test_cryptopanic_without_a_token_sends_nothing(box):
    server, _ = box
    for token in (None, ""):
        with pytest.raises(NotConfigured) as caught:
            _cryptopanic(server, token)
        assert caught.value.source == "cryptopanic" and settings.CRYPTOPANIC_TOKEN in str(caught.value)
    http = HttpSource("cryptopanic", server.url, secret_params=("auth_token",), **FAST)
    with pytest.raises(NotConfigured):
        CryptoPanicClient(http, None)
    with pytest.raises(ValueError):  # a source that would show the token in its errors is refused
        CryptoPanicClient(HttpSource("cryptopanic", server.url, **FAST), CRYPTOPANIC_TOKEN)
    assert server.requests == []


@pytest.mark.integration
def test_cryptopanic_bad_token_is_a_clear_refusal_that_does_not_show_the_token(box):
    server, _ = box
    wrong = "wrong-token-7d1f0c"
    with _cryptopanic(server, wrong) as client, pytest.raises(CryptoPanicRefused) as caught:
        client.posts()
    refusal = caught.value
    assert isinstance(refusal, SourceRefused) and refusal.status == 403
    assert "CryptoPanic refused" in str(refusal) and "token" in str(refusal) and "plan" in str(refusal)
    assert wrong not in _all_text(refusal) and "auth_token=%2A%2A%2A" in refusal.url
    assert wrong not in repr(client)
    sandbox_answer = httpx.get(f"{server.url}/api/developer/v2/posts/", params={"auth_token": wrong})
    assert sandbox_answer.status_code == 403 and sandbox_answer.json() == {"status": "Incomplete", "info": "Token not found"}


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["403", "500", "malformed", "disconnect", "429"])
def test_cryptopanic_token_never_in_an_error(box, fault):
    server, _ = box
    # the fault hits the second page, whose request came from a next link carrying the token
    server.inject(Fault("/api/developer/v2/posts", fault, times=0))
    with _cryptopanic(server) as client, pytest.raises(SourceError) as caught:
        client.posts()
    assert CRYPTOPANIC_TOKEN not in _all_text(caught.value)
    assert CRYPTOPANIC_TOKEN not in repr(client)
    server.clear_faults()
    with _cryptopanic(server) as client:
        pages = client.pages(max_pages=3)
        next(pages)
        server.inject(Fault("/api/developer/v2/posts", fault, times=0))
        with pytest.raises(SourceError) as caught:
            next(pages)
    assert CRYPTOPANIC_TOKEN not in _all_text(caught.value) and "page=2" in caught.value.url


def test_cryptopanic_does_not_follow_a_next_link_to_another_host():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"count": 2, "results": [POST],
                                         "next": "https://elsewhere.test/api/developer/v2/posts/?page=2"})

    client = CryptoPanicClient.create("https://cryptopanic.test", "tok-123", transport=httpx.MockTransport(answer), **FAST)
    with client, pytest.raises(SourcePayloadError) as caught:
        client.posts(max_pages=3)
    assert "another host" in str(caught.value) and len(seen) == 1
    assert "tok-123" not in _all_text(caught.value)


@pytest.mark.integration
def test_reddit_without_credentials_sends_nothing(box):
    server, _ = box
    with pytest.raises(NotConfigured) as caught:
        _reddit(server, None, None)
    assert caught.value.missing == (settings.REDDIT_CLIENT_ID, settings.REDDIT_CLIENT_SECRET)
    with pytest.raises(NotConfigured) as caught:
        _reddit(server, REDDIT_CLIENT_ID, "")
    assert caught.value.missing == (settings.REDDIT_CLIENT_SECRET,)
    with pytest.raises(NotConfigured):
        RedditClient(HttpSource("reddit", server.url, **FAST), HttpSource("reddit", server.url, **FAST), None,
                     REDDIT_CLIENT_SECRET)
    assert server.requests == []


@pytest.mark.integration
def test_reddit_lists_new_posts_with_one_cached_token_and_a_compliant_agent(box):
    server, human = box
    with _reddit(server) as client:
        posts = {sub: client.new_posts(sub) for sub in ("CryptoCurrency", "Bitcoin", "ethereum", "solana")}
        with_sticky = client.new_posts("Bitcoin", include_stickied=True)
        assert client.token_requests == 1
    assert human.reddit.tokens_issued == 1
    assert set(human.reddit.user_agents) == {f"python:omc-pipelines:0.1.0 (by /u/{REDDIT_USERNAME})"}
    now = datetime.now(timezone.utc)
    for sub, items in posts.items():
        assert items and all(i.source == "reddit" and i.channel == sub and not i.stickied for i in items)
        assert all(i.external_id.startswith("t3_") for i in items)
        assert [i.published_at for i in items] == sorted((i.published_at for i in items), reverse=True)
    # The sandbox moves all subreddits by one shift so that the newest post of them all falls at
    # the start of the current UTC hour; each subreddit's own newest may be older than an hour.
    newest = max(i.published_at for items in [*posts.values(), with_sticky] for i in items)
    assert (newest.minute, newest.second) == (0, 0) and now - timedelta(hours=1) < newest <= now
    assert len(with_sticky) == len(posts["Bitcoin"]) + 1 and any(i.stickied for i in with_sticky)
    deleted = next(i for i in posts["CryptoCurrency"] if "rug pull" in i.title)
    assert deleted.author is None and deleted.engagement["upvote_ratio_pct"] == 95
    listing = server.requests_to("/r/")
    assert len(listing) == 5


@pytest.mark.integration
def test_reddit_pages_with_after(box):
    server, human = box
    with _reddit(server) as client:
        pages = list(client.pages("CryptoCurrency", limit=3, max_pages=5))
        capped = client.new_posts("CryptoCurrency", limit=3, max_pages=2, include_stickied=True)
    assert [len(p.items) for p in pages] == [3, 3, 2]
    names = [i.external_id for p in pages for i in p.items]
    assert len(names) == len(set(names)) == 8 and pages[-1].after is None
    assert len(capped) == 6


@pytest.mark.integration
def test_reddit_refreshes_a_revoked_token_once(box):
    server, human = box
    with _reddit(server) as client:
        client.new_posts("Bitcoin")
        assert httpx.post(f"{server.url}/_sandbox/human/reddit/revoke").status_code == 200
        human.reddit.publish("Bitcoin", "Fresh post after the revoke", selftext="Bitcoin is booming")
        posts = client.new_posts("Bitcoin")
        assert client.token_requests == 2
    assert posts[0].title == "Fresh post after the revoke"
    statuses = [r["status"] for r in server.requests_to("/r/Bitcoin")]
    assert statuses == [200, 401, 200]


@pytest.mark.integration
def test_reddit_403_says_access_needs_approval(box):
    server, human = box
    assert httpx.post(f"{server.url}/_sandbox/human/reddit/access", json={"approved": False}).status_code == 200
    with _reddit(server) as client, pytest.raises(RedditRefused) as caught:
        client.new_posts("solana")
    assert caught.value.status == 403 and str(caught.value).startswith(f"reddit: {REFUSED}")
    assert REDDIT_CLIENT_SECRET not in _all_text(caught.value)
    human.reddit.set_access(True)
    with _reddit(server) as client:
        assert client.new_posts("solana")


@pytest.mark.integration
def test_reddit_bad_credentials_never_show_the_secret(box):
    server, human = box
    wrong = "wrong-secret-0a9b8c"
    client = _reddit(server, secret=wrong)
    with client, pytest.raises(RedditRefused) as caught:
        client.new_posts("Bitcoin")
    assert caught.value.status == 401 and settings.REDDIT_CLIENT_SECRET in str(caught.value)
    for text in (_all_text(caught.value), repr(client)):
        assert wrong not in text and REDDIT_CLIENT_ID not in text
    assert server.requests_to("/r/") == []  # no listing asked without a token
    raw = httpx.post(f"{server.url}/api/v1/access_token", data={"grant_type": "client_credentials"},
                     auth=(REDDIT_CLIENT_ID, wrong))
    assert raw.status_code == 401


@pytest.mark.integration
@pytest.mark.parametrize("fault, tries", [("500", 4), ("disconnect", 4), ("malformed", 1), ("oversized", 1)])
def test_a_failing_token_request_is_retried_as_a_read_and_never_shows_the_secret(box, fault, tries):
    server, human = box
    server.inject(Fault("/api/v1/access_token", fault, times=0))
    with _reddit(server, retries=3) as client, pytest.raises(SourceError) as caught:
        client.new_posts("Bitcoin")
    assert isinstance(caught.value, (SourceUnavailable, SourcePayloadError))
    assert str(caught.value).startswith("reddit: ") and "/api/v1/access_token" in caught.value.url
    assert REDDIT_CLIENT_SECRET not in _all_text(caught.value)
    assert base64.b64encode(f"{REDDIT_CLIENT_ID}:{REDDIT_CLIENT_SECRET}".encode()).decode() not in _all_text(caught.value)
    # Asking for a token twice is harmless: a retry mends a brief fault; a payload error is not retried.
    assert len(server.requests_to("/api/v1/access_token")) == tries


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["429", "503", "disconnect", "stall"])
def test_a_brief_fault_on_the_token_request_is_ridden_out(box, fault):
    server, human = box
    server.inject(Fault("/api/v1/access_token", fault, times=2, retry_after=0, seconds=1))
    with _reddit(server, retries=2, timeout=0.3) as client:
        assert client.new_posts("Bitcoin")
        assert client.token_requests == 1
    assert [a["method"] for a in server.arrivals if a["path"] == "/api/v1/access_token"] == ["POST"] * 3


@pytest.mark.integration
def test_a_token_answer_is_capped_in_size_and_time(box):
    server, human = box
    server.inject(Fault("/api/v1/access_token", "oversized", times=1, variant="chunked"))
    with _reddit(server) as client, pytest.raises(SourcePayloadError) as caught:
        client.new_posts("Bitcoin")
    assert "33,554,432-byte limit" in caught.value.reason  # not read whole, as before the HTTP layer
    server.inject(Fault("/api/v1/access_token", "drip", times=0, seconds=0.05))
    started = datetime.now(timezone.utc)
    with _reddit(server, timeout=0.3) as client, pytest.raises(SourceUnavailable) as caught:
        client.new_posts("Bitcoin")
    # Each byte comes within the read timeout: the 0.9 s deadline ends it, where it once read on for seconds.
    assert datetime.now(timezone.utc) - started < timedelta(seconds=1.5)
    assert "took too long" in caught.value.reason


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["disconnect", "500", "malformed"])
def test_a_failed_listing_does_not_carry_the_bearer_token(box, fault):
    server, human = box
    server.inject(Fault("/r/", fault, times=0))
    with _reddit(server) as client, pytest.raises(SourceError) as caught:
        client.new_posts("ethereum")
    [token] = human.reddit.tokens
    assert token not in _all_text(caught.value) and REDDIT_CLIENT_SECRET not in _all_text(caught.value)


@pytest.mark.integration
def test_reddit_sandbox_answers_in_reddits_shape(box):
    server, human = box
    assert httpx.get(f"{server.url}/r/Bitcoin/new.json").status_code == 401
    token = httpx.post(f"{server.url}/api/v1/access_token", data={"grant_type": "client_credentials"},
                       auth=(REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET)).json()
    assert set(token) == {"access_token", "token_type", "expires_in", "scope"}
    assert (token["token_type"], token["expires_in"], token["scope"]) == ("bearer", 86400, "*")
    headers = {"Authorization": f"bearer {token['access_token']}"}
    listing = httpx.get(f"{server.url}/r/ethereum/new.json", params={"limit": 2}, headers=headers).json()
    assert listing["kind"] == "Listing" and listing["data"]["after"] == listing["data"]["children"][-1]["data"]["name"]
    assert httpx.get(f"{server.url}/r/nosuchsub/new.json", headers=headers).status_code == 404
    posted = httpx.post(f"{server.url}/_sandbox/human/reddit",
                        json={"subreddit": "dogecoin", "title": "Much wow", "score": 42}).json()["post"]
    fresh = httpx.get(f"{server.url}/r/dogecoin/new.json", headers=headers).json()["data"]["children"]
    assert [c["data"]["name"] for c in fresh] == [posted["name"]]
    assert human.state()["reddit"]["dogecoin"] == 1
    assert json.loads(httpx.get(f"{server.url}/_sandbox/human/state").text)["reddit_tokens_issued"] == 1
