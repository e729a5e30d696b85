"""CoinSpot's announcements (its Zendesk Help Centre): three ways in, pure parsers, a classifier.

The paths, tried in this order by :class:`CoinSpotAnnouncements`:

1. ``api``: the Help Center API, ``GET /api/v2/help_center/{locale}/categories/{id}/articles.json``
   sorted by ``created_at`` descending, paged with ``page``/``next_page`` (offset, the
   default) or ``page[size]``/``meta.has_more``/``links.next`` (cursor), and only as far
   as ``since`` and ``limit`` need. Drafts are skipped.
2. ``html``: the category page ``/hc/{locale}/categories/{id}`` read with CSS selectors
   over an HTML5 parser (selectolax), ``li.article-list-item a.article-list-link``, plus
   the first page of every section its "See all" links lead to, then each needed article
   page (``/hc/{locale}/articles/{id}``) for the time and the body. When the API is
   refused (anonymous access off, a firewall).
3. ``browser``: the same pages through a real Chromium (Playwright's sync API, imported
   only here), when the HTML answer is a bot challenge (or a 403, which may be one) or the
   list is rendered by JavaScript: what a browser gets past. A help centre that answers
   the HTML path badly (5xx, throttling, a timeout, an answer too large or malformed) is
   not asked again by a browser, which would only read the same bad answer, slowly. Each
   page the browser reads has a deadline (``DEADLINE_TIMEOUTS`` times its timeout) within
   the client's budget, and a size cap (the HTTP layer's ``max_bytes``): a page past it is
   never laid out or read back. Article pages are asked first as plain requests through
   the HTTP layer, with the browser's cookies. The rendered DOM goes through the same parsers.

Any :class:`SourceError` on one path (refused, throttled after the retries, unavailable,
a payload not in the documented shape, no list in the page) moves on to the next; the
paths that failed and why are kept (``Fetched.failures``), and when every path fails
:class:`AnnouncementsUnavailable` names each with its reason. Programming errors are not
swallowed. Zendesk's ids are positive integers: an article or section id of zero or less
is a payload error.

Times on the HTML paths. The list pages carry no dates, so each article page is read:
its ``<time datetime>`` elements (Zendesk themes render ``created_at``, and ``edited_at``
when the article was edited); ``created_at`` is the earliest of them, ``updated_at`` the
latest when there are two. A theme that shows only the edit time makes ``created_at``
late, never early. A page with no ``<time datetime>`` at all is dated by the detection
time (the client's clock) and says so in ``Article.dated_from == "detected"``. Article
pages are read newest id first (Zendesk's ids grow with time; promoted old articles head
the lists but not this order) and reading stops at ``limit`` or at the first article
older than ``since``.

``since`` is inclusive on every path: an article created exactly at ``since`` is returned
again, and the idempotent upsert downstream makes that harmless, where a strict bound
would lose a second article published in the same second.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import html as htmllib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

from omc_pipelines.sources.coins import NOT_COINS, extract_coins
from omc_pipelines.sources.html_text import html_to_text, parse_html
from omc_pipelines.sources.http import (
    DEADLINE_TIMEOUTS,
    HttpSource,
    SourceError,
    SourcePayloadError,
    SourceRefused,
    SourceUnavailable,
    safe_url,
)
from omc_pipelines.sources.payload import Payload, parse_utc

SOURCE = "zendesk"
DEFAULT_CATEGORY = "115000579994"  # CoinSpot's "Announcements"; settings.DEFAULT_ZENDESK_CATEGORY
DEFAULT_LOCALE = "en-us"
PATHS = ("api", "html", "browser")
MAX_PER_PAGE = 100
MAX_PAGES = 50  # a guard against a next link that never ends
MAX_SECTIONS = 20
LIST_SELECTOR = "li.article-list-item a.article-list-link"
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run")


@dataclass(frozen=True)
class Article:
    id: int
    title: str
    url: str
    body_html: str | None
    created_at: datetime  # aware, UTC
    updated_at: datetime | None
    section_id: int | None
    labels: tuple[str, ...] = ()
    # Where created_at comes from: "api"; "page" (the article page's <time datetime>);
    # "detected" (the page had no time: the moment this client saw it).
    dated_from: str = "api"


@dataclass(frozen=True)
class ListedArticle:
    """One entry of an HTML article list: no time, no body."""

    id: int
    title: str
    url: str
    section_id: int | None = None


@dataclass(frozen=True)
class ArticleList:
    """What an HTML list page offers: its articles, the sections to see all of, the next page;
    whether it is a bot challenge, and whether it carries a script (that may render a list)."""

    articles: list[ListedArticle]
    section_urls: list[str]
    next_url: str | None
    challenge: bool
    scripted: bool = False


@dataclass(frozen=True)
class ArticlePage:
    title: str | None
    created_at: datetime | None
    updated_at: datetime | None
    body_html: str | None


@dataclass(frozen=True)
class PathFailure:
    path: str  # "api", "html" or "browser"
    reason: str


@dataclass(frozen=True)
class Fetched:
    articles: list[Article]  # newest first
    path_used: str
    failures: tuple[PathFailure, ...] = ()  # the paths tried before, and why they failed


class AnnouncementsUnavailable(SourceUnavailable):
    """Every path to the announcements failed; ``failures`` says which and why."""

    def __init__(self, source: str, url: str, reason: str, failures: Sequence[PathFailure] = ()):
        self.failures = tuple(failures)
        super().__init__(source, url, reason)

    @classmethod
    def from_failures(cls, source: str, url: str, failures: Sequence[PathFailure]) -> AnnouncementsUnavailable:
        tried = "; ".join(f"{f.path}: {f.reason}" for f in failures) or "no path enabled"
        return cls(source, url, f"every path failed ({tried})", failures)

    def __reduce__(self):
        return (self.__class__, (self.source, self.url, self.reason, self.failures))


class _PathFailed(Exception):
    """A path could not answer for a reason that is not an HTTP error (no list, a challenge)."""


class _BrowserMayPass(_PathFailed):
    """The HTML path met what a browser gets past: a bot challenge (or a 403, which may be
    one) or a list that only a script renders."""


NOT_TRIED = "not tried: a browser gets past a bot challenge and renders a list, not what stopped the HTML path"
# The page's outer HTML, or only its length when that is past the cap (read in the page, not here).
_CAPPED_HTML = "(root, cap) => { const html = root.outerHTML; return html.length > cap ? html.length : html; }"


# --- the API's payloads ------------------------------------------------------------------


class _Payload(Payload):
    """Zendesk's readers on top of the shared ones (``time`` among them)."""

    def field(self, obj: Any, name: str, where: str) -> Any:
        value = super().field(obj, name, where)
        if value is None:  # Zendesk sends null for a field it has no value for
            raise self.fail(f"{where} has no {name!r}")
        return value

    def positive_id(self, value: Any, where: str) -> int:
        """A Zendesk id: a positive integer, sent as a number or its digits."""
        if isinstance(value, bool):
            raise self.fail(f"{where} is a boolean, not an id")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        else:
            raise self.fail(f"{where} is {value!r}, not an integer id")
        if number < 1:
            raise self.fail(f"{where} is {value!r}, not a positive id")
        return number

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where} is {value!r}, not a non-empty string")
        return value.strip()


