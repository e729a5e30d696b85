"""CoinSpot's Zendesk Help Centre in the sandbox: the Help Center API and the HTML pages.

Served from the recordings in ``recordings/zendesk/``: ``articles.json`` (one recorded
API page of the "Announcements" category, drafts included), ``sections.json`` and the
theme's page shapes (``layout.html``, ``challenge.html``, ``render_list.js``).

Recorded times are moved forward by whole days, so that the newest recorded article
falls within the last 24 hours and every article keeps its time of day (announcements
go out in Australian business hours): "recent" stays recent, and two sandboxes started
on the same day serve identical articles.

Modes, switched with :meth:`HelpCentre.set_mode` or ``POST /_sandbox/zendesk/mode``
(JSON ``{"api": ..., "html": ...}``; ``GET`` shows them):

- ``api``: ``"ok"`` or ``"refused"`` (every Help Center API path answers 403, as when a
  help centre turns anonymous API access off or a firewall blocks non-browsers).
- ``html``: ``"plain"`` (server-rendered lists, ``li.article-list-item a.article-list-link``);
  ``"javascript"`` (list pages carry the list as embedded JSON and an inline script
  renders it: the raw HTML has no list items); ``"challenge"`` (every ``/hc/`` page
  answers a Cloudflare-like 403 "Just a moment..." page whose script computes a
  ``cf_clearance`` cookie and reloads; with that cookie the plain pages are served, so
  only a client that runs the script, a real browser, passes).

``publish()`` (or ``POST /_sandbox/zendesk/articles``) adds an article, newest first,
with a fresh id larger than every other, as Zendesk's ids grow with time.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import threading
from datetime import datetime, timedelta, timezone
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlencode

from omc_pipelines.sandbox.times import iso_z, parse_time
from omc_pipelines.sandbox.server import Request, Response, SandboxServer
from omc_pipelines.settings import DEFAULT_ZENDESK_CATEGORY

RECORDINGS = Path(__file__).with_name("recordings") / "zendesk"
RECORDED_HOST = "https://coinspot.zendesk.com"
LOCALE = "en-us"
API_MODES = ("ok", "refused")
HTML_MODES = ("plain", "javascript", "challenge")
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
CATEGORY_PAGE_ARTICLES = 5  # per section on the category page; "See all" links to the rest
SECTION_PAGE_ARTICLES = 30  # per page of a section page
CLEARANCE_COOKIE = "cf_clearance"
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
SORT_FIELDS = ("position", "title", "created_at", "updated_at")

_LOCALE = r"(?P<locale>[a-z]{2}(?:-[a-z]{2})?)"
_SLUG = r"(?:-[^/]*)?"


def _template(name: str) -> Template:
    return Template((RECORDINGS / name).read_text())


def _slug(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-") or "article"


def _zendesk_error(status: int, error: str, description: str) -> Response:
    return Response(status, {"error": error, "description": description}, content_type=JSON_TYPE)


def _not_found_json() -> Response:
    return _zendesk_error(404, "RecordNotFound", "Not found")


def _not_found_page() -> Response:
    return Response(404, "<!DOCTYPE html><html><head><title>Page not found &ndash; CoinSpot</title></head>"
                    "<body><h1>Oops, we couldn't find that page</h1></body></html>", content_type=HTML_TYPE)


def _cursor(article_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{article_id}".encode()).decode().rstrip("=")


def _uncursor(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if raw[:1] != "a":
            raise ValueError
        return int(raw[1:])
    except ValueError:
        raise ValueError(f"invalid cursor {token!r}") from None


def _int_param(query: dict[str, list[str]], name: str, default: int, minimum: int = 1) -> int:
    raw = query.get(name, [None])[-1]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadParameter(f"{name} must be an integer") from None
    if value < minimum:
        raise _BadParameter(f"{name} must be at least {minimum}")
    return value


class _BadParameter(Exception):
    pass


class HelpCentre:
    """The sandbox's Zendesk Help Centre: one category of articles in sections, and its modes."""

    def __init__(self, now: datetime | None = None, category_id: int | None = None):
        self._lock = threading.Lock()
        self._now = now
        self.category_id = int(category_id or DEFAULT_ZENDESK_CATEGORY)
        self.base_url: str | None = None  # the server's URL once installed
        self._layout = _template("layout.html")
        self._challenge = _template("challenge.html")
        self._render_js = _template("render_list.js")
        self.reset()

    # --- state --------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the recordings, API ``ok`` and plain HTML."""
        page = json.loads((RECORDINGS / "articles.json").read_text())
        meta = json.loads((RECORDINGS / "sections.json").read_text())
        articles = page["articles"]
        newest = max(parse_time(a["created_at"]) for a in articles)
        now = (self._now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        shift = timedelta(days=(now - newest) // timedelta(days=1))
        for article in articles:
            for name in ("created_at", "updated_at", "edited_at"):
                article[name] = iso_z(parse_time(article[name]) + shift)
        with self._lock:
            self.category: dict[str, Any] = {**meta["category"], "id": self.category_id}
            self.sections: list[dict[str, Any]] = [{**s, "category_id": self.category_id} for s in meta["sections"]]
            self._articles: list[dict[str, Any]] = articles
            self.api_mode = "ok"
            self.html_mode = "plain"
            # The challenge's answer: its cookie is the hex of each part times the factor.
            self._challenge_parts = [secrets.randbelow(2**20) + 1 for _ in range(4)]
            self._challenge_factor = secrets.randbelow(2**10) + 3
            self._clearance = "".join(format(p * self._challenge_factor, "x") for p in self._challenge_parts)

    def set_mode(self, api: str | None = None, html: str | None = None) -> dict[str, str]:
        if api is not None and api not in API_MODES:
            raise ValueError(f"api mode must be one of {', '.join(API_MODES)}, got {api!r}")
        if html is not None and html not in HTML_MODES:
            raise ValueError(f"html mode must be one of {', '.join(HTML_MODES)}, got {html!r}")
        with self._lock:
            self.api_mode = api or self.api_mode
            self.html_mode = html or self.html_mode
            return self.modes()

    def modes(self) -> dict[str, str]:
        return {"api": self.api_mode, "html": self.html_mode}

    def articles(self, include_drafts: bool = False) -> list[dict[str, Any]]:
        """The articles as the API shows them (recorded host), newest first."""
        with self._lock:
            rows = [copy.deepcopy(a) for a in self._articles if include_drafts or not a["draft"]]
        return sorted(rows, key=lambda a: (a["created_at"], a["id"]), reverse=True)

    def section(self, section_id: int) -> dict[str, Any] | None:
        return next((s for s in self.sections if s["id"] == section_id), None)

    def publish(self, title: str, body_html: str = "", created_at: datetime | str | None = None,
                section_id: int | None = None, labels: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """Publish an article now (or at ``created_at``); returns it as the API shows it."""
        if not isinstance(title, str) or not title.strip():
            raise ValueError("title must be a non-empty string")
        if isinstance(created_at, str):
            created_at = parse_time(created_at)
        when = (created_at or datetime.now(timezone.utc)).replace(microsecond=0)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        section_id = int(section_id) if section_id is not None else self.sections[0]["id"]
        if self.section(section_id) is None:
            raise ValueError(f"no section {section_id} in category {self.category_id}")
        with self._lock:
            # Zendesk's ids grow with time: a new article's id is larger than every other.
            article_id = max(a["id"] for a in self._articles) + 1_000_000 + secrets.randbelow(1000)
            slug = _slug(title)
            article = {
                "id": article_id,
                "url": f"{RECORDED_HOST}/api/v2/help_center/{LOCALE}/articles/{article_id}.json",
                "html_url": f"{RECORDED_HOST}/hc/{LOCALE}/articles/{article_id}-{slug}",
                "author_id": 360123456789, "comments_disabled": True, "draft": False, "promoted": False,
                "position": 0, "vote_sum": 0, "vote_count": 0, "section_id": section_id,
                "created_at": iso_z(when), "updated_at": iso_z(when), "name": title, "title": title,
                "source_locale": LOCALE, "locale": LOCALE, "outdated": False, "outdated_locales": [],
                "edited_at": iso_z(when), "user_segment_id": None, "permission_group_id": 1234567,
                "content_tag_ids": [], "label_names": list(labels), "body": body_html,
            }
            self._articles.append(article)
        return self._hosted(copy.deepcopy(article), self.base_url or RECORDED_HOST)

    # --- wiring -------------------------------------------------------------------------

    def install(self, server: SandboxServer) -> None:
        self.base_url = server.url
        api = r"/api/v2/help_center/" + _LOCALE
        server.route("GET", api + r"/categories/(?P<category>\d+)/articles(?:\.json)?", self._api_list)
        server.route("GET", api + r"/sections/(?P<section>\d+)/articles(?:\.json)?", self._api_list)
        server.route("GET", api + r"/articles(?:\.json)?", self._api_list)
        server.route("GET", api + r"/articles/(?P<article>\d+)(?:\.json)?", self._api_article)
        hc = r"/hc/" + _LOCALE
        server.route("GET", hc + r"/categories/(?P<category>\d+)" + _SLUG, self._category_page)
        server.route("GET", hc + r"/sections/(?P<section>\d+)" + _SLUG, self._section_page)
        server.route("GET", hc + r"/articles/(?P<article>\d+)" + _SLUG, self._article_page)
        server.route("GET", r"/_sandbox/zendesk/mode", lambda req, m: Response(body=self.modes()))
        server.route("POST", r"/_sandbox/zendesk/mode", self._control_mode)
        server.route("POST", r"/_sandbox/zendesk/articles", self._control_publish)

    # --- the API ------------------------------------------------------------------------

    def _hosted(self, article: dict[str, Any], base: str) -> dict[str, Any]:
        for name in ("url", "html_url"):
            if article[name].startswith(RECORDED_HOST):
                article[name] = base + article[name][len(RECORDED_HOST):]
        return article

    def _base(self, req: Request) -> str:
        host = req.headers.get("host")
        return f"http://{host}" if host else (self.base_url or RECORDED_HOST)

    def _api_refused(self) -> Response | None:
        if self.api_mode == "refused":
            return _zendesk_error(403, "Forbidden", "You do not have access to this page. Please contact the "
                                  "account owner of this help desk for further help.")
        return None

    def _api_article(self, req: Request, m: re.Match) -> Response:
        refused = self._api_refused()
        if refused:
            return refused
        if m["locale"] != LOCALE:
            return _not_found_json()
        article = next((a for a in self.articles() if a["id"] == int(m["article"])), None)
        if article is None:
            return _not_found_json()
        return Response(body={"article": self._hosted(article, self._base(req))}, content_type=JSON_TYPE)

    def _api_list(self, req: Request, m: re.Match) -> Response:
        refused = self._api_refused()
        if refused:
            return refused
        groups = m.groupdict()
        if groups["locale"] != LOCALE:
            return _not_found_json()
        rows = self.articles()
        if groups.get("category"):
            if int(groups["category"]) != self.category_id:
                return _not_found_json()
        elif groups.get("section"):
            if self.section(int(groups["section"])) is None:
                return _not_found_json()
            rows = [a for a in rows if a["section_id"] == int(groups["section"])]
        base = self._base(req)
        query = req.query
        try:
            sort_by = query.get("sort_by", ["position"])[-1]
            if sort_by not in SORT_FIELDS:
                raise _BadParameter(f"sort_by must be one of {', '.join(SORT_FIELDS)}")
            default_order = "desc" if sort_by in ("created_at", "updated_at") else "asc"
            sort_order = query.get("sort_order", [default_order])[-1]
            if sort_order not in ("asc", "desc"):
                raise _BadParameter("sort_order must be asc or desc")
            rows = _sorted(rows, sort_by, sort_order)
            rows = [self._hosted(a, base) for a in rows]
            sort = {"sort_by": sort_by, "sort_order": sort_order} if "sort_by" in query or "sort_order" in query else {}
            link = base + req.path
            if any(k.startswith("page[") for k in query):
                return self._cursor_page(rows, query, link, sort)
            return self._offset_page(rows, query, link, sort, sort_by, sort_order)
        except _BadParameter as exc:
            return _zendesk_error(400, "InvalidPaginationParameter", str(exc))

    def _offset_page(self, rows, query, link, sort, sort_by, sort_order) -> Response:
        per_page = min(_int_param(query, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        page = _int_param(query, "page", 1)
        page_count = max(1, -(-len(rows) // per_page))

        def page_url(number: int) -> str:
            return f"{link}?{urlencode({'page': number, 'per_page': per_page, **sort})}"

        return Response(
            body={
                "articles": rows[(page - 1) * per_page: page * per_page],
                "count": len(rows),
                "next_page": page_url(page + 1) if page < page_count else None,
                "page": page,
                "page_count": page_count,
                "per_page": per_page,
                "previous_page": page_url(page - 1) if 1 < page <= page_count + 1 else None,
                "sort_by": sort_by,
                "sort_order": sort_order,
            },
            content_type=JSON_TYPE,
        )

    def _cursor_page(self, rows, query, link, sort) -> Response:
        size = min(_int_param(query, "page[size]", DEFAULT_PER_PAGE), MAX_PER_PAGE)
        ids = [a["id"] for a in rows]
        after, before = query.get("page[after]", [None])[-1], query.get("page[before]", [None])[-1]
        try:
            if after:
                start = ids.index(_uncursor(after)) + 1
                chunk = rows[start: start + size]
            elif before:
                end = ids.index(_uncursor(before))
                start = max(0, end - size)
                chunk = rows[start:end]
            else:
                start, chunk = 0, rows[:size]
        except ValueError:
            raise _BadParameter("page[after]/page[before] is not a cursor of this list") from None
        has_more = start + len(chunk) < len(rows)

        def page_url(**cursor: str) -> str:
            return f"{link}?{urlencode({**{f'page[{k}]': v for k, v in cursor.items()}, 'page[size]': size, **sort})}"

        after_cursor = _cursor(chunk[-1]["id"]) if chunk else None
        before_cursor = _cursor(chunk[0]["id"]) if chunk else None
        return Response(
            body={
                "articles": chunk,
                "meta": {"has_more": has_more, "after_cursor": after_cursor, "before_cursor": before_cursor},
                "links": {
                    "first": page_url(),
                    "next": page_url(after=after_cursor) if has_more and after_cursor else None,
                    "prev": page_url(before=before_cursor) if start > 0 and before_cursor else None,
                },
            },
            content_type=JSON_TYPE,
        )

    # --- the HTML pages -----------------------------------------------------------------

    def _gate(self, req: Request) -> Response | None:
        """The bot challenge in ``challenge`` mode, unless the request carries its cookie."""
        if self.html_mode != "challenge":
            return None
        try:
            cookies = SimpleCookie(req.headers.get("cookie", ""))
        except CookieError:
            cookies = SimpleCookie()
        if CLEARANCE_COOKIE in cookies and cookies[CLEARANCE_COOKIE].value == self._clearance:
            return None
        page = self._challenge.substitute(
            ray=secrets.token_hex(8), parts=", ".join(str(p) for p in self._challenge_parts),
            factor=self._challenge_factor, delay_ms=200,
        )
        return Response(403, page, {"cf-mitigated": "challenge", "Cache-Control": "private, no-store"}, HTML_TYPE)

    def _page(self, title: str, canonical: str, breadcrumbs: list[tuple[str, str]], content: str,
              scripts: str = "") -> Response:
        crumbs = "\n".join(
            f'          <li title="{html.escape(name)}"><a href="{href}">{html.escape(name)}</a></li>'
            for name, href in breadcrumbs
        )
        page = self._layout.substitute(page_title=html.escape(title), canonical=canonical, breadcrumbs=crumbs,
                                       content=content, scripts=scripts)
        return Response(200, page, content_type=HTML_TYPE)

    def _category_href(self) -> str:
        return f"/hc/{LOCALE}/categories/{self.category_id}-{_slug(self.category['name'])}"

    @staticmethod
    def _section_href(section: dict[str, Any]) -> str:
        return f"/hc/{LOCALE}/sections/{section['id']}-{_slug(section['name'])}"

    @staticmethod
    def _article_href(article: dict[str, Any]) -> str:
        return "/" + article["html_url"].split("/", 3)[3]

    def _listed(self, section_id: int) -> list[dict[str, Any]]:
        """A section's articles as its pages list them: promoted first, then newest first."""
        rows = [a for a in self.articles() if a["section_id"] == section_id]
        return sorted(rows, key=lambda a: not a["promoted"])  # stable: newest first within each group

    def _list_payload(self, section: dict[str, Any], rows: list[dict[str, Any]], total: int,
                      with_heading: bool) -> dict[str, Any]:
        return {
            "name": section["name"] if with_heading else None,
            "url": self._section_href(section),
            "articles": [{"title": a["title"], "url": self._article_href(a), "promoted": a["promoted"]} for a in rows],
            "see_all": ({"label": f"See all {total} articles", "url": self._section_href(section)}
                        if with_heading and total > len(rows) else None),
        }

    @staticmethod
    def _list_html(block: dict[str, Any]) -> str:
        lines = ['      <section class="section">'] if block["name"] else []
        if block["name"]:
            lines.append(f'        <h2 class="section-tree-title"><a href="{block["url"]}">{html.escape(block["name"])}</a></h2>')
        lines.append('        <ul class="article-list">')
        for a in block["articles"]:
            promoted = " article-promoted" if a["promoted"] else ""
            star = '<span data-title="Promoted article" class="icon-star"></span>\n            ' if a["promoted"] else ""
            lines.append(f'          <li class="article-list-item{promoted}">\n            {star}'
                         f'<a href="{a["url"]}" class="article-list-link">{html.escape(a["title"])}</a>\n          </li>')
        lines.append("        </ul>")
        if block["see_all"]:
            lines.append(f'        <a href="{block["see_all"]["url"]}" class="see-all-articles">'
                         f'{html.escape(block["see_all"]["label"])}</a>')
        if block["name"]:
            lines.append("      </section>")
        return "\n".join(lines)

    def _list_body(self, blocks: list[dict[str, Any]], next_href: str | None) -> tuple[str, str]:
        """The list part of a page and its scripts: server-rendered, or left to the browser."""
        if self.html_mode == "javascript":
            data = json.dumps({"sections": blocks, "next": next_href}).replace("</", "<\\/")
            scripts = (f'  <script type="application/json" id="hc-list-data">{data}</script>\n'
                       f"  <script>\n{self._render_js.substitute(delay_ms=150)}\n  </script>")
            return '      <div id="article-tree" class="section-tree" aria-busy="true"></div>', scripts
        body = "\n".join(self._list_html(b) for b in blocks)
        if next_href:
            body += (f'\n      <nav class="pagination" aria-label="Pagination"><ul><li class="pagination-next">'
                     f'<a href="{next_href}" rel="next">Next &rsaquo;</a></li></ul></nav>')
        return f'      <div id="article-tree" class="section-tree">\n{body}\n      </div>', ""

    def _category_page(self, req: Request, m: re.Match) -> Response:
        gate = self._gate(req)
        if gate:
            return gate
        if m["locale"] != LOCALE or int(m["category"]) != self.category_id:
            return _not_found_page()
        blocks = []
        for section in self.sections:
            rows = self._listed(section["id"])
            if rows:
                blocks.append(self._list_payload(section, rows[:CATEGORY_PAGE_ARTICLES], len(rows), with_heading=True))
        tree, scripts = self._list_body(blocks, None)
        content = (
            '    <div class="category-container">\n      <div class="category-content">\n'
            f'        <header class="page-header"><h1>{html.escape(self.category["name"])}</h1>\n'
            f'          <p class="page-header-description">{html.escape(self.category.get("description", ""))}</p></header>\n'
            f"{tree}\n      </div>\n    </div>"
        )
        return self._page(self.category["name"], self._base(req) + self._category_href(),
                          [(self.category["name"], self._category_href())], content, scripts)

    def _section_page(self, req: Request, m: re.Match) -> Response:
        gate = self._gate(req)
        if gate:
            return gate
        section = self.section(int(m["section"]))
        if m["locale"] != LOCALE or section is None:
            return _not_found_page()
        try:
            page = _int_param(req.query, "page", 1)
        except _BadParameter:
            page = 1  # the theme's pages ignore a page number they cannot read
        rows = self._listed(section["id"])
        chunk = rows[(page - 1) * SECTION_PAGE_ARTICLES: page * SECTION_PAGE_ARTICLES]
        next_href = (f"{self._section_href(section)}?page={page + 1}#articles"
                     if page * SECTION_PAGE_ARTICLES < len(rows) else None)
        tree, scripts = self._list_body([self._list_payload(section, chunk, len(rows), with_heading=False)], next_href)
        content = (
            '    <div class="section-container">\n      <section id="main-content" class="section-content">\n'
            f'        <header class="page-header"><h1>{html.escape(section["name"])}</h1></header>\n'
            f"{tree}\n      </section>\n    </div>"
        )
        crumbs = [(self.category["name"], self._category_href()), (section["name"], self._section_href(section))]
        return self._page(section["name"], self._base(req) + self._section_href(section), crumbs, content, scripts)

    def _article_page(self, req: Request, m: re.Match) -> Response:
        gate = self._gate(req)
        if gate:
            return gate
        article = next((a for a in self.articles() if a["id"] == int(m["article"])), None)
        if m["locale"] != LOCALE or article is None:
            return _not_found_page()
        section = self.section(article["section_id"]) or self.sections[0]
        created, edited = parse_time(article["created_at"]), parse_time(article["edited_at"])
        meta = [f'              <li class="meta-data">{_time_element(created)}</li>']
        if edited > created:
            meta.append(f'              <li class="meta-data">Updated {_time_element(edited)}</li>')
        title = html.escape(article["title"])
        content = (
            '    <div class="article-container" id="article-container">\n'
            '      <article id="main-content" class="article">\n'
            '        <header class="article-header">\n'
            f'          <h1 title="{title}" class="article-title">{title}</h1>\n'
            '          <div class="article-author">\n            <div class="article-meta">\n'
            '              <ul class="meta-group">\n' + "\n".join(meta) + "\n              </ul>\n"
            "            </div>\n          </div>\n        </header>\n"
            '        <section class="article-info">\n          <div class="article-content">\n'
            f'            <div class="article-body">{article["body"] or ""}</div>\n'
            "          </div>\n        </section>\n      </article>\n    </div>"
        )
        crumbs = [(self.category["name"], self._category_href()), (section["name"], self._section_href(section))]
        return self._page(article["title"], self._base(req) + self._article_href(article), crumbs, content)

    # --- control routes -----------------------------------------------------------------

    def _control_mode(self, req: Request, m) -> Response:
        body = req.json()
        unknown = set(body) - {"api", "html"}
        if unknown:
            raise ValueError(f"unknown mode keys: {', '.join(sorted(unknown))}")
        return Response(body={"status": "ok", **self.set_mode(api=body.get("api"), html=body.get("html"))})

    def _control_publish(self, req: Request, m) -> Response:
        body = req.json()
        unknown = set(body) - {"title", "body_html", "created_at", "section_id", "labels"}
        if unknown:
            raise ValueError(f"unknown article fields: {', '.join(sorted(unknown))}")
        article = self.publish(
            body["title"], body.get("body_html", ""), body.get("created_at"), body.get("section_id"),
            tuple(body.get("labels", ())),
        )
        if self.base_url and article["html_url"].startswith(self.base_url):  # as the asking client sees it
            for name in ("url", "html_url"):
                article[name] = self._base(req) + article[name][len(self.base_url):]
        return Response(body={"status": "ok", "article": article})


def _sorted(rows: list[dict[str, Any]], sort_by: str, sort_order: str) -> list[dict[str, Any]]:
    if sort_by in ("created_at", "updated_at"):
        rows = sorted(rows, key=lambda a: (a[sort_by], a["id"]))
    elif sort_by == "title":
        rows = sorted(rows, key=lambda a: (a["title"].lower(), a["id"]))
    else:  # position: promoted first, then the manual position, then newest first
        rows = sorted(rows, key=lambda a: (not a["promoted"], a["position"], -parse_time(a["created_at"]).timestamp()))
    return list(reversed(rows)) if sort_order == "desc" else rows


def _time_element(when: datetime) -> str:
    local = when.astimezone(timezone(timedelta(hours=10)))  # the theme shows Sydney standard time
    return (f'<time datetime="{iso_z(when)}" title="{local:%Y-%m-%d %H:%M}" data-datetime="relative">'
            f"{local.day} {local:%B %Y %H:%M}</time>")
