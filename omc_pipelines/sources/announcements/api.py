"""The Help Center API path: ``GET /api/v2/help_center/{locale}/categories/{id}/articles.json``,
newest first, paged (offset or cursor) only as far as ``since`` and ``limit`` need."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from omc_pipelines.sources.announcements.common import (
    DEFAULT_CATEGORY,
    DEFAULT_LOCALE,
    SOURCE,
    Article,
    ZendeskPayload,
    check_bounds,
    relative,
)
from omc_pipelines.sources.http import HttpSource, SourcePayloadError

MAX_PER_PAGE = 100
MAX_PAGES = 50  # a guard against a next link that never ends


def parse_article(p: ZendeskPayload, row: Any, where: str) -> Article | None:
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
    p = ZendeskPayload(SOURCE, url)
    if not isinstance(payload, dict):
        raise p.fail(f"expected a JSON object, got {type(payload).__name__}")
    rows = p.field(payload, "articles", "body")
    if not isinstance(rows, list):
        raise p.fail("articles is not a list")
    articles = [a for i, row in enumerate(rows) if (a := parse_article(p, row, f"articles[{i}]")) is not None]
    return articles, _next_url(p, payload, url)


def _next_url(p: ZendeskPayload, payload: dict, url: str) -> str | None:
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
        check_bounds(since, limit)
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
            path, params = relative(self.http, next_url)
            page_key = (path, tuple(sorted(params.items())))
            if page_key in seen_pages:
                raise SourcePayloadError(SOURCE, shown, "malformed payload: the next page link repeats itself")
            seen_pages.add(page_key)
        return found