def parse_article(p: _Payload, row: Any, where: str) -> Article | None:
    """One API article; ``None`` for a draft (the anonymous API hides them; a token would not)."""
    if not isinstance(row, dict):
        raise p.fail(f"{where} is not an object")
    if row.get("draft") is True:
        return None
    title = row.get("title") if row.get("title") is not None else row.get("name")
    if title is None:
        raise p.fail(f"{where} has no 'title'")
    body = row.get("body")
    if body is not None and not isinstance(body, str):
        raise p.fail(f"{where}.body is a {type(body).__name__}, not HTML text")
    updated = row.get("updated_at")
    section = row.get("section_id")
    labels = row.get("label_names") or []
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise p.fail(f"{where}.label_names is not a list of strings")
    return Article(
        id=p.positive_id(p.field(row, "id", where), f"{where}.id"),
        title=p.text(title, f"{where}.title"),
        url=p.text(p.field(row, "html_url", where), f"{where}.html_url"),
        body_html=body,
        created_at=p.time(p.field(row, "created_at", where), f"{where}.created_at"),
        updated_at=None if updated is None else p.time(updated, f"{where}.updated_at"),
        section_id=None if section is None else p.positive_id(section, f"{where}.section_id"),
        labels=tuple(labels),
        dated_from="api",
    )


def parse_articles_page(payload: Any, url: str) -> tuple[list[Article], str | None]:
    """One page of a Help Center article list: its published articles, in the order
    given, and the URL of the next page (``None`` on the last).

    Offset paging names the next page in ``next_page``; cursor paging in ``links.next``
    while ``meta.has_more``, and where a response carries only ``meta.after_cursor`` the
    next URL is this one with ``page[after]`` set to it.
    """
    p = _Payload(SOURCE, url)
    if not isinstance(payload, dict):
        raise p.fail(f"expected a JSON object, got {type(payload).__name__}")
    rows = p.field(payload, "articles", "body")
    if not isinstance(rows, list):
        raise p.fail("articles is not a list")
    articles = [a for i, row in enumerate(rows) if (a := parse_article(p, row, f"articles[{i}]")) is not None]
    return articles, _next_url(p, payload, url)


def _next_url(p: _Payload, payload: dict, url: str) -> str | None:
    meta = payload.get("meta")
    if isinstance(meta, dict) and "has_more" in meta:
        if not meta["has_more"]:
            return None
        links = payload.get("links") if isinstance(payload.get("links"), dict) else {}
        if isinstance(links.get("next"), str) and links["next"]:
            return links["next"]
        cursor = meta.get("after_cursor")
        if not isinstance(cursor, str) or not cursor:
            raise p.fail("meta.has_more is true but there is neither links.next nor meta.after_cursor")
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "page[after]"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("page[after]", cursor)])))
    next_page = payload.get("next_page")
    if next_page is None or next_page == "":
        return None
    if not isinstance(next_page, str):
        raise p.fail(f"next_page is {next_page!r}, not a URL")
    return next_page


