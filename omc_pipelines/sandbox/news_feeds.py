"""News feeds in the sandbox, one of the Human ledger's sources (see ``human.py``).

Served from ``recordings/human/feeds/<name>.xml``: the five news feeds at ``/feeds/<name>``
(coindesk, cointelegraph, cryptoslate and newsbtc as RSS 2.0, decrypt as Atom), with HTML in the
descriptions (CDATA, escaped, scripts and styles), zones other than UTC, and one odd date
(newsbtc's XRP entry has an RFC 822 date with no zone). Each feed's dates move as one block so
that its newest item falls at the anchor; the feed's own date (lastBuildDate) moves with it but
never past the anchor. Each date keeps its written form (zone, no zone, ISO).

``POST /_sandbox/human/news`` ``{"feed", "title", "description"?, "link"?, "author"?, "published_at"?}``
"""

from __future__ import annotations

import email.utils
import html
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from omc_pipelines import settings
from omc_pipelines.sandbox.server import Request, Response, SandboxServer
from omc_pipelines.sandbox.times import iso_z, parse_time

RECORDINGS = Path(__file__).with_name("recordings") / "human" / "feeds"
FEEDS = ("coindesk", "cointelegraph", "cryptoslate", "decrypt", "newsbtc")
SITES = {
    "coindesk": "https://www.coindesk.com", "cointelegraph": "https://cointelegraph.com",
    "cryptoslate": "https://cryptoslate.com", "decrypt": "https://decrypt.co", "newsbtc": "https://www.newsbtc.com",
}
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"


# --- dates as feeds write them -------------------------------------------------------------

_DATE_TAG = re.compile(r"<(?P<tag>pubDate|lastBuildDate|dc:date|published|updated)>(?P<value>[^<]+)</(?P=tag)>")
_RFC822 = re.compile(
    r"^\s*(?:(?P<wd>[A-Za-z]{3}),\s*)?(?P<day>\d{1,2})\s+(?P<mon>[A-Za-z]{3})\s+(?P<year>\d{4})\s+"
    r"(?P<time>\d{2}:\d{2}(?::\d{2})?)\s*(?P<zone>[A-Za-z]{1,5}|[+-]\d{4})?\s*$"
)
_ISO_ZONE = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class _Written:
    """A date and the way it was written, so that a moved date is written the same way."""

    when: datetime  # UTC
    style: str  # "rfc822" or "iso"
    zone: str  # as written: "+0000", "GMT", "Z", "+02:00", "" (none)
    offset: timedelta
    weekday: bool = True
    separator: str = "T"


def _read_written(text: str) -> _Written | None:
    match = _RFC822.match(text)
    if match:
        parsed = email.utils.parsedate_tz(text)
        if parsed is None:
            return None
        zone = match.group("zone") or ""
        offset = timedelta(seconds=parsed[9] or 0)
        local = datetime(*parsed[:6])
        return _Written((local - offset).replace(tzinfo=timezone.utc), "rfc822", zone, offset, bool(match.group("wd")))
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    zone_match = _ISO_ZONE.search(text.strip())
    zone = zone_match.group(1) if zone_match else ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    offset = parsed.utcoffset() or timedelta(0)
    separator = " " if " " in text.strip() else "T"
    return _Written(parsed.astimezone(timezone.utc), "iso", zone, offset, separator=separator)


def _write(written: _Written, when: datetime) -> str:
    local = (when.astimezone(timezone.utc) + written.offset).replace(tzinfo=None)
    if written.style == "rfc822":
        text = f"{local.day:02d} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M:%S}"
        if written.weekday:
            text = f"{_DAYS[local.weekday()]}, {text}"
        return f"{text} {written.zone}" if written.zone else text
    return local.strftime(f"%Y-%m-%d{written.separator}%H:%M:%S") + written.zone


def rfc822(when: datetime) -> str:
    return email.utils.format_datetime(when.astimezone(timezone.utc)).replace("-0000", "+0000")


# --- feeds ----------------------------------------------------------------------------------


@dataclass
class _Feed:
    atom: bool
    head: str
    items: list[str]
    tail: str

    def render(self) -> str:
        return self.head + "".join(self.items) + self.tail


