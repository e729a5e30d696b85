"""The one HTTP layer every source client uses.

Explicit timeouts; retries with exponential backoff and full jitter for 429
(honouring ``Retry-After``), 5xx and connection failures, on reads only; a
per-source rate limit shared by the whole process; and errors as a small typed
hierarchy that name the source and the URL but never a secret.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import httpx

USER_AGENT = "omc-pipelines/0.1 (+https://github.com/omc-pipelines)"
# A Retry-After longer than this is not slept on: the call fails and the next
# scheduled run picks up, instead of a run hanging for an hour.
MAX_RETRY_AFTER = 60.0


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

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


_limiters: dict[str, RateLimiter] = {}
_limiters_lock = threading.Lock()


def shared_limiter(source: str, per_second: float) -> RateLimiter:
    """The process-wide limiter of a source, so that every client of it shares one
    budget; where clients ask for different rates, the slowest holds for all."""
    with _limiters_lock:
        limiter = _limiters.setdefault(source, RateLimiter(per_second))
        limiter.interval = max(limiter.interval, 1.0 / per_second)
        return limiter


@dataclass
class HttpSource:
    """A source's base URL and manners. ``secret_params`` never appear in errors."""

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

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._limiter = shared_limiter(self.name, self.rate_limit)
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **self.headers},
            transport=self.transport,
            follow_redirects=True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def shown_url(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """The URL as errors may show it: secret parameters masked."""
        shown = {k: ("***" if k in self.secret_params else v) for k, v in (params or {}).items()}
        return f"{self.base_url}{path}" + (f"?{urlencode(shown)}" if shown else "")

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON, retrying what a retry can mend."""
        response = self.get(path, params)
        return self.decode_json(response, path, params)

    def decode_json(self, response: httpx.Response, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SourcePayloadError(
                self.name, self.shown_url(path, params), f"answer is not valid JSON ({exc.__class__.__name__}: {exc})"
            ) from None

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """GET with retries. Answers below 400 are returned, 304 included, so that a
        conditional request (``If-None-Match``/``If-Modified-Since`` in ``headers``) can see it."""
        shown = self.shown_url(path, params)
        url = f"{self.base_url}{path}"
        for attempt in range(self.retries + 1):
            last_try = attempt == self.retries
            self._limiter.wait()
            # Errors are raised outside the except blocks: httpx's exception carries the
            # request (URL with its query, headers with credentials), and an error raised
            # inside would keep it as __context__ for any tool that walks the chain.
            failure = fatal = None
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.TimeoutException:
                failure = f"timed out after {self.timeout:g} s"
            except httpx.TransportError as exc:
                failure = f"connection failed ({exc.__class__.__name__})"
            except httpx.HTTPError as exc:  # redirect loops, undecodable bodies: no retry mends them
                fatal = f"request failed ({exc.__class__.__name__})"
            if fatal:
                raise SourceUnavailable(self.name, shown, fatal)
            if failure:
                if last_try:
                    raise SourceUnavailable(self.name, shown, failure)
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status < 400:
                return response
            if status in self.throttle_statuses:
                if last_try:
                    raise SourceThrottled(self.name, shown, f"HTTP {status} after {self.retries + 1} tries")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                    raise SourceThrottled(self.name, shown, f"HTTP {status}, asked to wait {retry_after:.0f} s")
                self.sleep(retry_after if retry_after is not None else self._backoff(attempt))
                continue
            if status >= 500:
                if last_try:
                    raise SourceUnavailable(self.name, shown, f"HTTP {status} after {self.retries + 1} tries")
                self.sleep(self._backoff(attempt))
                continue
            raise SourceRefused(self.name, shown, f"HTTP {status}: {_brief(response)}", status)
        raise AssertionError("unreachable")

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