# --- the HTML pages ----------------------------------------------------------------------

_ARTICLE_HREF = re.compile(r"/articles/([1-9]\d*)(?:[-/?#]|$)")  # ids are positive
_SECTION_HREF = re.compile(r"/sections/([1-9]\d*)(?:[-/?#]|$)")
_CHALLENGE_TITLES = ("just a moment", "attention required", "checking your browser", "ddos-guard",
                     "please wait while we verify", "security check")
# Only what interstitials carry: Cloudflare also injects /cdn-cgi/challenge-platform/... scripts
# and Turnstile widgets (cf-chl-...) into ordinary pages, so those do not count.
_CHALLENGE_MARKERS = ("window._cf_chl_opt", "cf-browser-verification", "id=\"challenge-form\"",
                      "id=\"challenge-running\"")


def is_bot_challenge(html: str, title: str | None = None) -> bool:
    """A bot-protection interstitial (Cloudflare's "Just a moment...", and the like)."""
    if title is None:
        match = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
        title = match.group(1) if match else ""
    title = " ".join(htmllib.unescape(title).split()).lower()
    return any(title.startswith(t) for t in _CHALLENGE_TITLES) or any(m in html for m in _CHALLENGE_MARKERS)


def _link_entries(tree: LexborHTMLParser) -> tuple[list[tuple[str, str, int | None]], list[str], str | None]:
    """Every link in document order, sorted into ``li.article-list-item a.article-list-link``
    entries (href, title, the section above them), "See all" section links (``a.see-all-articles``)
    and the pagination's next link (``rel="next"`` or inside ``li.pagination-next``). Any other
    link to a section (a heading, a breadcrumb) makes the entries below it that section's."""
    in_item = {a.mem_id for a in tree.css(LIST_SELECTOR)}
    next_links = {a.mem_id for a in tree.css('a[rel~="next"], li.pagination-next a')}
    entries: list[tuple[str, str, int | None]] = []
    section_hrefs: list[str] = []
    next_href: str | None = None
    section: int | None = None
    for link in tree.css("a"):
        href = link.attributes.get("href") or ""
        classes = (link.attributes.get("class") or "").split()
        if link.mem_id in in_item:
            entries.append((href, " ".join(link.text().split()), section))
        elif "see-all-articles" in classes and href:
            section_hrefs.append(href)
        elif link.mem_id in next_links and href and next_href is None:
            next_href = href
        elif (found := _SECTION_HREF.search(href)) is not None:
            section = int(found.group(1))
    return entries, section_hrefs, next_href


def parse_article_list(html: str, url: str) -> ArticleList:
    """An HTML category or section page. Links come back absolute (against ``url``)."""
    tree = parse_html(html)
    entries, section_hrefs, next_href = _link_entries(tree)
    title = tree.css_first("title")
    p = _Payload(SOURCE, url)

    def absolute(href: str, where: str) -> str:
        try:
            return urljoin(url, href)
        except ValueError:  # "http://[::1": urllib refuses a broken host
            raise p.fail(f"{where} href {href!r} is not a URL") from None

    articles: dict[int, ListedArticle] = {}
    for i, (href, text, section) in enumerate(entries):
        where = f"{LIST_SELECTOR}[{i}]"
        match = _ARTICLE_HREF.search(href)
        if not match:
            raise p.fail(f"{where} href {href!r} names no article id")
        if not text:
            raise p.fail(f"{where} has no title text")
        article_id = int(match.group(1))
        articles.setdefault(article_id, ListedArticle(article_id, text, absolute(href, where), section))
    return ArticleList(
        articles=list(articles.values()),
        section_urls=list(dict.fromkeys(absolute(h, "a.see-all-articles") for h in section_hrefs)),
        next_url=absolute(next_href, "the next page link") if next_href else None,
        challenge=not articles and is_bot_challenge(html, title.text() if title is not None else ""),
        scripted=tree.css_first("script") is not None,
    )


def parse_article_page(html: str, url: str) -> ArticlePage:
    """An article page: its title (the first ``h1`` with text), times (``time[datetime]``) and
    body (the inner HTML of the first ``div.article-body``, as the HTML parser serialises it);
    times and headings inside the body are the article's text, not its dates or title. A
    ``<time datetime>`` that is not an ISO time is a payload error naming it; a page with no
    time gives ``created_at=None``."""
    tree = parse_html(html)
    body = tree.css_first("div.article-body")
    inside = set() if body is None else {node.mem_id for node in body.css("time, h1")}
    p = _Payload(SOURCE, url)
    times = []
    for i, value in enumerate(t.attributes.get("datetime") for t in tree.css("time[datetime]")
                              if t.mem_id not in inside and t.attributes.get("datetime")):
        when = parse_utc(value)
        if when is None:
            raise p.fail(f"time[datetime][{i}] is {value!r}, not an ISO time")
        times.append(when)
    headings = (" ".join(h.text().split()) for h in tree.css("h1") if h.mem_id not in inside)
    body_html = (body.inner_html or "").strip() if body is not None else ""
    return ArticlePage(
        title=next((h for h in headings if h), None),
        created_at=min(times) if times else None,
        updated_at=max(times) if len(times) > 1 and max(times) > min(times) else None,
        body_html=body_html or None,
    )


