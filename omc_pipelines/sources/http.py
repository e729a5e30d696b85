"""The one HTTP layer every source client uses.

Explicit timeouts; a deadline for each request, body and all, and an optional budget
for everything a client does; a cap on an answer's size; retries with exponential
backoff and full jitter for 429 (honouring ``Retry-After``), 5xx, timeouts and
connection failures, on reads and on form POSTs that are safe to repeat (a token
grant); a per-source rate limit shared by the whole
process; and errors as a small typed hierarchy that name the source and the URL
(made safe to show by :func:`safe_url`) but never a secret.
"""

from __future__ import annotations

import email.utils
import functools
import json
from decimal import Decimal
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

# httpx logs every request's full URL at INFO, httpcore its traffic at DEBUG: a token in a
# query would reach whatever handler the application installs. The layer's own errors show
# URLs, made safe; the libraries' logs show nothing below a warning.
for _library in ("httpx", "httpcore"):
    logging.getLogger(_library).setLevel(logging.WARNING)

USER_AGENT = "omc-pipelines/0.1 (+https://github.com/omc-pipelines)"
# A Retry-After longer than this is not slept on: the call fails and the next
# scheduled run picks up, instead of a run hanging for an hour.
MAX_RETRY_AFTER = 60.0
# The default deadline of one request, in read timeouts: one to connect and be answered,
# two more for a body as large as MAX_BYTES on a slow link. A healthy source finishes well
# within it; one that drips its answer a byte at a time never does, and is cut off.
DEADLINE_TIMEOUTS = 3
# The largest answers read here (DeFiLlama's /protocols and fee overviews, thousands of
# protocols each; EDGAR's submissions of a busy filer) are a few to some 15 MB, and growing.
# 32 MiB leaves them room, while a runaway answer (a 50 MB 8-K once took 474 MB of memory
# to read whole) stops with a clear error at a bounded cost.
MAX_BYTES = 32 * 1024 * 1024
# Query parameters whose values are harmless and help to trace a failure (which page, which
# filter); every other value is masked wherever a URL is shown, since a key may hide behind
# any name (``key``, ``apikey``, ``sig``, ``auth_token``...).
SHOWN_PARAMS = frozenset({
    "page", "per_page", "page[size]", "page[after]", "page[before]", "limit", "after", "before",
    "sort_by", "sort_order", "public", "filter", "kind", "currencies", "coin", "raw_json",
    "dataType", "excludeTotalDataChart", "excludeTotalDataChartBreakdown", "includePrices",
})
MASK = "***"


def safe_url(url: str, secret_params: Collection[str] = ()) -> str:
    """``url`` as errors, logs and metadata may show it: every query value masked but those
    of :data:`SHOWN_PARAMS` (and those too when named in ``secret_params``), a user and
    password masked, the fragment dropped."""
    parts = urlsplit(url)
    query = [
        (name, value if name in SHOWN_PARAMS and name not in secret_params else MASK)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    host = parts.netloc.rpartition("@")
    netloc = f"{MASK}@{host[2]}" if host[1] else parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


class SourceError(Exception):
    """A source could not give what was asked. Names the source and the URL only."""

    def __init__(self, source: str, url: str, reason: str):
        self.source, self.url, self.reason = source, url, reason
        super().__init__(f"{source}: {reason} ({url})")

    def __reduce__(self):
        # Errors may cross a process boundary (Dagster's multiprocess executor).
        return (self.__class__, (self.source, self.url, self.reason))


class SourceUnavailable(SourceError):
    """Timeouts, refused connections and 5xx answers, after the retries ran out."""


class SourceThrottled(SourceError):
    """The source kept saying 'too many requests' after the retries ran out."""


class SourceRefused(SourceError):
    """The source answered no (4xx other than throttling): retrying will not help."""

    def __init__(self, source: str, url: str, reason: str, status: int):
        self.status = status
        super().__init__(source, url, reason)

    def __reduce__(self):
        return (self.__class__, (self.source, self.url, self.reason, self.status))


class SourcePayloadError(SourceError):
    """The answer arrived but is not what the source's documented shape promises."""


class RateLimiter:
    """At most ``per_second`` calls a second, spaced evenly, across threads."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, within: float | None = None) -> bool:
        """Wait for this call's slot; unless the slot is more than ``within`` seconds away:
        then return False at once, without taking it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            if within is not None and start - now > within:
                return False
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)
        return True


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(source: str, per_second: float) -> RateLimiter:
    """The process-wide limiter of a source, so that every client of it shares one
    budget; where clients ask for different rates, the slowest holds for all."""
    with _limiters_lock:
        limiter = _limiters.setdefault(source, RateLimiter(per_second))
        limiter.interval = max(limiter.interval, 1.0 / per_second)
        return limiter


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client of the process. httpx builds a new one per client by
    default, reading the whole CA bundle each time (0.05-0.2 s of CPU here), and clients are
    made per run and per sensor tick. Built as httpx builds it (SSL_CERT_FILE, SSL_CERT_DIR,
    else certifi), once: a change to those variables needs a new process."""
    return httpx.create_ssl_context()


class _PastDeadline(Exception):
    """A request ran out of time between two reads (never leaves this module)."""


@dataclass(frozen=True)
class _Call:
    """What one request sends, on every try."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    form: Mapping[str, str] | None = None
    auth: tuple[str, str] | None = field(default=None, repr=False)


