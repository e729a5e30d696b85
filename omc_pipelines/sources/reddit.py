"""Reddit's API: application-only OAuth, subreddit listings, a pure parser.

Access (Reddit's rules for API clients):

- A token by the client-credentials grant: ``POST {auth_url}/api/v1/access_token`` with
  HTTP basic auth ``client_id:client_secret`` and ``grant_type=client_credentials``,
  through the shared HTTP layer (``HttpSource.post_form``): asking twice is harmless, so
  it has a read's deadline, size cap and retries; on failure the error names the token
  URL and the status only. The token is kept until a minute before it expires.
- Listings from ``GET {api_url}/r/{sub}/new.json?limit=100&after=...&raw_json=1`` with
  ``Authorization: bearer <token>`` and a User-Agent of Reddit's required shape,
  ``<platform>:<app id>:<version> (by /u/<username>)``. ``raw_json=1`` makes Reddit send
  text as typed, not HTML-escaped.
- 401 on a listing: the token expired or was revoked; a new one is fetched and the
  listing asked once more. 403: ``RedditRefused`` ("Reddit refused access: API access
  needs approval"); new API clients need Reddit's approval, and the pipeline runs on
  without Reddit.
- No client id or secret: :class:`~omc_pipelines.sources.human.NotConfigured`, before
  any request.

Reading a post (``data.children[].data`` of a ``t3`` child):

- ``external_id`` is the fullname (``name``, ``t3_<id>``); ``url`` the discussion's
  permalink on www.reddit.com (a link post's target is in the text's place only when
  the post has no text of its own).
- ``published_at`` from ``created_utc``; a post dated before Reddit began (June 2005) or
  in the future is a payload error, never an item.
- ``author`` None for ``[deleted]``; text empty for ``[removed]``/``[deleted]``.
- ``engagement``: ``score``, ``num_comments`` and ``upvote_ratio_pct`` (the upvote ratio
  as a whole percentage, so that engagement stays integers).
- ``currencies``: coins the title and text name; when they name none, the subreddit's own
  coin if its name is one (r/Bitcoin -> BTC, r/solana -> SOL).
- Stickied (pinned) posts are marked ``stickied=True`` by the parser and left out by
  :meth:`RedditClient.new_posts` unless asked for: they are the moderators' daily threads
  and rules, pinned for days, whose titles say nothing about the market and whose comment
  counts would dominate the engagement weights.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from omc_pipelines.settings import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET
from omc_pipelines.sources.coins import extract_coins
from omc_pipelines.sources.html_text import squash
from omc_pipelines.sources.http import HttpSource, SourcePayloadError, SourceRefused
from omc_pipelines.sources.human import HumanItem, NotConfigured
from omc_pipelines.sources.payload import Payload

SOURCE = "reddit"
TOKEN_PATH = "/api/v1/access_token"
WEB_URL = "https://www.reddit.com"
APP_ID = "omc-pipelines"
APP_VERSION = "0.1.0"
MAX_LIMIT = 100
MAX_PAGES = 10  # Reddit serves about 1000 posts back through a listing; a guard against endless `after`
TOKEN_MARGIN = 60.0  # seconds before expiry when a token counts as expired
# A post dated before Reddit's first day (1970, when a time is zeroed) or in the future, past
# a clock's drift, is a wrong answer, not a post.
REDDIT_BEGAN = datetime(2005, 6, 23, tzinfo=timezone.utc)
CLOCK_SKEW = timedelta(minutes=5)
REFUSED = "Reddit refused access: API access needs approval"
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
_GONE = ("[deleted]", "[removed]")


class RedditRefused(SourceRefused):
    """Reddit said no: credentials rejected (401) or API access not approved (403)."""


def user_agent(username: str | None, platform: str = "python", app_id: str = APP_ID, version: str = APP_VERSION) -> str:
    """Reddit's required shape: ``<platform>:<app id>:<version> (by /u/<username>)``."""
    agent = f"{platform}:{app_id}:{version}"
    name = (username or "").strip().removeprefix("/u/").removeprefix("u/")
    return f"{agent} (by /u/{name})" if name else agent


