"""CryptoPanic's posts API (``/api/developer/v2/posts/``): a client and a pure parser.

The token (``auth_token``) is a secret: it goes out only as a query parameter the
``HttpSource`` masks (``secret_params``), never in a message, a ``repr`` or a log, and
never to another host (see :meth:`CryptoPanicClient.posts`). Without a token no request
is sent at all: :class:`~omc_pipelines.sources.human.NotConfigured`.

Reading a post:

- ``external_id`` is the post's ``id``, a positive integer (a number or its digits: zero,
  a negative or anything else is a payload error, never a key). Plans that leave ``id``
  out get a stable stand-in, ``slug:<slug>`` or else ``sha1:<hash of published_at and title>``.
- ``url`` is the article's own address (``original_url``) when the plan gives it, else
  CryptoPanic's page for the post (``url``), else empty.
- ``author`` is the publisher's name (``source.title``), ``channel`` its domain.
- ``currencies`` are the codes CryptoPanic tagged (``currencies``, or ``instruments`` as
  some v2 plans call them); when neither is present, the coins the title and the
  description name.
- ``votes`` (positive, negative, important, liked, disliked, lol, toxic, saved,
  comments) become ``engagement`` as counts (never below zero); missing votes are simply absent.
- ``published_at`` is required; a post without it is a payload error.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from omc_pipelines.settings import CRYPTOPANIC_TOKEN
from omc_pipelines.sources.coins import extract_coins
from omc_pipelines.sources.html_text import html_to_text, squash
from omc_pipelines.sources.http import HttpSource, SourcePayloadError, SourceRefused
from omc_pipelines.sources.human import HumanItem, NotConfigured
from omc_pipelines.sources.payload import Payload

SOURCE = "cryptopanic"
POSTS = "/api/developer/v2/posts/"
TOKEN_PARAM = "auth_token"
FILTERS = ("rising", "hot", "bullish", "bearish", "important", "saved", "lol")
KINDS = ("news", "media", "all")
VOTES = ("positive", "negative", "important", "liked", "disliked", "lol", "toxic", "saved", "comments")
MAX_PAGES = 10  # CryptoPanic's plans allow only a few pages back; a guard against endless `next`


class CryptoPanicRefused(SourceRefused):
    """CryptoPanic said no (401/403): a bad token or the plan's limits. Never names the token."""


@dataclass(frozen=True)
class PostsPage:
    items: list[HumanItem]
    next: str | None  # as CryptoPanic sent it, less the token it carries
    count: int | None


class _Payload(Payload):
    """CryptoPanic's readers on top of the shared ones."""

    def text(self, obj: dict, name: str, where: str, *, required: bool = False) -> str:
        if required and obj.get(name) is None:
            raise self.fail(f"{where} has no {name!r}")
        return self.text_or_empty(obj.get(name), f"{where}.{name}")

    def count(self, value: Any, where: str) -> int:
        if (isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, float) and math.isfinite(value))
                or value < 0):
            raise self.fail(f"{where} is {value!r}, not a count")  # NaN and infinity too: int() would raise
        return int(value)

    def post_id(self, value: Any, where: str) -> str:
        digits = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
        if not digits.isdigit() or int(digits) == 0:
            raise self.fail(f"{where} is {value!r}, not a positive id")
        return digits


def _stand_in_id(post: dict, published: datetime, title: str) -> str:
    if isinstance(post.get("slug"), str) and post["slug"]:
        return f"slug:{post['slug']}"
    digest = hashlib.sha1(f"{published.isoformat()}|{title}".encode()).hexdigest()[:20]
    return f"sha1:{digest}"


def _codes(p: _Payload, post: dict, where: str) -> tuple[str, ...] | None:
    """The codes CryptoPanic tagged, or None when the post carries no tag list at all."""
    for name in ("currencies", "instruments"):
        tags = post.get(name)
        if tags is None:
            continue
        if not isinstance(tags, list):
            raise p.fail(f"{where}.{name} is not a list")
        codes = []
        for i, tag in enumerate(tags):
            code = tag.get("code") if isinstance(tag, dict) else tag
            if not isinstance(code, str) or not code.strip():
                raise p.fail(f"{where}.{name}[{i}] has no code")
            codes.append(code.strip().upper())
        return tuple(dict.fromkeys(codes))
    return None


def parse_post(post: Any, url: str = POSTS, where: str = "post") -> HumanItem:
    """One post of the ``results`` list."""
    p = _Payload(SOURCE, url)
    if not isinstance(post, dict):
        raise p.fail(f"{where} is not an object")
    ident = None if post.get("id") is None else p.post_id(post["id"], f"{where}.id")
    title = html_to_text(p.text(post, "title", where, required=True), one_line=True)
    published = p.time(p.text(post, "published_at", where, required=True), f"{where}.published_at")
    description = html_to_text(p.text(post, "description", where))
    source = post.get("source")
    if source is not None and not isinstance(source, dict):
        raise p.fail(f"{where}.source is not an object")
    source = source or {}
    votes = post.get("votes")
    if votes is not None and not isinstance(votes, dict):
        raise p.fail(f"{where}.votes is not an object")
    engagement = {
        name: p.count(votes[name], f"{where}.votes.{name}")
        for name in VOTES
        if votes and votes.get(name) is not None
    }
    codes = _codes(p, post, where)
    if codes is None:
        codes = tuple(extract_coins(f"{title}\n{description}"))
    link = p.text(post, "original_url", where) or p.text(post, "url", where)
    domain = p.text(post, "domain", where) or (source.get("domain") if isinstance(source.get("domain"), str) else "")
    author = source.get("title") if isinstance(source.get("title"), str) else None
    kind = p.text(post, "kind", where) or None
    return HumanItem(
        source=SOURCE,
        external_id=ident or _stand_in_id(post, published, title),
        title=title,
        text=description,
        url=link,
        author=squash(author) or None,
        published_at=published,
        currencies=codes,
        engagement=engagement,
        channel=domain or None,
        kind=kind,
    )


