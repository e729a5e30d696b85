"""News sites' own RSS and Atom feeds: a pure parser and a client for many feeds.

:func:`parse_feed` takes the feed's bytes and returns a :class:`FeedPage`: :class:`HumanItem`
rows keyed by the entry's link, and a count of the entries left out, by reason;
:class:`NewsFeeds` fetches every configured feed over the shared
HTTP layer, one ``HttpSource`` per feed, and keeps going when one of them fails.

How entries are read:

- The bytes go to feedparser as a stream, never as a string: given a string, feedparser
  takes it for a URL or a file name and would fetch or open it.
- ``external_id`` is the entry's link (else its ``guid``/``id``), stripped of ``utm_*``
  tracking parameters and the fragment, so that the same article keeps its key when a
  feed changes its campaign tags. ``url`` is the link, else a guid that is an http(s)
  URL, else empty: a guid that is no URL (``n-4711``, ``urn:uuid:...``) still keys the
  entry, as RSS and Atom make it unique, but leads nowhere. An entry with neither link
  nor guid cannot be upserted, and one that repeats an earlier entry's key would
  overwrite it: both are left out and counted in ``FeedPage.dropped`` (``NO_KEY``,
  ``REPEATED``). A hash of the title and date was not taken for a key: entries without
  a date get the fetch time, so the same entry would land again on every fetch.
- Title and text are plain text: the description (``summary``) or, when it is empty, the
  full content (``content:encoded``), HTML removed with the standard library's parser
  after feedparser's own sanitiser (CDATA and escaped HTML both arrive as markup).
  Text is cut at ``MAX_TEXT_CHARS``.
- Dates, first that reads: the entry's ``published``, its ``updated``, the feed's
  ``updated`` (``lastBuildDate``), the feed's ``published``. Each is read by RFC 822
  (with a numeric zone, a named zone from ``ZONES`` or none at all, which counts as UTC),
  then ISO 8601 (no zone: UTC), then feedparser's own reading of odder forms. With no date
  anywhere the fetch time is used and the item says ``undated=True``: an upsert should
  then keep the ``published_at`` it already has.
- ``currencies``: coins named in the title, the text and the entry's categories.
- A body that is not a feed (HTML, JSON, broken XML with no entries) raises
  ``SourcePayloadError`` naming the feed; so does a feed cut short (its root element
  never closed: the answer stopped early), whose last entry feedparser would read as
  whole, its text cut. A whole feed with a harmless defect (feedparser's "bozo" flag,
  e.g. an HTML entity XML does not know) is read.
"""

from __future__ import annotations

import calendar
import email.utils
import io
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser

from omc_pipelines.sources.coins import extract_coins
from omc_pipelines.sources.html_text import html_to_text, squash
from omc_pipelines.sources.http import HttpSource, SourceError, SourcePayloadError, safe_url
from omc_pipelines.sources.human import HumanItem
from omc_pipelines.sources.payload import parse_utc

SOURCE_PREFIX = "news:"
# Why an entry is left out (FeedPage.dropped).
NO_KEY = "no link or guid"
REPEATED = "same link or guid as an earlier entry"
MAX_TEXT_CHARS = 10_000
FEED_ACCEPT = "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Defects feedparser flags that do not spoil the content: a charset other than declared,
# a content type other than XML.
_HARMLESS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)

# Zone names RFC 822's parser in the standard library does not know (it knows UT, GMT, Z
# and the North American zones) but that feeds send; an unknown name counts as UTC.
ZONES: dict[str, int] = {
    "UTC": 0, "WET": 0, "BST": 60, "IST": 330, "CET": 60, "CEST": 120, "EET": 120, "EEST": 180, "MSK": 180,
    "SGT": 480, "HKT": 480, "JST": 540, "KST": 540, "AWST": 480, "ACST": 570, "ACDT": 630, "AEST": 600,
    "AEDT": 660, "NZST": 720, "NZDT": 780,
}
# The first element's name, after the prolog (declaration, comments, doctype); and what may
# follow the root's end tag (a cache plugin's comment, a processing instruction).
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TRAILING_PI = re.compile(r"<\?[^<>]*\?>\s*\Z")
_RFC822_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*(?P<zone>[A-Za-z]{1,5}|[+-]\d{4})?\s*$")


def source_name(feed: str) -> str:
    return f"{SOURCE_PREFIX}{feed}"