def check_subreddit(name: str) -> str:
    if not isinstance(name, str) or not _SUBREDDIT.match(name.strip().removeprefix("r/")):
        raise ValueError(f"{name!r} is not a subreddit name")
    return name.strip().removeprefix("r/")


# --- the parser -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingPage:
    items: list[HumanItem]
    after: str | None


class _Payload(Payload):
    """Reddit's readers on top of the shared ones."""

    def json_number(self, value: Any, where: str) -> float:
        """Stricter than the shared ``number``: Reddit sends real JSON numbers, never strings,
        and finite ones (a score of infinity would break ``int()``)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where} is {value!r}, not a number")
        try:
            number = float(value)
        except OverflowError:  # an integer past float's range
            raise self.fail(f"{where} is too large") from None
        if not math.isfinite(number):
            raise self.fail(f"{where} is {value!r}, not a number")
        return number


def parse_post(data: Any, url: str = "/r/?/new.json", where: str = "post", now: datetime | None = None) -> HumanItem:
    """The ``data`` of one ``t3`` child; dated between Reddit's first day and ``now`` (the clock)."""
    p = _Payload(SOURCE, url)
    if not isinstance(data, dict):
        raise p.fail(f"{where} is not an object")
    post_id = p.text_or_empty(p.field(data, "id", where), f"{where}.id").strip()
    if not post_id:
        raise p.fail(f"{where}.id is empty")
    name = p.text_or_empty(data.get("name"), f"{where}.name").strip() or f"t3_{post_id}"  # " " is no key
    title = squash(p.text_or_empty(p.field(data, "title", where), f"{where}.title"))
    selftext = p.text_or_empty(data.get("selftext"), f"{where}.selftext").strip()
    if selftext in _GONE:
        selftext = ""
    subreddit = p.text_or_empty(data.get("subreddit"), f"{where}.subreddit")
    created = p.json_number(p.field(data, "created_utc", where), f"{where}.created_utc")
    try:
        published = datetime.fromtimestamp(created, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise p.fail(f"{where}.created_utc is {created!r}, not a time") from None
    latest = (now or datetime.now(timezone.utc)) + CLOCK_SKEW
    if not REDDIT_BEGAN <= published <= latest:
        raise p.fail(f"{where}.created_utc is {created:g} ({published:%Y-%m-%d %H:%M} UTC): "
                     f"{'in the future' if published > latest else 'before Reddit began'}")
    author = p.text_or_empty(data.get("author"), f"{where}.author").strip()
    permalink = p.text_or_empty(data.get("permalink"), f"{where}.permalink")
    link = p.text_or_empty(data.get("url"), f"{where}.url")
    is_self = data.get("is_self")
    if is_self is None:
        is_self = not link or "/comments/" in link
    engagement: dict[str, int] = {}
    for key in ("score", "num_comments"):
        if data.get(key) is not None:
            engagement[key] = int(p.json_number(data[key], f"{where}.{key}"))
    if data.get("upvote_ratio") is not None:
        ratio = p.json_number(data["upvote_ratio"], f"{where}.upvote_ratio")
        if not 0.0 <= ratio <= 1.0:
            raise p.fail(f"{where}.upvote_ratio is {ratio!r}, not between 0 and 1")
        engagement["upvote_ratio_pct"] = round(ratio * 100)
    text = selftext or ("" if is_self else link)
    coins = extract_coins(f"{title}\n{selftext}")
    if not coins and subreddit:
        coins = extract_coins(subreddit)
    return HumanItem(
        source=SOURCE,
        external_id=name,
        title=title,
        text=text,
        url=f"{WEB_URL}{permalink}" if permalink.startswith("/") else (permalink or link),
        author=None if not author or author in _GONE else author,
        published_at=published,
        currencies=tuple(coins),
        engagement=engagement,
        channel=subreddit or None,
        kind="self" if is_self else "link",
        stickied=bool(data.get("stickied")),
    )


def parse_listing(payload: Any, url: str = "/r/?/new.json", now: datetime | None = None) -> ListingPage:
    """``{"kind": "Listing", "data": {"after", "children": [{"kind": "t3", "data": {...}}]}}``.
    Children of other kinds (comments, ads) are skipped."""
    p = _Payload(SOURCE, url)
    if not isinstance(payload, dict) or payload.get("kind") != "Listing":
        raise p.fail("expected a Listing object")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise p.fail("Listing has no 'data' object")
    children = data.get("children")
    if not isinstance(children, list):
        raise p.fail("data has no 'children' list")
    items = []
    for i, child in enumerate(children):
        if not isinstance(child, dict):
            raise p.fail(f"children[{i}] is not an object")
        if child.get("kind") != "t3":
            continue
        items.append(parse_post(child.get("data"), url, f"children[{i}].data", now))
    after = data.get("after")
    if after is not None and not isinstance(after, str):
        raise p.fail("data.after is not a string")
    return ListingPage(items=items, after=after or None)


# --- the client -----------------------------------------------------------------------------


class RedditClient:
    """Application-only access to public listings. Holds the secret; never shows it."""

    def __init__(self, http: HttpSource, auth: HttpSource, client_id: str | None, client_secret: str | None,
                 username: str | None = None, *, clock: Callable[[], float] = time.monotonic):
        """``http`` reads the listings, ``auth`` asks for tokens (Reddit's two hosts)."""
        missing = tuple(name for name, value in ((REDDIT_CLIENT_ID, client_id), (REDDIT_CLIENT_SECRET, client_secret))
                        if not value)
        if missing:
            raise NotConfigured(SOURCE, missing)
        self.http, self.auth = http, auth
        # Every request declares the compliant agent, whatever the HttpSources were built with.
        self.user_agent = user_agent(username)
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.token_requests = 0  # how many tokens were asked for: a cached token is not asked again

    @classmethod
    def create(cls, api_url: str, auth_url: str, client_id: str | None, client_secret: str | None,
               username: str | None = None, *, timeout: float = 10.0, retries: int = 2, backoff: float = 0.5,
               rate_limit: float = 1.0) -> RedditClient:
        """A client with its own ``HttpSource`` for each host, sharing one rate budget (one source
        name); ``NotConfigured`` (before anything is built) without a client id and secret.
        Reddit allows about 100 queries a minute: the default rate is one a second."""
        missing = tuple(name for name, value in ((REDDIT_CLIENT_ID, client_id), (REDDIT_CLIENT_SECRET, client_secret))
                        if not value)
        if missing:
            raise NotConfigured(SOURCE, missing)
        manners = dict(timeout=timeout, retries=retries, backoff=backoff, rate_limit=rate_limit,
                       headers={"User-Agent": user_agent(username)})
        return cls(HttpSource(SOURCE, api_url, **manners), HttpSource(SOURCE, auth_url, **manners), client_id,
                   client_secret, username)

    def __repr__(self) -> str:
        return f"RedditClient(api_url={self.http.base_url!r}, auth_url={self.auth.base_url!r}, client_id=***, secret=***)"

    def __enter__(self) -> RedditClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    # --- the token ----------------------------------------------------------------------

    def token(self) -> str:
        """A valid bearer token: the cached one, or a new one."""
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._token, lifetime = self._request_token()
                self._expires = self._clock() + max(0.0, lifetime - TOKEN_MARGIN)
            return self._token

    def forget_token(self) -> None:
        with self._lock:
            self._token, self._expires = None, 0.0

    def _request_token(self) -> tuple[str, float]:
        self.token_requests += 1
        url = self.auth.shown_url(TOKEN_PATH)
        try:
            response = self.auth.post_form(TOKEN_PATH, {"grant_type": "client_credentials"},
                                           auth=(self._client_id, self._secret), headers={"User-Agent": self.user_agent})
        except SourceRefused as exc:
            refused = exc
        else:
            return self._read_token(self.auth.decode_json(response, TOKEN_PATH), url)
        # Raised outside the except block, so that the layer's error is not chained to this one.
        if refused.status in (400, 401):
            raise RedditRefused(SOURCE, url, f"Reddit rejected the client credentials (HTTP {refused.status}): check "
                                             f"{REDDIT_CLIENT_ID} and {REDDIT_CLIENT_SECRET}", refused.status)
        if refused.status == 403:
            raise RedditRefused(SOURCE, url, f"{REFUSED} (HTTP 403 on the token request)", 403)
        raise refused

    @staticmethod
    def _read_token(body: Any, url: str) -> tuple[str, float]:
        if not isinstance(body, dict):
            raise SourcePayloadError(SOURCE, url, "token answer is not a JSON object")
        if body.get("error") is not None:
            # Reddit answers some refusals 200 {"error": "invalid_grant"}; the error code is safe to show.
            error = body["error"] if isinstance(body["error"], (str, int)) else "error"
            raise RedditRefused(SOURCE, url, f"Reddit refused the token request ({error})", 200)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SourcePayloadError(SOURCE, url, "token answer has no access_token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)):
            lifetime = 3600.0
        return token, float(lifetime)

    # --- listings ------------------------------------------------------------------------

    def _listing(self, path: str, params: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            headers = {"Authorization": f"bearer {self.token()}", "User-Agent": self.user_agent}
            try:
                return self.http.decode_json(self.http.get(path, params, headers), path, params)
            except SourceRefused as exc:
                refused = exc
            if refused.status == 401 and attempt == 1:
                self.forget_token()  # expired or revoked: one new token, one more try
                continue
            # Raised outside the except block: inside it, Python would chain the layer's error to
            # this one as __context__ (and so, had it any, the httpx error holding the bearer token).
            if refused.status == 401:
                raise RedditRefused(SOURCE, refused.url, "Reddit refused a fresh token (HTTP 401)", 401)
            if refused.status == 403:
                raise RedditRefused(SOURCE, refused.url, f"{REFUSED} (HTTP 403; or the subreddit is private or quarantined)", 403)
            raise refused
        raise AssertionError("unreachable")

    def pages(self, subreddit: str, *, limit: int = MAX_LIMIT, after: str | None = None,
              max_pages: int = 1) -> Iterator[ListingPage]:
        """Pages of ``/r/{sub}/new``, newest first, following ``after`` up to ``max_pages``."""
        sub = check_subreddit(subreddit)
        path = f"/r/{sub}/new.json"
        for _ in range(max(1, min(max_pages, MAX_PAGES))):
            params: dict[str, Any] = {"limit": max(1, min(limit, MAX_LIMIT)), "raw_json": 1}
            if after:
                params["after"] = after
            page = parse_listing(self._listing(path, params), self.http.shown_url(path, params))
            yield page
            if not page.after or not page.items:
                return
            after = page.after

    def new_posts(self, subreddit: str, *, limit: int = MAX_LIMIT, max_pages: int = 1, since: datetime | None = None,
                  include_stickied: bool = False) -> list[HumanItem]:
        """New posts of a subreddit, newest first. Paging stops at the first page that
        reaches back to ``since`` (inclusive). Stickied posts are left out unless asked for
        (they are pinned, so they say nothing about "new" and are skipped by the ``since`` test too)."""
        seen: dict[str, HumanItem] = {}
        for page in self.pages(subreddit, limit=limit, max_pages=max_pages):
            fresh = [item for item in page.items if not item.stickied]
            for item in page.items:
                if item.stickied and not include_stickied:
                    continue
                if since is None or item.published_at >= since:
                    seen.setdefault(item.external_id, item)
            if since is not None and any(item.published_at < since for item in fresh):
                break
        return list(seen.values())
