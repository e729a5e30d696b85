"""The browser path: the help centre's pages rendered by a real Chromium (Playwright's sync
API, imported only here), read by the HTML path's parsers."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from omc_pipelines.sources.announcements.common import (
    DEFAULT_CATEGORY,
    DEFAULT_LOCALE,
    HTML_ACCEPT,
    Article,
    ArticleList,
    ArticlePage,
    PathFailed,
    check_bounds,
    relative,
)
from omc_pipelines.sources.announcements.pages import (
    LIST_SELECTOR,
    collect,
    is_bot_challenge,
    parse_article_list,
    parse_article_page,
)
from omc_pipelines.sources.http import DEADLINE_TIMEOUTS, HttpSource, SourceRefused, safe_url

CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run")
# The page's outer HTML, or only its length when that is past the cap (read in the page, not here).
_CAPPED_HTML = "(root, cap) => { const html = root.outerHTML; return html.length > cap ? html.length : html; }"


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
            raise PathFailed(f"no browser at {self.browser_path}")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise PathFailed("the playwright package is not installed") from None
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
        check_bounds(since, limit)
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
            raise PathFailed("the playwright package is not installed") from None
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
                    return collect(self.category_url, lambda url: self._read_list(page, url),
                                    lambda url: self._read_article(page, url, agent), since, limit, self.now)
                finally:
                    context.close()
        except PlaywrightError as exc:
            message = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise PathFailed(f"{exc.__class__.__name__}: {message[:300]}") from None

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
            if status >= 400 and (body := self._body(response)) is not None and not is_bot_challenge(body):
                raise PathFailed(f"HTTP {status} for {safe_url(url)}")
            try:
                page.wait_for_selector(selector, state="attached", timeout=self._wait_ms(ends))
            except PlaywrightTimeout:
                challenged = is_bot_challenge(self._html(page, url, ends))
                why = "a bot challenge that did not let the browser through" if challenged else f"no {what}"
                raise PathFailed(f"{why} at {safe_url(url)} after {self.timeout:g} s") from None
            page.wait_for_load_state("domcontentloaded", timeout=self._wait_ms(ends))
            return self._html(page, url, ends)
        except PlaywrightTimeout:
            raise PathFailed(f"took too long: {late} ({safe_url(url)})") from None

    @staticmethod
    def _body(response: Any) -> str | None:
        """The answer's body; None when the page has moved on and the browser dropped it ("No
        resource with given identifier"): what a challenge's reload does, so the page is then
        waited for as a challenge's would be."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            return response.text()
        except PlaywrightError:
            return None

    def _check_size(self, size: int, unit: str, url: str) -> None:
        if size > self.http.max_bytes:
            raise PathFailed(f"a page of {size:,} {unit} is over the {self.http.max_bytes:,}-{unit[:-1]} limit "
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
            raise PathFailed(f"HTTP 404 for {safe_url(url)}")
        return parse_article_list(content, page.url)

    def _read_article(self, page: Any, url: str, agent: str) -> ArticlePage | None:
        # First as a plain request through the HTTP layer (its deadline, budget and size cap)
        # with the browser's cookies, a challenge's clearance among them, and its user agent:
        # a tenth of a page load. Rendered in the page only when that answer is a 403 or a
        # challenge, or carries neither time nor body.
        path, params = relative(self.http, url)
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