@dataclass
class HttpSource:
    """A source's base URL and manners.

    ``timeout`` bounds each wait on the network; ``deadline`` (default
    ``DEADLINE_TIMEOUTS * timeout``) a whole request, headers and body; ``budget``, when
    set, everything this client does from its creation on: requests, retries, backoff,
    Retry-After and rate-limit waits (clients are made per run or sensor tick, so a tick
    can say "at most 20 s on this source"). ``max_bytes`` caps an answer's decoded size.
    ``secret_params`` are masked wherever a URL is shown, whatever :data:`SHOWN_PARAMS` says."""

    name: str
    base_url: str
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    rate_limit: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_params: Collection[str] = ()
    # Statuses that mean "slow down": the SEC answers 403, not 429, when it throttles.
    throttle_statuses: Collection[int] = (429,)
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = None
    deadline: float | None = None
    budget: float | None = None
    max_bytes: int = MAX_BYTES
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.deadline is None:
            self.deadline = DEADLINE_TIMEOUTS * self.timeout
        self._budget_ends = None if self.budget is None else self.clock() + self.budget
        self._limiter = shared_limiter(self.name, self.rate_limit)
        self._client = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **self.headers},
            transport=self.transport,
            verify=_tls(),
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def shown_url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The URL as errors may show it (see :func:`safe_url`); ``path`` may carry a query."""
        url = f"{self.base_url}{path}"
        if params:
            url += ("&" if "?" in path else "?") + urlencode(params)
        return safe_url(url, self.secret_params)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, exact: bool = False) -> Any:
        """GET and decode JSON, retrying what a retry can mend. ``exact``: JSON numbers with a
        fraction arrive as ``Decimal`` (prices traded on), not float."""
        response = self.get(path, params)
        return self.decode_json(response, path, params, exact=exact)

    def decode_json(self, response: httpx.Response, path: str, params: Mapping[str, Any] | None = None,
                    *, exact: bool = False) -> Any:
        # Raised outside the except block: the decoder's error holds the whole body, which
        # may echo the request (a token and all), and would ride along as __context__.
        try:
            return json.loads(response.content, parse_float=Decimal) if exact else response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problem = f"{exc.__class__.__name__}: {exc}"
        raise SourcePayloadError(self.name, self.shown_url(path, params), f"answer is not valid JSON ({problem})")

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """GET with retries, the answer read whole. Answers below 400 are returned, 304 included, so
        that a conditional request (``If-None-Match``/``If-Modified-Since`` in ``headers``) can see it."""
        return self._send(_Call("GET", path, params, headers))

    def post_form(self, path: str, form: Mapping[str, str], *, auth: tuple[str, str],
                  headers: Mapping[str, str] | None = None) -> httpx.Response:
        """POST ``form`` with HTTP basic ``auth``, for a request that is safe to repeat (asking for a
        token): it is retried as a GET is, with the same deadline, budget and size cap. The
        credentials travel in a header no error, log or repr shows."""
        return self._send(_Call("POST", path, headers=headers, form=form, auth=auth))

    def budget_left(self) -> float | None:
        """Seconds left of the budget (None without one), for work this client does beside its
        requests: the announcements' browser reads within it too."""
        return None if self._budget_ends is None else self._budget_ends - self.clock()

    def _send(self, call: _Call) -> httpx.Response:
        path, params = call.path, call.params
        shown = self.shown_url(path, params)
        url = f"{self.base_url}{path}"
        tries = self.retries + 1
        for attempt in range(tries):
            last_try = attempt == self.retries
            left = self.budget_left()
            if left is not None and left <= 0:
                raise SourceUnavailable(self.name, shown, f"the {self.budget:g} s budget is spent; nothing sent")
            if not self._limiter.wait(within=left):
                raise SourceUnavailable(self.name, shown, f"the rate limit's next slot is past the {self.budget:g} s budget")
            ends = self.clock() + self.deadline
            cut_by_budget = left is not None and self._budget_ends <= ends
            if cut_by_budget:
                ends = self._budget_ends
            # Errors are raised outside the except blocks: httpx's exception carries the
            # request (URL with its query, headers with credentials), and an error raised
            # inside would keep it as __context__ for any tool that walks the chain.
            failure = fatal = None
            late = False
            try:
                response = self._fetch(url, call, ends, shown)
            except (httpx.TimeoutException, _PastDeadline):
                # A read's timeout is cut to what is left of the deadline, and never fires early.
                late = self.clock() >= ends
                failure = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                failure = f"connection failed ({exc.__class__.__name__})"
            except httpx.HTTPError as exc:  # redirect loops, undecodable bodies: no retry mends them
                fatal = f"request failed ({exc.__class__.__name__})"
            if fatal:
                raise SourceUnavailable(self.name, shown, fatal)
            if late and cut_by_budget:
                raise SourceUnavailable(self.name, shown, f"took too long: the {self.budget:g} s budget ran out")
            if late:
                failure = f"took too long: no whole answer within the {self.deadline:g} s deadline"
            error: type[SourceError] = SourceUnavailable
            wait = None
            if failure is None:
                status = response.status_code
                if status < 400:
                    return response
                failure = f"HTTP {status}"
                if status in self.throttle_statuses:
                    error = SourceThrottled
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                    if wait is not None and wait > MAX_RETRY_AFTER and not last_try:
                        raise SourceThrottled(self.name, shown, f"HTTP {status}, asked to wait {wait:.0f} s")
                elif status < 500:
                    raise SourceRefused(self.name, shown, f"HTTP {status}: {_brief(response)}", status)
                if last_try:
                    raise error(self.name, shown, f"{failure} after {tries} tries")
            elif last_try:
                raise SourceUnavailable(self.name, shown, failure)
            wait = self._backoff(attempt) if wait is None else wait
            left = self.budget_left()
            if left is not None and wait > left:
                # The error stays what the source said: a throttled caller (the SEC's cool-down)
                # must still learn that it was asked to slow down.
                raise error(self.name, shown, f"{failure}; waiting {wait:.1f} s to try again would pass "
                                              f"the {self.budget:g} s budget")
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _fetch(self, url: str, call: _Call, ends: float, shown: str) -> httpx.Response:
        """One request, read whole by ``ends`` (on ``clock``) and no larger than ``max_bytes``."""
        left = self._left(ends)
        timeout = httpx.Timeout(min(self.timeout, left), connect=min(self.timeout, 5.0, left))
        request = self._client.build_request(call.method, url, params=call.params, headers=call.headers,
                                             data=call.form, timeout=timeout)
        response = self._client.send(request, stream=True, auth=call.auth)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise SourcePayloadError(self.name, shown, f"answer of {int(declared):,} bytes is over the "
                                                           f"{self.max_bytes:,}-byte limit (max_bytes); not read")
            # httpcore reads this when the body starts: no read of the body waits past the deadline
            # for its first byte; between reads, the clock decides.
            response.request.extensions["timeout"]["read"] = min(self.timeout, self._left(ends))
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise SourcePayloadError(self.name, shown, f"answer is over the {self.max_bytes:,}-byte limit "
                                                               f"(max_bytes); reading stopped")
                if self.clock() >= ends:
                    raise _PastDeadline
        finally:
            response.close()
        # The body is decoded already: its encoding and length headers no longer describe it.
        kept = [(k, v) for k, v in response.headers.multi_items() if k not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=kept, content=bytes(body), request=response.request,
                              extensions=response.extensions)

    def _left(self, ends: float) -> float:
        left = ends - self.clock()
        if left <= 0:
            raise _PastDeadline
        return left

    def _backoff(self, attempt: int) -> float:
        # Full jitter: clients that failed together do not come back together.
        return random.uniform(0, self.backoff * 2**attempt)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait, from either form of Retry-After (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _brief(response: httpx.Response) -> str:
    """A short, safe excerpt of an error body (the source's own message when it has one)."""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"][:200]
    except ValueError:
        pass
    return response.reason_phrase or "refused"
