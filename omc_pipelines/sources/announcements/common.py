"""What the three paths share: the article rows, the payload reader, the signals a path
gives when it cannot answer, the bounds of a request and links under the base URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from omc_pipelines.sources.http import HttpSource
from omc_pipelines.sources.payload import Payload

SOURCE = "zendesk"
DEFAULT_CATEGORY = "115000579994"  # CoinSpot's "Announcements"; settings.DEFAULT_ZENDESK_CATEGORY
DEFAULT_LOCALE = "en-us"
HTML_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"


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


class ZendeskPayload(Payload):
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


class PathFailed(Exception):
    """A path could not answer for a reason that is not an HTTP error (no list, a challenge)."""


class BrowserMayPass(PathFailed):
    """The HTML path met what a browser gets past: a bot challenge (or a 403, which may be
    one) or a list that only a script renders."""


def check_bounds(since: datetime | None, limit: int) -> None:
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be an aware datetime (UTC)")
    if limit < 1:
        raise ValueError("limit must be at least 1")


def relative(http: HttpSource, url: str) -> tuple[str, dict[str, str]]:
    """A link the source gave, as a path and parameters under the configured base URL:
    the host in a link is the upstream's own, which a proxy or the sandbox stands in for."""
    parts = urlsplit(url)
    path = parts.path or "/"
    base_path = urlsplit(http.base_url).path.rstrip("/")
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path):]
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))