# --- dates ----------------------------------------------------------------------------------


def parse_date(value: str | None) -> datetime | None:
    """An RSS/Atom date string as an aware UTC datetime, or None when it does not read."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    # Some feeds write the UTC designator in lower case ("...T09:00:00z").
    return _rfc822(text) or parse_utc(text.replace("z", "Z"))


def _rfc822(text: str) -> datetime | None:
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        return None
    offset_seconds = parsed[9] or 0
    match = _RFC822_ZONE.search(text)
    zone = (match.group("zone") or "") if match else ""
    if zone.upper() in ZONES:
        offset_seconds = ZONES[zone.upper()] * 60
    try:
        return (datetime(*parsed[:6]) - timedelta(seconds=offset_seconds)).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):  # no such day; or past datetime's range once in UTC
        return None


def _from_struct(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` (a UTC ``time.struct_time``) as a datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None


def _raw(obj: Mapping[str, Any], key: str) -> Any:
    # feedparser's dicts answer some missing keys from others ("updated" from "published",
    # with a deprecation warning): read what the feed itself said.
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _first_date(obj: Mapping[str, Any], keys: Iterable[str]) -> datetime | None:
    for key in keys:
        when = parse_date(_raw(obj, key)) or _from_struct(_raw(obj, f"{key}_parsed"))
        if when is not None:
            return when
    return None


# --- links and text -------------------------------------------------------------------------


def canonical_link(link: str) -> str:
    """The link as a key: whitespace, ``utm_*`` parameters and the fragment removed."""
    link = link.strip()
    parts = urlsplit(link)
    if not parts.scheme or not parts.netloc:
        return link
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith("utm_")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _detail_text(entry: Mapping[str, Any], key: str) -> str:
    value = _raw(entry, key) or ""
    detail = _raw(entry, f"{key}_detail") or {}
    if _raw(detail, "type") in _HTML_TYPES or "<" in value:
        return html_to_text(value, one_line=True)
    return squash(value)


def _body(entry: Mapping[str, Any]) -> str:
    text = html_to_text(_raw(entry, "summary"))
    if not text:
        for content in _raw(entry, "content") or ():
            text = html_to_text(_raw(content, "value"))
            if text:
                break
    return text[:MAX_TEXT_CHARS]


# --- the parser -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPage:
    """One feed's answer: its items, and the entries left out (reason -> how many)."""

    items: list[HumanItem]
    dropped: dict[str, int] = field(default_factory=dict)


def parse_feed(body: bytes, feed: str, url: str, *, content_type: str | None = None,
               fetched_at: datetime | None = None) -> FeedPage:
    """The entries of one RSS 2.0 / RSS 1.0 / Atom feed, newest first as the feed has them.

    ``feed`` is the configured name (the item's source is ``news:<feed>``), ``url`` where
    it came from (relative links resolve against it; errors name it)."""
    headers = {"content-location": url, "content-type": content_type or "application/xml"}
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except ValueError as exc:  # its loose parser's chr() on a character reference past U+10FFFF
        raise SourcePayloadError(source_name(feed), url, f"feed {feed!r} is not readable ({exc})") from None
    if _raw(parsed, "bozo") and _cut_short(body):
        # Not well-formed (so feedparser read it loosely) and the root never closes: half an answer.
        raise SourcePayloadError(source_name(feed), safe_url(url), f"feed {feed!r} is cut short: its root "
                                                                  f"element never closes")
    entries = _raw(parsed, "entries") or []
    page = _read_entries(entries, feed, _raw(parsed, "feed") or {}, fetched_at)
    if not page.items:
        # A defect with nothing readable (a truncated body, an HTML error page) is an error;
        # a sound feed with no entries is just empty.
        if not _raw(parsed, "version"):
            raise SourcePayloadError(source_name(feed), safe_url(url), f"feed {feed!r} is not an RSS or Atom feed")
        problem = _raw(parsed, "bozo_exception")
        if _raw(parsed, "bozo") and not isinstance(problem, _HARMLESS):
            raise SourcePayloadError(
                source_name(feed), safe_url(url),
                f"feed {feed!r} is not readable XML ({problem.__class__.__name__}: {problem})",
            )
    return page


