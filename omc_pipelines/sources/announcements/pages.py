"""The HTML path: the help centre's own pages (category, sections, articles) read with CSS
selectors over an HTML5 parser, and the walk the browser path shares."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser

from omc_pipelines.sources.announcements.common import (
    DEFAULT_CATEGORY,
    DEFAULT_LOCALE,
    HTML_ACCEPT,
    SOURCE,
    Article,
    ArticleList,
    ArticlePage,
    BrowserMayPass,
    ListedArticle,
    PathFailed,
    ZendeskPayload,
    check_bounds,
    relative,
)
from omc_pipelines.sources.html_text import parse_html
from omc_pipelines.sources.http import HttpSource, SourceRefused
from omc_pipelines.sources.payload import parse_utc

MAX_SECTIONS = 20
LIST_SELECTOR = "li.article-list-item a.article-list-link"

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
    p = ZendeskPayload(SOURCE, url)

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
    p = ZendeskPayload(SOURCE, url)
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


# A fetcher reads one page: a list page (raising PathFailed when it holds no list) or
# an article page (None when it is gone).
ListFetcher = Callable[[str], ArticleList]
PageFetcher = Callable[[str], "ArticlePage | None"]


def collect(category_url: str, read_list: ListFetcher, read_article: PageFetcher, since: datetime | None,
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
        path, params = relative(self.http, url)
        try:
            response = self.http.get(path, params or None, headers={"Accept": HTML_ACCEPT})
        except SourceRefused as exc:
            if exc.status != 403:
                raise
            # The HTTP layer keeps no body: a challenge cannot be told from a block here.
            raise BrowserMayPass(f"{exc} (a bot challenge or a block; a browser may pass)") from None
        return response.text, self.http.shown_url(path, params or None)

    def read_list(self, url: str) -> ArticleList:
        text, shown = self._get_html(url)
        listing = parse_article_list(text, str(urljoin(self.http.base_url + "/", url)))
        if listing.challenge:
            raise BrowserMayPass(f"a bot challenge answered {shown}")
        if not listing.articles and not listing.section_urls:
            if not listing.scripted:  # an error page, or a page cut short: nothing for a browser to run
                raise PathFailed(f"no {LIST_SELECTOR} in the HTML of {shown}, and no script to render one")
            raise BrowserMayPass(f"no {LIST_SELECTOR} in the raw HTML of {shown} (rendered by JavaScript?)")
        return listing

    def read_article(self, url: str) -> ArticlePage | None:
        try:
            text, shown = self._get_html(url)
        except SourceRefused as exc:
            if exc.status in (404, 410):
                return None
            raise
        if is_bot_challenge(text):
            raise BrowserMayPass(f"a bot challenge answered {shown}")
        return parse_article_page(text, shown)

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        check_bounds(since, limit)
        return collect(self.category_url, self.read_list, self.read_article, since, limit, self.now)