# --- the client --------------------------------------------------------------------------


def _check_bounds(since: datetime | None, limit: int) -> None:
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be an aware datetime (UTC)")
    if limit < 1:
        raise ValueError("limit must be at least 1")


class HelpCenterApi:
    """The Help Center API path: one category's articles, newest first."""

    def __init__(self, http: HttpSource, category: str | int = DEFAULT_CATEGORY, *, locale: str = DEFAULT_LOCALE,
                 per_page: int = 30, paging: str = "offset"):
        if paging not in ("offset", "cursor"):
            raise ValueError("paging must be 'offset' or 'cursor'")
        self.http, self.category, self.locale = http, str(category), locale
        self.per_page, self.paging = max(1, min(per_page, MAX_PER_PAGE)), paging

    @property
    def path(self) -> str:
        return f"/api/v2/help_center/{self.locale}/categories/{self.category}/articles.json"

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        """The newest ``limit`` articles created at or after ``since``; pages only as far as needed."""
        _check_bounds(since, limit)
        size = min(self.per_page, limit)
        params: dict[str, Any] = {"sort_by": "created_at", "sort_order": "desc"}
        params.update({"per_page": size} if self.paging == "offset" else {"page[size]": size})
        path, found, seen_pages, ids = self.path, [], set(), set()
        for _ in range(MAX_PAGES):
            shown = self.http.shown_url(path, params)
            articles, next_url = parse_articles_page(self.http.get_json(path, params), shown)
            for article in articles:
                if since is not None and article.created_at < since:
                    return found
                if article.id not in ids:  # offset pages shift when an article is published meanwhile
                    ids.add(article.id)
                    found.append(article)
                if len(found) >= limit:
                    return found
            if next_url is None:
                return found
            path, params = _relative(self.http, next_url)
            page_key = (path, tuple(sorted(params.items())))
            if page_key in seen_pages:
                raise SourcePayloadError(SOURCE, shown, "malformed payload: the next page link repeats itself")
            seen_pages.add(page_key)
        return found


def _relative(http: HttpSource, url: str) -> tuple[str, dict[str, str]]:
    """A link the source gave, as a path and parameters under the configured base URL:
    the host in a link is the upstream's own, which a proxy or the sandbox stands in for."""
    parts = urlsplit(url)
    path = parts.path or "/"
    base_path = urlsplit(http.base_url).path.rstrip("/")
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path):]
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))


# A fetcher reads one page: a list page (raising _PathFailed when it holds no list) or
# an article page (None when it is gone).
ListFetcher = Callable[[str], ArticleList]
PageFetcher = Callable[[str], "ArticlePage | None"]


def _collect(category_url: str, read_list: ListFetcher, read_article: PageFetcher, since: datetime | None,
             limit: int, now: Callable[[], datetime]) -> list[Article]:
    """The HTML paths' shared walk: the category page, the sections it links to, then
    article pages newest id first until ``limit`` or ``since``."""
    listing = read_list(category_url)
    found: dict[int, ListedArticle] = {a.id: a for a in listing.articles}
    for section_url in listing.section_urls[:MAX_SECTIONS]:
        for item in read_list(section_url).articles:
            if item.id not in found or found[item.id].section_id is None:
                found[item.id] = item
    articles: list[Article] = []
    for item in sorted(found.values(), key=lambda a: a.id, reverse=True):
        if len(articles) >= limit:
            break
        page = read_article(item.url)
        if page is None:
            continue  # removed between the list and now
        created = page.created_at or now().astimezone(timezone.utc)
        if since is not None and created < since:
            break
        articles.append(Article(
            id=item.id, title=item.title or page.title or "", url=item.url, body_html=page.body_html,
            created_at=created, updated_at=page.updated_at, section_id=item.section_id, labels=(),
            dated_from="page" if page.created_at else "detected",
        ))
    articles.sort(key=lambda a: (a.created_at, a.id), reverse=True)
    return articles