def parse_posts(payload: Any, url: str = POSTS) -> PostsPage:
    """One page: ``{"count", "next", "previous", "results": [...]}``."""
    p = _Payload(SOURCE, url)
    if not isinstance(payload, dict):
        raise p.fail(f"expected a JSON object, got {type(payload).__name__}")
    results = payload.get("results")
    if not isinstance(results, list):
        raise p.fail("body has no 'results' list")
    nxt = payload.get("next")
    if nxt is not None and not isinstance(nxt, str):
        raise p.fail("next is not a URL")
    count = payload.get("count")
    if nxt:
        # CryptoPanic's next link repeats the caller's auth_token: drop it before it can be shown.
        parts = urlsplit(nxt)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_PARAM]
        nxt = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    return PostsPage(
        items=[parse_post(post, url, f"results[{i}]") for i, post in enumerate(results)],
        next=nxt or None,
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )


class CryptoPanicClient:
    """The posts API over the shared HTTP layer; the token travels as a masked parameter."""

    def __init__(self, http: HttpSource, token: str | None):
        if not token:
            raise NotConfigured(SOURCE, (CRYPTOPANIC_TOKEN,))
        if TOKEN_PARAM not in http.secret_params:
            raise ValueError(f"the HttpSource must list {TOKEN_PARAM!r} in secret_params")
        self.http = http
        self._token = token

    @classmethod
    def create(cls, base_url: str, token: str | None, *, timeout: float = 10.0, retries: int = 2,
               backoff: float = 0.5, rate_limit: float = 1.0, transport=None) -> CryptoPanicClient:
        """A client with its own ``HttpSource``; ``NotConfigured`` (before anything is built) without a token."""
        if not token:
            raise NotConfigured(SOURCE, (CRYPTOPANIC_TOKEN,))
        http = HttpSource(SOURCE, base_url, timeout=timeout, retries=retries, backoff=backoff,
                          rate_limit=rate_limit, secret_params=(TOKEN_PARAM,), transport=transport)
        return cls(http, token)

    def __repr__(self) -> str:
        return f"CryptoPanicClient(base_url={self.http.base_url!r}, token=***)"

    def __enter__(self) -> CryptoPanicClient:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            return self.http.get_json(path, params)
        except SourceRefused as exc:
            refused = exc
        # Raised outside the except block: inside it, Python would chain the layer's error to
        # this one as __context__ (and so, had it any, the httpx error holding the token).
        if refused.status in (401, 403):
            raise CryptoPanicRefused(
                SOURCE, refused.url,
                f"CryptoPanic refused the request (HTTP {refused.status}): the auth token is not valid, or the "
                f"plan does not allow this request (its limits on pages, filters or requests)",
                refused.status,
            )
        raise refused

    def _next_request(self, link: str) -> tuple[str, dict[str, Any]]:
        """Where a ``next`` link points, as path and parameters for the same ``HttpSource``.

        Only a link to the same host and the posts path is followed, so the token never
        goes elsewhere; the token in the link is replaced by ours."""
        base = urlsplit(self.http.base_url)
        parts = urlsplit(link)
        shown = self.http.shown_url(POSTS)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != base.netloc.lower():
            raise SourcePayloadError(SOURCE, shown, "next page link points to another host; not followed")
        prefix = base.path.rstrip("/")
        path = parts.path
        if not path.startswith(prefix + "/") or path[len(prefix):].rstrip("/") != POSTS.rstrip("/"):
            raise SourcePayloadError(SOURCE, shown, "next page link is not a posts page; not followed")
        params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_PARAM}
        return path[len(prefix):], {TOKEN_PARAM: self._token, **params}

    def pages(self, *, filter: str | None = None, currencies: Iterable[str] | None = None,
              kind: str | None = None, max_pages: int = 1) -> Iterator[PostsPage]:
        """Pages of public posts, newest first, following ``next`` up to ``max_pages``."""
        if filter is not None and filter not in FILTERS:
            raise ValueError(f"filter must be one of {', '.join(FILTERS)}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        params: dict[str, Any] = {TOKEN_PARAM: self._token, "public": "true"}
        if filter:
            params["filter"] = filter
        codes = [c.strip().upper() for c in currencies or () if c.strip()]
        if codes:
            params["currencies"] = ",".join(codes)
        if kind:
            params["kind"] = kind
        path = POSTS
        for _ in range(max(1, min(max_pages, MAX_PAGES))):
            page = parse_posts(self._get(path, params), self.http.shown_url(path, params))
            yield page
            if not page.next:
                return
            path, params = self._next_request(page.next)

    def posts(self, *, filter: str | None = None, currencies: Iterable[str] | None = None,
              kind: str | None = None, max_pages: int = 1, since: datetime | None = None) -> list[HumanItem]:
        """Posts, newest first, de-duplicated by id; paging stops at the first page that
        reaches back to ``since`` (inclusive: a post at exactly ``since`` is kept)."""
        seen: dict[str, HumanItem] = {}
        for page in self.pages(filter=filter, currencies=currencies, kind=kind, max_pages=max_pages):
            for item in page.items:
                if since is None or item.published_at >= since:
                    seen.setdefault(item.external_id, item)
            if since is not None and any(item.published_at < since for item in page.items):
                break
        return list(seen.values())
