"""The Human ledger's sources in the sandbox: news feeds, CryptoPanic, Reddit.

Served from the recordings in ``recordings/human/``:

- ``feeds/<name>.xml``: the five news feeds at ``/feeds/<name>`` (coindesk, cointelegraph,
  cryptoslate and newsbtc as RSS 2.0, decrypt as Atom), with HTML in the descriptions
  (CDATA, escaped, scripts and styles), zones other than UTC, and one odd date (newsbtc's
  XRP entry has an RFC 822 date with no zone).
- ``cryptopanic_posts.json``: posts in the developer v2 shape at
  ``/api/developer/v2/posts/``, ``page_size`` a page, ``next`` an absolute URL back to
  the sandbox carrying the ``auth_token`` as CryptoPanic's own links do. Two posts have no
  ``currencies``. A missing or wrong ``auth_token`` answers 403
  ``{"status": "Incomplete", "info": "Token not found"}`` (CryptoPanic's error shape, as
  far as we know it).
- ``reddit/<sub>.json``: ``/r/<sub>/new.json`` listings (``limit``, ``after``), one
  stickied post in each, behind a bearer token from ``POST /api/v1/access_token``
  (client credentials with HTTP basic auth; 401 on wrong credentials; tokens last
  ``expires_in`` = 86400 s). A missing, wrong or revoked token answers 401.

Recorded times move forward as one block per source (per feed for the news), so that
the newest item falls at the start of the current UTC hour: within the last hour, and
identical for two sandboxes started in the same hour. A feed's own date (lastBuildDate)
moves with it but never past that hour. Each date keeps its written form (zone, no zone,
ISO).

Control routes (JSON bodies), also available as methods:

- ``POST /_sandbox/human/news`` ``{"feed", "title", "description"?, "link"?, "author"?, "published_at"?}``
- ``POST /_sandbox/human/cryptopanic`` ``{"title", "description"?, "currencies"?, "votes"?, "kind"?, "domain"?, "published_at"?}``
- ``POST /_sandbox/human/reddit`` ``{"subreddit", "title", "selftext"?, "author"?, "score"?, "upvote_ratio"?, "num_comments"?, "stickied"?, "published_at"?}``
- ``POST /_sandbox/human/reddit/access`` ``{"approved": false}``: every listing answers 403
  (Reddit has not approved the client's API access); ``true`` restores it.
- ``POST /_sandbox/human/reddit/revoke``: every issued token stops working (401).
- ``POST /_sandbox/human/reset``; ``GET /_sandbox/human/state``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.utils
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from omc_pipelines import settings
from omc_pipelines.sandbox.server import Request, Response, SandboxServer

RECORDINGS = Path(__file__).with_name("recordings") / "human"
FEEDS = ("coindesk", "cointelegraph", "cryptoslate", "decrypt", "newsbtc")
SITES = {
    "coindesk": "https://www.coindesk.com", "cointelegraph": "https://cointelegraph.com",
    "cryptoslate": "https://cryptoslate.com", "decrypt": "https://decrypt.co", "newsbtc": "https://www.newsbtc.com",
}
SUBREDDITS = ("CryptoCurrency", "Bitcoin", "ethereum", "solana")

# The sandbox's credentials: fake, and only good here.
CRYPTOPANIC_TOKEN = "sandbox-cryptopanic-token-5f2c9a"
REDDIT_CLIENT_ID = "sandbox-reddit-client"
REDDIT_CLIENT_SECRET = "sandbox-reddit-secret-8d41e7"
REDDIT_USERNAME = "omc_sandbox"

CRYPTOPANIC_POSTS = "/api/developer/v2/posts/"
PAGE_SIZE = 20
TOKEN_LIFETIME = 86400
REDDIT_DEFAULT_LIMIT = 25
REDDIT_MAX_LIMIT = 100
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"

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


def _iso_z(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _anchor(now: datetime) -> datetime:
    # The hour is UTC's: a clock in a half-hour zone must not anchor at :30.
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


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


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:80] or "entry"


# --- responses ------------------------------------------------------------------------------


def _cryptopanic_refusal(info: str) -> Response:
    return Response(403, {"status": "Incomplete", "info": info}, content_type=JSON_TYPE)


def _reddit_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"message": message, "error": status}, headers or {}, content_type=JSON_TYPE)


class HumanSandbox:
    """State of the three human sources, and their routes."""

    def __init__(self, now: datetime | None = None, *, cryptopanic_token: str = CRYPTOPANIC_TOKEN,
                 reddit_client_id: str = REDDIT_CLIENT_ID, reddit_client_secret: str = REDDIT_CLIENT_SECRET,
                 page_size: int = PAGE_SIZE, anchor: datetime | None = None):
        self._lock = threading.Lock()
        self._now = now
        # Where the recordings' newest item goes (the start of its UTC hour); None: the current hour.
        self._anchor_at = anchor
        self.cryptopanic_token = cryptopanic_token
        self.reddit_client_id = reddit_client_id
        self.reddit_client_secret = reddit_client_secret
        self.page_size = page_size
        self._server: SandboxServer | None = None
        self.reset()

    def now(self) -> datetime:
        return (self._now or datetime.now(timezone.utc)).astimezone(timezone.utc)

    # --- state ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the recordings; Reddit access approved; no tokens issued."""
        anchor = _anchor(self._anchor_at or self.now())
        feeds = {name: _split_feed(_move_feed_dates((RECORDINGS / "feeds" / f"{name}.xml").read_text(), anchor))
                 for name in FEEDS}
        page = json.loads((RECORDINGS / "cryptopanic_posts.json").read_text())
        posts = page["results"]
        shift = anchor - max(_parse_time(p["published_at"]) for p in posts)
        for post in posts:
            for key in ("published_at", "created_at"):
                if post.get(key):
                    post[key] = _iso_z(_parse_time(post[key]) + shift)
        listings = {sub: json.loads((RECORDINGS / "reddit" / f"{sub}.json").read_text())["data"]["children"]
                    for sub in SUBREDDITS}
        newest = max(c["data"]["created_utc"] for children in listings.values() for c in children)
        seconds = anchor.timestamp() - newest
        for children in listings.values():
            for child in children:
                child["data"]["created_utc"] = float(round(child["data"]["created_utc"] + seconds))
                child["data"]["created"] = child["data"]["created_utc"]
        with self._lock:
            self.feeds: dict[str, _Feed] = feeds
            self.posts: list[dict[str, Any]] = posts
            self.listings: dict[str, list[dict[str, Any]]] = listings
            self.reddit_approved = True
            self.tokens: dict[str, float] = {}  # bearer token -> expiry (epoch seconds)
            self.tokens_issued = 0
            self.user_agents: list[str] = []
            self._counter = 0

    def _next_number(self) -> int:
        self._counter += 1
        return self._counter

    def publish_news(self, feed: str, title: str, *, description: str = "", link: str | None = None,
                     author: str = "Sandbox Reporter", published_at: datetime | None = None) -> str:
        """Add an entry at the top of a feed; returns its link (the item's key)."""
        if feed not in self.feeds:
            raise ValueError(f"unknown feed {feed!r}; known: {', '.join(FEEDS)}")
        when = published_at or self.now()
        with self._lock:
            number = self._next_number()
            link = link or f"{SITES[feed]}/sandbox/{_slug(title)}-{number}"
            target = self.feeds[feed]
            if target.atom:
                entry = (
                    f"\n  <entry>\n    <title type=\"html\">{html.escape(title)}</title>\n"
                    f"    <link rel=\"alternate\" type=\"text/html\" href=\"{html.escape(link)}\"/>\n"
                    f"    <id>{html.escape(link)}</id>\n    <published>{_iso_z(when)}</published>\n"
                    f"    <updated>{_iso_z(when)}</updated>\n    <author><name>{html.escape(author)}</name></author>\n"
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

    def publish_post(self, title: str, *, description: str | None = None, currencies: list[str] | None = None,
                     votes: dict[str, int] | None = None, kind: str = "news", domain: str = "sandbox.example",
                     published_at: datetime | None = None) -> dict[str, Any]:
        """Add a CryptoPanic post, newest first, with an id above every other."""
        if kind not in ("news", "media"):
            raise ValueError("kind must be 'news' or 'media'")
        when = published_at or self.now()
        with self._lock:
            post_id = max((p["id"] for p in self.posts), default=1) + 1
            slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
            post: dict[str, Any] = {
                "id": post_id, "slug": slug, "title": title, "published_at": _iso_z(when),
                "created_at": _iso_z(when), "kind": kind,
                "source": {"title": domain, "region": "en", "domain": domain, "type": "feed"},
                "original_url": f"https://{domain}/{slug.lower()}",
                "url": f"https://cryptopanic.com/news/{post_id}/{slug}",
                "votes": {name: int((votes or {}).get(name, 0)) for name in
                          ("positive", "negative", "important", "liked", "disliked", "lol", "toxic", "saved", "comments")},
            }
            if description is not None:
                post["description"] = description
            if currencies is not None:
                post["currencies"] = [{"code": c.upper(), "title": c.upper(), "slug": c.lower(),
                                       "url": f"https://cryptopanic.com/news/{c.lower()}/"} for c in currencies]
            self.posts.append(post)
            self.posts.sort(key=lambda p: (p["published_at"], p["id"]), reverse=True)
        return copy.deepcopy(post)

    def publish_reddit(self, subreddit: str, title: str, *, selftext: str = "", author: str = "sandbox_user",
                       score: int = 1, upvote_ratio: float = 1.0, num_comments: int = 0, stickied: bool = False,
                       published_at: datetime | None = None) -> dict[str, Any]:
        """Add a post to a subreddit's /new (a new subreddit starts empty)."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}", subreddit):
            raise ValueError(f"{subreddit!r} is not a subreddit name")
        when = (published_at or self.now()).timestamp()
        with self._lock:
            post_id = f"1s{self._next_number():05d}"
            permalink = f"/r/{subreddit}/comments/{post_id}/{_slug(title).replace('-', '_')[:50]}/"
            data = {
                "subreddit": subreddit, "selftext": selftext, "title": title, "name": f"t3_{post_id}",
                "subreddit_name_prefixed": f"r/{subreddit}", "upvote_ratio": upvote_ratio, "ups": score, "downs": 0,
                "score": score, "is_self": True, "domain": f"self.{subreddit}", "created": float(round(when)),
                "created_utc": float(round(when)), "id": post_id, "author": author, "num_comments": num_comments,
                "permalink": permalink, "url": f"https://www.reddit.com{permalink}", "stickied": stickied,
                "over_18": False, "locked": False, "pinned": False,
            }
            children = self.listings.setdefault(subreddit, [])
            children.append({"kind": "t3", "data": data})
            children.sort(key=lambda c: c["data"]["created_utc"], reverse=True)
        return copy.deepcopy(data)

    def set_reddit_access(self, approved: bool) -> None:
        with self._lock:
            self.reddit_approved = bool(approved)

    def revoke_reddit_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "feeds": {name: len(feed.items) for name, feed in self.feeds.items()},
                "cryptopanic_posts": len(self.posts),
                "reddit": {sub: len(children) for sub, children in self.listings.items()},
                "reddit_approved": self.reddit_approved,
                "reddit_tokens_issued": self.tokens_issued,
                "reddit_tokens_valid": len(self.tokens),
            }

    def env(self, url: str, *, credentials: bool = True) -> dict[str, str]:
        """The environment that points the pipeline's human sources at a sandbox at ``url``,
        with the sandbox's own (fake) credentials unless ``credentials`` is false."""
        url = url.rstrip("/")
        env = {
            settings.NEWS_FEEDS: ",".join(f"{name}={url}/feeds/{name}" for name in FEEDS),
            settings.CRYPTOPANIC_URL: url,
            settings.REDDIT_URL: url,
            settings.REDDIT_AUTH_URL: url,
        }
        if credentials:
            env.update({
                settings.CRYPTOPANIC_TOKEN: self.cryptopanic_token,
                settings.REDDIT_CLIENT_ID: self.reddit_client_id,
                settings.REDDIT_CLIENT_SECRET: self.reddit_client_secret,
                settings.REDDIT_USERNAME: REDDIT_USERNAME,
            })
        return env

    # --- serving -------------------------------------------------------------------------

    def install(self, server: SandboxServer) -> None:
        self._server = server
        server.route("GET", r"/feeds/(?P<name>[a-z0-9_-]+)", self._feed)
        server.route("GET", CRYPTOPANIC_POSTS.rstrip("/"), self._posts)
        server.route("POST", r"/api/v1/access_token", self._access_token)
        server.route("GET", r"/r/(?P<sub>[A-Za-z0-9_]+)/new(?:\.json)?", self._listing)
        server.route("POST", r"/_sandbox/human/news", self._control_news)
        server.route("POST", r"/_sandbox/human/cryptopanic", self._control_post)
        server.route("POST", r"/_sandbox/human/reddit", self._control_reddit)
        server.route("POST", r"/_sandbox/human/reddit/access", self._control_access)
        server.route("POST", r"/_sandbox/human/reddit/revoke", self._control_revoke)
        server.route("POST", r"/_sandbox/human/reset", self._control_reset)
        server.route("GET", r"/_sandbox/human/state", lambda req, m: Response(body=self.state()))

    def _base_url(self, request: Request) -> str:
        host = request.headers.get("host")
        if host:
            return f"http://{host}"
        return self._server.url if self._server else ""

    def _feed(self, request: Request, m: re.Match) -> Response:
        name = m["name"]
        if name not in self.feeds:
            return Response(404, "<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
                            content_type="text/html; charset=utf-8")
        with self._lock:
            feed = self.feeds[name]
            body = feed.render()
        return Response(200, body.encode(), content_type=ATOM_TYPE if feed.atom else RSS_TYPE)

    def _posts(self, request: Request, m: re.Match) -> Response:
        query = {k: v[-1] for k, v in request.query.items()}
        token = query.get("auth_token")
        if not token:
            return _cryptopanic_refusal("Token not found")
        if not secrets.compare_digest(token.encode(), self.cryptopanic_token.encode()):
            return _cryptopanic_refusal("Token not found")
        try:
            page = int(query.get("page") or 1)
        except ValueError:
            return Response(404, {"detail": "Invalid page."}, content_type=JSON_TYPE)
        with self._lock:
            posts = [p for p in self.posts if self._matches(p, query)]
        start = (page - 1) * self.page_size
        if page < 1 or (start >= len(posts) and page != 1):
            return Response(404, {"detail": "Invalid page."}, content_type=JSON_TYPE)
        chunk = posts[start:start + self.page_size]

        def link(number: int) -> str:
            params = {k: v for k, v in query.items() if k != "page"}
            if number > 1:
                params["page"] = str(number)
            return f"{self._base_url(request)}{CRYPTOPANIC_POSTS}?{urlencode(params)}"

        body = {
            "count": len(posts),
            "next": link(page + 1) if start + self.page_size < len(posts) else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": copy.deepcopy(chunk),
        }
        return Response(body=body, content_type=JSON_TYPE)

    @staticmethod
    def _matches(post: dict[str, Any], query: dict[str, str]) -> bool:
        kind = query.get("kind")
        if kind in ("news", "media") and post.get("kind") != kind:
            return False
        wanted = {c.strip().upper() for c in (query.get("currencies") or "").split(",") if c.strip()}
        if wanted and not wanted & {c["code"] for c in post.get("currencies") or ()}:
            return False
        votes = post.get("votes") or {}
        rule = query.get("filter")
        if rule == "bullish":
            return votes.get("positive", 0) > votes.get("negative", 0)
        if rule == "bearish":
            return votes.get("negative", 0) > votes.get("positive", 0)
        if rule in ("important", "saved", "lol"):
            return votes.get(rule, 0) > 0
        return True

    def _access_token(self, request: Request, m: re.Match) -> Response:
        self.user_agents.append(request.headers.get("user-agent", ""))
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = secret = ""
        if scheme.lower() != "basic" or not (
            secrets.compare_digest(client_id.encode(), self.reddit_client_id.encode())
            and secrets.compare_digest(secret.encode(), self.reddit_client_secret.encode())
        ):
            return _reddit_error(401, "Unauthorized")
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return Response(200, {"error": "unsupported_grant_type"}, content_type=JSON_TYPE)
        token = "sbx-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME
            self.tokens_issued += 1
        return Response(body={"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME, "scope": "*"},
                        content_type=JSON_TYPE)

    def _listing(self, request: Request, m: re.Match) -> Response:
        self.user_agents.append(request.headers.get("user-agent", ""))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self.tokens.get(token) if scheme.lower() == "bearer" else None
            approved = self.reddit_approved
        if expiry is None or expiry < time.time():
            return _reddit_error(401, "Unauthorized", {"WWW-Authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        if not approved:
            return _reddit_error(403, "Forbidden")
        sub = m["sub"]
        with self._lock:
            known = {s.lower(): s for s in self.listings}
            if sub.lower() not in known:
                return _reddit_error(404, "Not Found")
            children = copy.deepcopy(self.listings[known[sub.lower()]])
        query = {k: v[-1] for k, v in request.query.items()}
        limit = max(1, min(int(query.get("limit") or REDDIT_DEFAULT_LIMIT), REDDIT_MAX_LIMIT))
        start = 0
        if query.get("after"):
            names = [c["data"]["name"] for c in children]
            start = names.index(query["after"]) + 1 if query["after"] in names else len(children)
        chunk = children[start:start + limit]
        more = start + limit < len(children)
        body = {"kind": "Listing", "data": {
            "after": chunk[-1]["data"]["name"] if more and chunk else None, "dist": len(chunk), "modhash": "",
            "geo_filter": "", "children": chunk, "before": None,
        }}
        headers = {"x-ratelimit-remaining": "99.0", "x-ratelimit-used": "1", "x-ratelimit-reset": "540"}
        return Response(body=body, headers=headers, content_type=JSON_TYPE)

    # --- control --------------------------------------------------------------------------

    def _control_news(self, request: Request, m) -> Response:
        body = request.json()
        link = self.publish_news(body.pop("feed"), body.pop("title"), published_at=_parse_time(body.pop("published_at", None)),
                                 **body)
        return Response(body={"status": "ok", "link": link})

    def _control_post(self, request: Request, m) -> Response:
        body = request.json()
        post = self.publish_post(body.pop("title"), published_at=_parse_time(body.pop("published_at", None)), **body)
        return Response(body={"status": "ok", "post": post})

    def _control_reddit(self, request: Request, m) -> Response:
        body = request.json()
        post = self.publish_reddit(body.pop("subreddit"), body.pop("title"),
                                   published_at=_parse_time(body.pop("published_at", None)), **body)
        return Response(body={"status": "ok", "post": post})

    def _control_access(self, request: Request, m) -> Response:
        body = request.json()
        if not isinstance(body.get("approved"), bool):
            raise ValueError("approved must be true or false")
        self.set_reddit_access(body["approved"])
        return Response(body={"status": "ok", "approved": body["approved"]})

    def _control_revoke(self, request: Request, m) -> Response:
        self.revoke_reddit_tokens()
        return Response(body={"status": "ok"})

    def _control_reset(self, request: Request, m) -> Response:
        self.reset()
        return Response(body={"status": "ok"})