def _split_feed(xml: str) -> _Feed:
    atom = "<feed" in xml[:400] and "<rss" not in xml[:400]
    tag = "entry" if atom else "item"
    pattern = re.compile(rf"\s*<{tag}>.*?</{tag}>", re.DOTALL)
    items = [m.group(0) for m in pattern.finditer(xml)]
    if not items:
        close = xml.rindex("</feed>" if atom else "</channel>")
        return _Feed(atom, xml[:close], [], xml[close:])
    first = xml.index(items[0])
    last_end = xml.rindex(items[-1]) + len(items[-1])
    return _Feed(atom, xml[:first], items, xml[last_end:])


def _move_feed_dates(xml: str, anchor: datetime) -> str:
    feed = _split_feed(xml)
    item_dates = [w.when for item in feed.items for m in _DATE_TAG.finditer(item) if (w := _read_written(m["value"]))]
    if not item_dates:
        return xml
    shift = anchor - max(item_dates)

    def move(match: re.Match) -> str:
        written = _read_written(match["value"])
        if written is None:
            return match.group(0)
        return f"<{match['tag']}>{_write(written, min(written.when + shift, anchor))}</{match['tag']}>"

    return _DATE_TAG.sub(move, xml)


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "entry"


class NewsFeedsSandbox:
    """The news feeds' state and routes."""

    def __init__(self, now: Callable[[], datetime]):
        self._lock = threading.Lock()
        self.now = now
        self.feeds: dict[str, _Feed] = {}
        self._counter = 0

    def reset(self, anchor: datetime) -> None:
        """Back to the recordings, the newest item of each feed at ``anchor``."""
        feeds = {name: _split_feed(_move_feed_dates((RECORDINGS / f"{name}.xml").read_text(), anchor))
                 for name in FEEDS}
        with self._lock:
            self.feeds = feeds
            self._counter = 0

    def publish(self, feed: str, title: str, *, description: str = "", link: str | None = None,
                     author: str = "Sandbox Reporter", published_at: datetime | None = None) -> str:
        """Add an entry at the top of a feed; returns its link (the item's key)."""
        if feed not in self.feeds:
            raise ValueError(f"unknown feed {feed!r}; known: {', '.join(FEEDS)}")
        when = published_at or self.now()
        with self._lock:
            self._counter += 1
            number = self._counter
            link = link or f"{SITES[feed]}/sandbox/{slug(title)}-{number}"
            target = self.feeds[feed]
            if target.atom:
                entry = (
                    f"\n  <entry>\n    <title type=\"html\">{html.escape(title)}</title>\n"
                    f"    <link rel=\"alternate\" type=\"text/html\" href=\"{html.escape(link)}\"/>\n"
                    f"    <id>{html.escape(link)}</id>\n    <published>{iso_z(when)}</published>\n"
                    f"    <updated>{iso_z(when)}</updated>\n    <author><name>{html.escape(author)}</name></author>\n"
                    f"    <summary type=\"html\">{html.escape(description)}</summary>\n  </entry>"
                )
            else:
                entry = (
                    f"\n\t<item>\n\t\t<title>{_cdata(title)}</title>\n\t\t<link>{html.escape(link)}</link>\n"
                    f"\t\t<dc:creator>{_cdata(author)}</dc:creator>\n\t\t<pubDate>{rfc822(when)}</pubDate>\n"
                    f"\t\t<guid isPermaLink=\"false\">{html.escape(link)}</guid>\n"
                    f"\t\t<description>{_cdata(description)}</description>\n\t</item>"
                )
            target.items.insert(0, entry)
        return link

    def state(self) -> dict[str, int]:
        with self._lock:
            return {name: len(feed.items) for name, feed in self.feeds.items()}

    def env(self, url: str) -> dict[str, str]:
        return {settings.NEWS_FEEDS: ",".join(f"{name}={url}/feeds/{name}" for name in FEEDS)}

    def install(self, server: SandboxServer) -> None:
        server.route("GET", r"/feeds/(?P<name>[a-z0-9_-]+)", self._feed)
        server.route("POST", r"/_sandbox/human/news", self._control)

    def _feed(self, request: Request, m: re.Match) -> Response:
        name = m["name"]
        if name not in self.feeds:
            return Response(404, "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
                            content_type="text/html; charset=utf-8")
        with self._lock:
            feed = self.feeds[name]
            body = feed.render()
        return Response(200, body.encode(), content_type=ATOM_TYPE if feed.atom else RSS_TYPE)

    def _control(self, request: Request, m) -> Response:
        body = request.json()
        link = self.publish(body.pop("feed"), body.pop("title"), published_at=parse_time(body.pop("published_at", None)),
                            **body)
        return Response(body={"status": "ok", "link": link})