def _cut_short(body: bytes) -> bool:
    """Whether an XML document ends before its root element's end tag."""
    # UTF-8 and the 8-bit encodings feeds use agree on the markup's ASCII. (In a UTF-16 feed no
    # root shows here: it is not judged.)
    text = _COMMENT.sub("", body.decode("latin-1"))
    root = _ROOT.search(text)
    if root is None:
        return False
    end = _TRAILING_PI.sub("", text.rstrip()).rstrip()
    return re.search(rf"</{re.escape(root.group(1))}\s*>\Z", end) is None


def _read_entries(entries: list, feed: str, channel: Mapping[str, Any], fetched_at: datetime | None) -> FeedPage:
    feed_date = _first_date(channel, ("updated", "published"))
    fallback = (fetched_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    items: dict[str, HumanItem] = {}
    dropped: Counter[str] = Counter()
    for entry in entries:
        link = (_raw(entry, "link") or "").strip()
        guid = (_raw(entry, "id") or "").strip()
        key = canonical_link(link or guid)
        if not key:
            dropped[NO_KEY] += 1
            continue
        if key in items:  # a feed that repeats an entry: the first (newest) wins
            dropped[REPEATED] += 1
            continue
        title = _detail_text(entry, "title")
        text = _body(entry)
        published = _first_date(entry, ("published", "updated"))
        undated = False
        if published is None:
            published = feed_date
        if published is None:
            published, undated = fallback, True
        tags = " ".join(_raw(t, "term") or "" for t in _raw(entry, "tags") or ())
        author = squash(_raw(entry, "author")) or None
        item = HumanItem(
            source=source_name(feed),
            external_id=key,
            title=title,
            text=text,
            url=next((candidate for candidate in (link, guid) if _is_url(candidate)), ""),
            author=author,
            published_at=published,
            currencies=tuple(extract_coins(f"{title}\n{text}\n{tags}")),
            engagement={},
            channel=feed,
            kind="article",
            undated=undated,
        )
        items[key] = item
    return FeedPage(list(items.values()), dict(dropped))


# --- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewsFetch:
    """What one round over the feeds brought: items per feed, the entries each left out
    (only feeds that left some out), and the feeds that failed."""

    items: dict[str, list[HumanItem]] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: dict[str, SourceError] = field(default_factory=dict)

    @property
    def all_items(self) -> list[HumanItem]:
        return [item for items in self.items.values() for item in items]


HttpFactory = Callable[[str, str], HttpSource]


class NewsFeeds:
    """Every configured feed (``name -> url``), each through its own ``HttpSource``.

    ``http_factory(source_name, base_url)`` builds that source (tests pass one with a
    transport); by default each gets the timeouts and retries given here, a polite rate
    and an ``Accept`` header for feeds."""

    def __init__(self, feeds: Mapping[str, str], http_factory: HttpFactory | None = None, *,
                 timeout: float = 10.0, retries: int = 2, backoff: float = 0.5, rate_limit: float = 1.0):
        for name, url in feeds.items():
            if not _is_url(url):
                raise ValueError(f"feed {name!r} needs an http(s) URL")
        self.feeds = dict(feeds)
        self._factory = http_factory or (
            lambda name, base: HttpSource(
                name, base, timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit,
                headers={"Accept": FEED_ACCEPT},
            )
        )
        self._sources: dict[str, HttpSource] = {}

    def __enter__(self) -> NewsFeeds:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for http in self._sources.values():
            http.close()
        self._sources.clear()

    def _split(self, url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return base, path

    def fetch(self, name: str, *, fetched_at: datetime | None = None) -> FeedPage:
        """One feed's entries; a ``SourceError`` when it cannot be fetched or read."""
        url = self.feeds[name]
        base, path = self._split(url)
        key = source_name(name)
        http = self._sources.get(key)
        if http is None:
            http = self._sources[key] = self._factory(key, base)
        response = http.get(path)
        return parse_feed(response.content, name, url, content_type=response.headers.get("content-type"),
                          fetched_at=fetched_at)

    def fetch_all(self, names: Iterable[str] | None = None, *, fetched_at: datetime | None = None) -> NewsFetch:
        """Every feed (or the named ones); a feed that fails is in ``errors``, the rest still count."""
        result = NewsFetch()
        for name in names if names is not None else self.feeds:
            try:
                page = self.fetch(name, fetched_at=fetched_at)
            except SourceError as exc:
                result.errors[name] = exc
                continue
            result.items[name] = page.items
            if page.dropped:
                result.dropped[name] = page.dropped
        return result