class HelpCenterPages:
    """The HTML path: the help centre's own pages over the shared HTTP layer."""

    def __init__(self, http: HttpSource, category: str | int = DEFAULT_CATEGORY, *, locale: str = DEFAULT_LOCALE,
                 now: Callable[[], datetime] | None = None):
        self.http, self.category, self.locale = http, str(category), locale
        self.now = now or (lambda: datetime.now(timezone.utc))

    @property
    def category_url(self) -> str:
        return f"{self.http.base_url}/hc/{self.locale}/categories/{self.category}"

    def _get_html(self, url: str) -> tuple[str, str]:
        path, params = _relative(self.http, url)
        try:
            response = self.http.get(path, params or None, headers={"Accept": HTML_ACCEPT})
        except SourceRefused as exc:
            if exc.status != 403:
                raise
            # The HTTP layer keeps no body: a challenge cannot be told from a block here.
            raise _BrowserMayPass(f"{exc} (a bot challenge or a block; a browser may pass)") from None
        return response.text, self.http.shown_url(path, params or None)

    def read_list(self, url: str) -> ArticleList:
        text, shown = self._get_html(url)
        listing = parse_article_list(text, str(urljoin(self.http.base_url + "/", url)))
        if listing.challenge:
            raise _BrowserMayPass(f"a bot challenge answered {shown}")
        if not listing.articles and not listing.section_urls:
            if not listing.scripted:  # an error page, or a page cut short: nothing for a browser to run
                raise _PathFailed(f"no {LIST_SELECTOR} in the HTML of {shown}, and no script to render one")
            raise _BrowserMayPass(f"no {LIST_SELECTOR} in the raw HTML of {shown} (rendered by JavaScript?)")
        return listing

    def read_article(self, url: str) -> ArticlePage | None:
        try:
            text, shown = self._get_html(url)
        except SourceRefused as exc:
            if exc.status in (404, 410):
                return None
            raise
        if is_bot_challenge(text):
            raise _BrowserMayPass(f"a bot challenge answered {shown}")
        return parse_article_page(text, shown)

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        _check_bounds(since, limit)
        return _collect(self.category_url, self.read_list, self.read_article, since, limit, self.now)


