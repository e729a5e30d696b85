"""The client: the three paths in order, the first that answers wins; when none does,
an error naming each path and why it failed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from omc_pipelines.sources.announcements.api import HelpCenterApi
from omc_pipelines.sources.announcements.browser import HelpCenterBrowser
from omc_pipelines.sources.announcements.common import (
    DEFAULT_CATEGORY,
    DEFAULT_LOCALE,
    Article,
    BrowserMayPass,
    PathFailed,
    check_bounds,
)
from omc_pipelines.sources.announcements.pages import HelpCenterPages
from omc_pipelines.sources.http import HttpSource, SourceError, SourceUnavailable

PATHS = ("api", "html", "browser")
NOT_TRIED = "not tried: a browser gets past a bot challenge and renders a list, not what stopped the HTML path"


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
        check_bounds(since, limit)
        readers = {"api": self.api, "html": self.pages, "browser": self.browser}
        failures: list[PathFailure] = []
        browser_may_pass = True  # until the HTML path says otherwise
        for name in self.paths:
            if name == "browser" and not browser_may_pass:
                failures.append(PathFailure(name, NOT_TRIED))
                continue
            try:
                articles = readers[name].latest(since, limit)
            except (SourceError, PathFailed) as exc:
                failures.append(PathFailure(name, str(exc)))
                if name == "html":
                    browser_may_pass = isinstance(exc, BrowserMayPass)
                continue
            self.path_used, self.failures = name, tuple(failures)
            return Fetched(articles, name, tuple(failures))
        self.path_used, self.failures = None, tuple(failures)
        raise AnnouncementsUnavailable.from_failures(self.http.name, self.pages.category_url, failures)

    def latest(self, since: datetime | None = None, limit: int = 100) -> list[Article]:
        """:meth:`fetch`'s articles; ``path_used`` and ``failures`` say how they came."""
        return self.fetch(since, limit).articles