class HelpCenterBrowser:
    """The browser path: the same pages rendered by a real Chromium.

    ``browser`` (a Playwright ``Browser``) is used as given and left open, so that a
    long-lived caller or a test module launches Chromium once; without it each call
    launches ``browser_path`` and closes it. ``http`` is the client's HTTP layer: its base
    URL, budget and size cap hold here too, and article pages are asked through it first.
    """

    def __init__(self, http: HttpSource, category: str | int = DEFAULT_CATEGORY, *, locale: str = DEFAULT_LOCALE,
                 browser_path: str = "/usr/bin/chromium", browser: Any = None, timeout: float = 20.0,
                 now: Callable[[], datetime] | None = None):
        self.http, self.category, self.locale = http, str(category), locale
        self.browser_path, self.browser, self.timeout = browser_path, browser, timeout
        self.deadline = DEADLINE_TIMEOUTS * timeout  # of one page, as of one HTTP request
        self.now = now or (lambda: datetime.now(timezone.utc))

    @property
    def category_url(self) -> str:
        return f"{self.http.base_url}/hc/{self.locale}/categories/{self.category}"

    @contextlib.contextmanager
    def _browser(self) -> Iterator[Any]:
        if self.browser is not None:
            yield self.browser
            return
        if not Path(self.browser_path).exists():
            raise _PathFailed(f"no browser at {self.browser_path}")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise _PathFailed("the playwright package is not installed") from None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=self.browser_path, headless=True, args=list(CHROMIUM_ARGS),
                timeout=self.timeout * 1000,
            )
            try:
                yield browser
            finally:
                browser.close()

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        _check_bounds(since, limit)
        if self.browser is not None:
            return self._latest(since, limit)  # Playwright's objects belong to the thread that made them
        # A browser of our own runs in a thread of its own: Playwright's sync API refuses a
        # thread where an event loop runs (an async caller, another sync Playwright).
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="omc-browser") as pool:
            return pool.submit(self._latest, since, limit).result()

    def _latest(self, since: datetime | None, limit: int) -> list[Article]:
        try:
            from playwright.sync_api import Error as PlaywrightError
        except ImportError:
            raise _PathFailed("the playwright package is not installed") from None
        try:
            with self._browser() as browser:
                # A headless Chromium says "HeadlessChrome" in its user agent, which bot
                # filters look for first; it says what a desktop Chrome says instead.
                agent = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         f"Chrome/{browser.version} Safari/537.36")
                context = browser.new_context(user_agent=agent, locale="en-AU")
                try:
                    # Pictures, fonts and media tell nothing and cost a round trip each.
                    context.route("**/*", lambda route: route.abort() if route.request.resource_type in
                                  ("image", "font", "media") else route.continue_())
                    page = context.new_page()
                    page.set_default_timeout(self.timeout * 1000)
                    return _collect(self.category_url, lambda url: self._read_list(page, url),
                                    lambda url: self._read_article(page, url, agent), since, limit, self.now)
                finally:
                    context.close()
        except PlaywrightError as exc:
            message = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise _PathFailed(f"{exc.__class__.__name__}: {message[:300]}") from None

    def _ends(self) -> tuple[float, str]:
        """When the page about to be read must be done, and what to say when it is not: its
        deadline, or the client's budget when that ends first."""
        now, left = self.http.clock(), self.http.budget_left()
        if left is not None and left < self.deadline:
            return now + left, f"the {self.http.budget:g} s budget ran out"
        return now + self.deadline, f"no whole page within the {self.deadline:g} s deadline"

    def _wait_ms(self, ends: float) -> float:
        """A wait's timeout: the timeout, cut to what is left before ``ends`` (a timeout when nothing is)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        left = ends - self.http.clock()
        if left <= 0:
            raise PlaywrightTimeout("nothing left of the page's time")
        return min(self.timeout, left) * 1000

    def _open(self, page: Any, url: str, selector: str, what: str) -> str | None:
        """Go to ``url`` and wait until ``selector`` is in the DOM, through a challenge's
        reload and a script's rendering; the rendered HTML, or None for a 404. Within the
        page's deadline and the client's budget; a page past the size cap is never read."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        ends, late = self._ends()
        try:
            response = page.goto(url, wait_until="domcontentloaded", timeout=self._wait_ms(ends))
            status = response.status if response is not None else 200
            if status in (404, 410):
                return None
            if response is not None:
                self._check_size(response.request.sizes()["responseBodySize"], "bytes", url)
            # The answer's own body, not the DOM: a challenge page may be reloading already.
            if status >= 400 and not is_bot_challenge(response.text()):
                raise _PathFailed(f"HTTP {status} for {safe_url(url)}")
            try:
                page.wait_for_selector(selector, state="attached", timeout=self._wait_ms(ends))
            except PlaywrightTimeout:
                challenged = is_bot_challenge(self._html(page, url, ends))
                why = "a bot challenge that did not let the browser through" if challenged else f"no {what}"
                raise _PathFailed(f"{why} at {safe_url(url)} after {self.timeout:g} s") from None
            page.wait_for_load_state("domcontentloaded", timeout=self._wait_ms(ends))
            return self._html(page, url, ends)
        except PlaywrightTimeout:
            raise _PathFailed(f"took too long: {late} ({safe_url(url)})") from None

    def _check_size(self, size: int, unit: str, url: str) -> None:
        if size > self.http.max_bytes:
            raise _PathFailed(f"a page of {size:,} {unit} is over the {self.http.max_bytes:,}-{unit[:-1]} limit "
                              f"(max_bytes); not read ({safe_url(url)})")

    def _html(self, page: Any, url: str, ends: float) -> str:
        """The page's rendered HTML, measured in the page before any of it is read back."""
        html = page.locator("html").evaluate(_CAPPED_HTML, self.http.max_bytes, timeout=self._wait_ms(ends))
        if isinstance(html, int):
            self._check_size(html, "characters", url)
        return html

    def _read_list(self, page: Any, url: str) -> ArticleList:
        content = self._open(page, url, f"{LIST_SELECTOR}, a.see-all-articles", "article list")
        if content is None:
            raise _PathFailed(f"HTTP 404 for {safe_url(url)}")
        return parse_article_list(content, page.url)

    def _read_article(self, page: Any, url: str, agent: str) -> ArticlePage | None:
        # First as a plain request through the HTTP layer (its deadline, budget and size cap)
        # with the browser's cookies, a challenge's clearance among them, and its user agent:
        # a tenth of a page load. Rendered in the page only when that answer is a 403 or a
        # challenge, or carries neither time nor body.
        path, params = _relative(self.http, url)
        cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies(url))
        headers = {"Accept": HTML_ACCEPT, "User-Agent": agent, **({"Cookie": cookies} if cookies else {})}
        text = None
        try:
            text = self.http.get(path, params or None, headers=headers).text
        except SourceRefused as exc:
            if exc.status in (404, 410):
                return None
            if exc.status != 403:
                raise
        if text is not None and not is_bot_challenge(text):
            parsed = parse_article_page(text, url)
            if parsed.created_at is not None or parsed.body_html is not None:
                return parsed
        content = self._open(page, url, "time[datetime], div.article-body", "article time or body")
        return None if content is None else parse_article_page(content, page.url)


class CoinSpotAnnouncements:
    """CoinSpot's announcements by the first path that answers: API, HTML, browser.

        client = CoinSpotAnnouncements(HttpSource("zendesk", settings.zendesk_url), settings.zendesk_category,
                                       settings.browser_path)
        fetched = client.fetch(since=cursor, limit=50)   # fetched.articles, fetched.path_used
    """

    def __init__(self, http: HttpSource, category: str | int = DEFAULT_CATEGORY,
                 browser_path: str = "/usr/bin/chromium", *, locale: str = DEFAULT_LOCALE,
                 paths: Sequence[str] = PATHS, per_page: int = 30, paging: str = "offset",
                 browser: Any = None, browser_timeout: float = 20.0, now: Callable[[], datetime] | None = None):
        unknown = [p for p in paths if p not in PATHS]
        if unknown:
            raise ValueError(f"unknown paths {unknown}; known: {', '.join(PATHS)}")
        self.http, self.paths = http, tuple(paths)
        self.api = HelpCenterApi(http, category, locale=locale, per_page=per_page, paging=paging)
        self.pages = HelpCenterPages(http, category, locale=locale, now=now)
        self.browser = HelpCenterBrowser(http, category, locale=locale, browser_path=browser_path,
                                         browser=browser, timeout=browser_timeout, now=now)
        self.path_used: str | None = None
        self.failures: tuple[PathFailure, ...] = ()

    def __enter__(self) -> CoinSpotAnnouncements:
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()

    def fetch(self, since: datetime | None = None, limit: int = 100) -> Fetched:
        """The newest ``limit`` announcements created at or after ``since``, newest first,
        by the first path that answers. Raises :class:`AnnouncementsUnavailable` when none does."""
        _check_bounds(since, limit)
        readers = {"api": self.api, "html": self.pages, "browser": self.browser}
        failures: list[PathFailure] = []
        browser_may_pass = True  # until the HTML path says otherwise
        for name in self.paths:
            if name == "browser" and not browser_may_pass:
                failures.append(PathFailure(name, NOT_TRIED))
                continue
            try:
                articles = readers[name].latest(since, limit)
            except (SourceError, _PathFailed) as exc:
                failures.append(PathFailure(name, str(exc)))
                if name == "html":
                    browser_may_pass = isinstance(exc, _BrowserMayPass)
                continue
            self.path_used, self.failures = name, tuple(failures)
            return Fetched(articles, name, tuple(failures))
        self.path_used, self.failures = None, tuple(failures)
        raise AnnouncementsUnavailable.from_failures(self.http.name, self.pages.category_url, failures)

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        """:meth:`fetch`'s articles; ``path_used`` and ``failures`` say how they came."""
        return self.fetch(since, limit).articles


def fetch_announcements(http: HttpSource, category: str | int = DEFAULT_CATEGORY,
                        browser_path: str = "/usr/bin/chromium", *, since: datetime | None = None,
                        limit: int = 100, **options: Any) -> Fetched:
    """One-shot :meth:`CoinSpotAnnouncements.fetch`."""
    return CoinSpotAnnouncements(http, category, browser_path, **options).fetch(since, limit)


# --- the classifier ----------------------------------------------------------------------

KINDS = ("listing", "delisting", "maintenance", "trading_change", "other")
# How much an announcement can move a price, 1..10: a new listing is the catalyst the
# ledger exists for; a delisting moves the coin too (down, and less: it is expected);
# a trading change moves liquidity; maintenance rarely moves prices; features do not.
IMPACT = {"listing": 9, "delisting": 7, "trading_change": 5, "maintenance": 3, "other": 1}


@dataclass(frozen=True)
class Classification:
    kind: str
    impact: int
    currencies: list[str] = field(default_factory=list)
    matched: str = ""  # the words that decided the kind, for whoever has to check it


_WORD = re.compile(r"[a-z0-9]+(?:['\u2019][a-z]+)?")


def _words(text: str) -> list[str]:
    return [w.replace("\u2019", "'") for w in _WORD.findall(text.lower())]


def _phrases(*texts: str) -> list[tuple[str, ...]]:
    return [tuple(t.split()) for t in texts]


_DELIST = frozenset({"delist", "delists", "delisted", "delisting", "delistings"})
_RELIST = frozenset({"relist", "relists", "relisted", "relisting", "relistings"})
# "listing" alone is not enough ("listing policy", "listing fees"); these are.
_LISTING = _phrases(
    "new coin listing", "new coin listings", "new token listing", "new token listings", "new listing",
    "new listings", "coin listing", "coin listings", "token listing", "listing of", "now listed",
    "been listed", "we have listed", "we've listed", "newly listed", "listed on coinspot", "new coin", "new coins",
)
_LISTING_COLON = re.compile(r"(?<![a-z])listings?\s*:", re.IGNORECASE)  # "Listing: Foo (FOO)"
# Only with a coin named and no feature word: "Recurring buys are now available" is not a coin.
_WEAK_LISTING = _phrases(
    "now available", "now live", "now supported", "now supports", "now trading", "available to trade",
    "available on coinspot", "launches on coinspot", "added to coinspot", "coming to coinspot", "now on coinspot",
    "lands on coinspot",
)
_WEAK_DELISTING = _phrases(
    "will be removed", "to be removed", "being removed", "removed from coinspot", "removal of",
    "no longer supported", "no longer be supported", "no longer available", "no longer be available",
    "no longer listed", "no longer be listed", "end of support", "ending support", "support ending",
    "discontinued", "discontinuing",
)
_MAINTENANCE = _phrases(
    "maintenance", "scheduled downtime", "planned downtime", "downtime", "outage", "network upgrade",
    "network upgrades", "hard fork", "hardfork", "wallet suspension", "wallet suspended", "wallets suspended",
    "token migration", "token swap", "mainnet upgrade", "mainnet migration", "protocol upgrade", "system upgrade",
)
_TRADING_PHRASES = _phrases("trading pair", "trading pairs", "pair", "pairs", "markets", "new market")
_TRADING_SUBJECTS = frozenset({"trading", "trade", "trades", "deposit", "deposits", "withdrawal", "withdrawals",
                               "transfers", "sends", "orders", "buying", "selling"})
_TRADING_STATES = frozenset({"halt", "halted", "halts", "suspend", "suspended", "suspension", "suspends", "pause",
                             "paused", "pauses", "resume", "resumed", "resumes", "disabled", "enabled", "reenabled",
                             "reopened", "reopen", "closed", "restored", "unavailable", "delayed", "stopped"})
_FEATURES = frozenset({"feature", "features", "staking", "stake", "earn", "rewards", "reward", "recurring", "alert",
                       "alerts", "app", "card", "promotion", "promo", "competition", "giveaway", "bundle", "bundles",
                       "nft", "nfts", "referral", "tax", "report", "reports", "dashboard", "beta", "widget", "otc",
                       "api", "mobile"})
# Capitalised words that are not tickers, for the unknown-ticker rule below.
_NOT_TICKERS = NOT_COINS | frozenset({
    "NEW", "COIN", "COINS", "TOKEN", "LISTING", "LISTINGS", "LISTED", "NOW", "AVAILABLE", "AND", "THE", "ON", "OF",
    "FOR", "TO", "IS", "ARE", "WILL", "BE", "SMS", "APP", "BPAY", "PAYID", "OSKO", "POLI", "ATO", "AML", "CTF",
    "GST", "TFN", "EOFY", "AU", "NZ", "COINSPOT", "OTC", "IMPORTANT", "UPDATE", "NOTICE", "ALERT", "WARNING", "ID",
    "TRADING", "DELISTING", "MAINTENANCE", "SCHEDULED", "WALLET", "NETWORK", "UPGRADE", "REMINDER", "NEWS", "IOS",
    "PDF", "URL", "FY", "AM", "PM", "ASAP", "TBA", "TBC", "DEX", "CEX", "DEFI", "DAO", "AI",
})
_TICKER = re.compile(r"(?<![A-Za-z0-9$])\$?([A-Z][A-Z0-9]{1,9})(?![A-Za-z0-9])")


def _has(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i:i + n]) == phrase for i in range(len(words) - n + 1))


def _first(words: list[str], phrases: list[tuple[str, ...]]) -> str:
    return next((" ".join(p) for p in phrases if _has(words, p)), "")


def _tickers(title: str) -> list[str]:
    """Capitalised words that read as tickers in a listing or delisting title ("New Coin
    Listing: XYZ"), for coins the registry does not know yet. Off for all-capitals titles."""
    if not re.search(r"[a-z]", title):
        return []
    return list(dict.fromkeys(t for t in _TICKER.findall(title) if t not in _NOT_TICKERS))


def classify(title: str, body: str | None = None) -> Classification:
    """What an announcement is, on its title's words (not substrings), and the coins it names.

    Precedence: delisting words; listing phrases (relisting counts: the coin comes back
    to market); maintenance; trading changes; then the weak forms, which count only when
    the title names a coin: "will be removed" / "no longer supported" (delisting), "now
    available" / "now live" (listing, unless a feature word says it is a product, as in
    "SOL staking now available"); anything else is "other". "New" alone means nothing.

    Currencies: the coins the title names (``coins.extract_coins``); for a listing or a
    delisting also capitalised unknown tickers ("New Coin Listing: XYZ"); when the title
    names none, the coins the body names. The body never decides the kind.
    """
    words = _words(title)
    known = extract_coins(title)
    currencies = known or _tickers(title)

    def result(kind: str, matched: str, coins: list[str]) -> Classification:
        if not coins and body:
            coins = extract_coins(html_to_text(body, one_line=True))
        return Classification(kind, IMPACT[kind], coins, matched)

    if delisted := next((w for w in words if w in _DELIST), ""):
        return result("delisting", delisted, currencies)
    if relisted := next((w for w in words if w in _RELIST), ""):
        return result("listing", relisted, currencies)
    if listed := _first(words, _LISTING) or ("listing:" if _LISTING_COLON.search(title) else ""):
        return result("listing", listed, currencies)
    if maintenance := _first(words, _MAINTENANCE):
        return result("maintenance", maintenance, known)
    trading = _first(words, _TRADING_PHRASES)
    if not trading and (subject := next((w for w in words if w in _TRADING_SUBJECTS), "")):
        if state := next((w for w in words if w in _TRADING_STATES), ""):
            trading = f"{subject} {state}"
        elif _has(words, ("re", "enabled")):
            trading = f"{subject} re-enabled"
    if trading:
        return result("trading_change", trading, known)
    if currencies and (removed := _first(words, _WEAK_DELISTING)):
        return result("delisting", removed, currencies)
    if currencies and not _FEATURES.intersection(words) and (available := _first(words, _WEAK_LISTING)):
        return result("listing", available, currencies)
    return result("other", "", known)
