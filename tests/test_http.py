"""The shared HTTP layer (omc_pipelines/sources/http.py) against the real sandbox server.

Waits are recorded, not slept: every HttpSource here gets ``sleep=`` a list's
``append``, so a test can say exactly how long the client would have waited.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
import tracemalloc
import traceback
from datetime import datetime, timedelta, timezone
from http import HTTPStatus

import httpx
import pytest

from chains import exception_chain
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.server import OVERSIZED_BYTES, Response, unreachable_url
from omc_pipelines.sources import http
from omc_pipelines.sources.http import (
    MAX_BYTES,
    MAX_RETRY_AFTER,
    USER_AGENT,
    HttpSource,
    RateLimiter,
    SourceError,
    SourcePayloadError,
    SourceRefused,
    SourceThrottled,
    SourceUnavailable,
    parse_retry_after,
    safe_url,
    shared_limiter,
)

LATEST = "/pubapi/v2/latest"
SECRET = "s3cr3t-T0KEN-value"


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self, start: float = 100.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_source(sleeps):
    """HttpSource factory: recorded sleeps, a generous rate limit, closed at the end."""
    made: list[HttpSource] = []

    def make(base_url: str, name: str = "test-http", **overrides) -> HttpSource:
        options = {"timeout": 2.0, "retries": 3, "backoff": 0.05, "rate_limit": 1000.0, "sleep": sleeps.append}
        source = HttpSource(name, base_url, **{**options, **overrides})
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def _served(sandbox, path: str) -> list[dict]:
    return sandbox.server.requests_to(path)


# --- parse_retry_after ------------------------------------------------------


@pytest.mark.parametrize("value, expected", [("2", 2.0), ("0", 0.0), (" 7 ", 7.0), ("120", 120.0)])
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5e3", "Wed, 99 Foo 2015"])
def test_parse_retry_after_unusable_values_are_none(value):
    assert parse_retry_after(value) is None


def test_parse_retry_after_http_date_in_the_future():
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    wait = parse_retry_after(email.utils.format_datetime(when, usegmt=True))
    # The date form has whole seconds: the wait is 29-30 s minus the few ms this test takes.
    assert 28.5 < wait <= 30.0


def test_parse_retry_after_http_date_in_the_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.fixture
def local_time_far_from_utc(monkeypatch):
    """Local time at UTC+14, so that reading a time as local instead of UTC shows."""
    monkeypatch.setenv("TZ", "XXX-14")  # POSIX form: needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_parse_retry_after_http_date_without_zone_is_utc(local_time_far_from_utc):
    when = datetime.now(timezone.utc) + timedelta(seconds=40)
    # "-0000" makes parsedate_to_datetime return a naive time: it must be read as UTC.
    wait = parse_retry_after(email.utils.format_datetime(when.replace(tzinfo=None)))
    assert 38.5 < wait <= 40.0


# --- RateLimiter and shared_limiter ------------------------------------------


def test_rate_limiter_spaces_calls_evenly():
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    passed = []
    for _ in range(5):
        limiter.wait()
        passed.append(clock())
    assert passed == pytest.approx([100.0, 100.25, 100.5, 100.75, 101.0])
    assert clock.sleeps == pytest.approx([0.25] * 4)


def test_rate_limiter_does_not_sleep_after_an_idle_gap_and_saves_no_burst():
    clock = FakeClock()
    limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 10.0  # idle far longer than the interval
    limiter.wait()
    assert clock.sleeps == []
    limiter.wait()  # but the idle time is not a credit for a burst
    assert clock.sleeps == pytest.approx([0.5])


class SlowReading(float):
    """A clock reading that is slow to compare: between reading the next free slot
    and taking it, threads that nothing keeps apart would all see the same slot."""

    def __lt__(self, other):
        time.sleep(0.002)
        return float(self) < other

    def __gt__(self, other):
        time.sleep(0.002)
        return float(self) > other


def test_rate_limiter_gives_each_thread_its_own_slot():
    recorded: list[float] = []
    lock = threading.Lock()

    def clock():  # the clock stands still at t=0: every thread asks at once
        return SlowReading(0.0)

    def sleep(seconds):
        with lock:
            recorded.append(seconds)

    limiter = RateLimiter(10.0, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=limiter.wait) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One thread goes at once, the other nine at 0.1, 0.2 ... 0.9: no two share a slot.
    assert sorted(recorded) == pytest.approx([0.1 * i for i in range(1, 10)])


def test_shared_limiter_is_one_per_source():
    a = shared_limiter("test-shared-a", 5.0)
    assert shared_limiter("test-shared-a", 5.0) is a
    assert shared_limiter("test-shared-b", 5.0) is not a
    assert a.interval == pytest.approx(0.2)
    # A client asking for more does not loosen the budget; one asking for less tightens it.
    assert shared_limiter("test-shared-a", 50.0) is a and a.interval == pytest.approx(0.2)
    assert shared_limiter("test-shared-a", 1.0) is a and a.interval == pytest.approx(1.0)


def test_source_errors_survive_pickling():
    import pickle

    for error in (SourceUnavailable("s", "u", "r"), SourceRefused("s", "u", "r", 404)):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.url) == (type(error), str(error), "u")
    assert pickle.loads(pickle.dumps(SourceRefused("s", "u", "r", 404))).status == 404


@pytest.mark.integration
def test_clients_of_one_source_share_one_budget(sandbox, make_source, monkeypatch):
    clock = FakeClock()
    monkeypatch.setitem(http._limiters, "test-budget", RateLimiter(2.0, clock=clock, sleep=clock.sleep))
    first = make_source(sandbox.url, name="test-budget", rate_limit=2.0)
    second = make_source(sandbox.url, name="test-budget", rate_limit=2.0)
    for source in (first, second, first, second):
        assert source.get(LATEST).status_code == 200
    # Four calls from two clients, one budget of 2/s: 0.5 s between each.
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])
    assert clock() == pytest.approx(101.5)


@pytest.mark.integration
def test_retries_also_wait_for_the_rate_limit(sandbox, make_source, monkeypatch, sleeps):
    clock = FakeClock()
    monkeypatch.setitem(http._limiters, "test-budget-retry", RateLimiter(4.0, clock=clock, sleep=clock.sleep))
    source = make_source(sandbox.url, name="test-budget-retry", rate_limit=4.0, retries=3)
    sandbox.inject(Fault(LATEST, "500", times=2))
    assert source.get(LATEST).status_code == 200
    assert len(_served(sandbox, LATEST)) == 3
    assert clock.sleeps == pytest.approx([0.25, 0.25])  # three tries, each through the limiter
    assert len(sleeps) == 2  # and the backoff between them, separately


# --- successes and headers ----------------------------------------------------


@pytest.mark.integration
def test_get_json_returns_the_decoded_answer_in_one_request(sandbox, make_source, sleeps):
    source = make_source(sandbox.url + "/")  # a trailing slash on the base is harmless
    body = source.get_json(LATEST)
    assert body["status"] == "ok"
    assert body["prices"]["btc"]["last"] == "130487.34"
    assert [r["path"] for r in _served(sandbox, "/pubapi")] == [LATEST]
    assert sleeps == []


@pytest.mark.integration
def test_requests_carry_user_agent_accept_extra_headers_and_params(sandbox, make_source):
    seen = []

    def echo(request, match):
        seen.append(request)
        return Response(body={"status": "ok"})

    sandbox.server.route("GET", r"/echo", echo)
    source = make_source(sandbox.url, headers={"X-Extra": "yes"})
    source.get_json("/echo", {"coin": "btc", "limit": 5})
    (request,) = seen
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept"] == "application/json"
    assert request.headers["x-extra"] == "yes"
    assert request.query == {"coin": ["btc"], "limit": ["5"]}


def test_clients_share_one_tls_context(make_source, monkeypatch):
    # Clients are made per run and per sensor tick; each reading the CA bundle anew cost the
    # demo 32 reads at 0.05-0.2 s of CPU each.
    make_source("https://example.invalid")  # the process's context, made once
    made = []
    create = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(a or k) or create(*a, **k))
    for _ in range(3):
        make_source("https://example.invalid")
    assert made == []


# --- 429 and Retry-After ------------------------------------------------------


@pytest.mark.integration
def test_429_with_retry_after_seconds_sleeps_exactly_that(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4)
    sandbox.inject(Fault(LATEST, "429", times=2, retry_after=2))
    assert source.get_json(LATEST)["status"] == "ok"
    assert sleeps == [2.0, 2.0]
    assert [r["status"] for r in _served(sandbox, LATEST)] == [429, 429, 200]


@pytest.mark.integration
def test_429_with_retry_after_http_date_sleeps_until_then(sandbox, make_source, sleeps):
    calls = []

    def dated_429(request, match):
        calls.append(request)
        if len(calls) == 1:
            when = datetime.now(timezone.utc) + timedelta(seconds=20)
            headers = {"Retry-After": email.utils.format_datetime(when, usegmt=True)}
            return Response(429, {"status": "error", "message": "slow down"}, headers)
        return Response(body={"status": "ok"})

    sandbox.server.route("GET", r"/dated", dated_429)
    source = make_source(sandbox.url)
    assert source.get_json("/dated") == {"status": "ok"}
    assert len(calls) == 2
    (wait,) = sleeps
    assert 18.5 < wait <= 20.0


@pytest.mark.integration
def test_429_without_retry_after_backs_off_with_jitter(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4, backoff=0.1)
    sandbox.inject(Fault(LATEST, "429", times=3))
    assert source.get(LATEST).status_code == 200
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        assert 0 <= wait <= 0.1 * 2**attempt


@pytest.mark.integration
def test_persistent_429_ends_in_source_throttled_after_all_tries(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=3)
    sandbox.inject(Fault(LATEST, "429", times=0, retry_after=1))
    with pytest.raises(SourceThrottled) as caught:
        source.get(LATEST)
    assert len(_served(sandbox, LATEST)) == 4  # 1 + retries
    assert sleeps == [1.0, 1.0, 1.0]  # no sleep after the last try
    assert "429 after 4 tries" in str(caught.value)


@pytest.mark.integration
def test_retry_after_over_the_maximum_fails_fast_without_sleeping(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4)
    sandbox.inject(Fault(LATEST, "429", times=0, retry_after=3600))
    started = time.monotonic()
    with pytest.raises(SourceThrottled) as caught:
        source.get(LATEST)
    assert time.monotonic() - started < 1.0
    assert sleeps == []
    assert len(_served(sandbox, LATEST)) == 1
    assert "3600" in caught.value.reason


@pytest.mark.integration
def test_retry_after_at_the_maximum_is_still_honoured(sandbox, make_source, sleeps):
    source = make_source(sandbox.url)
    sandbox.inject(Fault(LATEST, "429", times=1, retry_after=MAX_RETRY_AFTER))
    assert source.get(LATEST).status_code == 200
    assert sleeps == [MAX_RETRY_AFTER]


@pytest.mark.integration
def test_retry_after_http_date_over_the_maximum_fails_fast(sandbox, make_source, sleeps):
    def far_429(request, match):
        when = datetime.now(timezone.utc) + timedelta(hours=2)
        return Response(429, {"status": "error"}, {"Retry-After": email.utils.format_datetime(when, usegmt=True)})

    sandbox.server.route("GET", r"/far", far_429)
    source = make_source(sandbox.url)
    with pytest.raises(SourceThrottled):
        source.get("/far")
    assert sleeps == []
    assert len(_served(sandbox, "/far")) == 1


# --- 5xx, disconnects, timeouts -------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_persistent_5xx_retries_then_source_unavailable(sandbox, make_source, sleeps, kind):
    source = make_source(sandbox.url, retries=3, backoff=0.1)
    sandbox.inject(Fault(LATEST, kind, times=0))
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    served = _served(sandbox, LATEST)
    assert len(served) == 4  # 1 + retries
    assert {r["status"] for r in served} == {int(kind)}
    assert f"HTTP {kind}" in caught.value.reason
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        assert 0 <= wait <= 0.1 * 2**attempt


@pytest.mark.integration
def test_transient_5xx_is_mended_by_a_retry(sandbox, make_source, sleeps):
    source = make_source(sandbox.url)
    sandbox.inject(Fault(LATEST, "502", times=1))
    assert source.get_json(LATEST)["status"] == "ok"
    assert [r["status"] for r in _served(sandbox, LATEST)] == [502, 200]
    assert len(sleeps) == 1


@pytest.mark.integration
def test_backoff_is_full_jitter_on_a_doubling_cap(sandbox, make_source, sleeps, monkeypatch):
    ranges = []

    def uniform(low, high):
        ranges.append((low, high))
        return high

    monkeypatch.setattr(http.random, "uniform", uniform)
    source = make_source(sandbox.url, retries=4, backoff=0.1)
    sandbox.inject(Fault(LATEST, "503", times=0))
    with pytest.raises(SourceUnavailable):
        source.get(LATEST)
    assert [low for low, _ in ranges] == [0, 0, 0, 0]
    assert [high for _, high in ranges] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8])


@pytest.mark.integration
def test_backoff_waits_vary(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=6, backoff=1.0)
    sandbox.inject(Fault(LATEST, "500", times=0))
    with pytest.raises(SourceUnavailable):
        source.get(LATEST)
    assert len(sleeps) == 6
    assert all(0 <= wait <= 2**attempt for attempt, wait in enumerate(sleeps))
    assert len(set(sleeps)) > 1  # jittered, not a fixed schedule


@pytest.mark.integration
def test_persistent_disconnect_retries_then_source_unavailable(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=2)
    sandbox.inject(Fault(LATEST, "disconnect", times=0))
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert len(_served(sandbox, LATEST)) == 3
    assert len(sleeps) == 2
    assert "connection failed" in caught.value.reason


@pytest.mark.integration
def test_transient_disconnect_is_mended_by_a_retry(sandbox, make_source):
    source = make_source(sandbox.url)
    sandbox.inject(Fault(LATEST, "disconnect", times=1))
    assert source.get_json(LATEST)["status"] == "ok"
    assert [r["fault"] for r in _served(sandbox, LATEST)] == ["disconnect", None]


def test_refused_connection_retries_then_source_unavailable(make_source, sleeps):
    source = make_source(unreachable_url(), retries=2)
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert len(sleeps) == 2
    assert "connection failed" in caught.value.reason


@pytest.mark.integration
def test_stall_times_out_and_ends_in_source_unavailable(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, timeout=0.3, retries=2)
    sandbox.inject(Fault(LATEST, "stall", times=0, seconds=2))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    elapsed = time.monotonic() - started
    assert "timed out after 0.3 s" in caught.value.reason
    assert len(sleeps) == 2
    assert 0.85 <= elapsed < 1.9  # three tries of 0.3 s each, never waiting out the stall


@pytest.mark.integration
def test_a_single_stall_is_mended_by_a_retry(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, timeout=0.3, retries=2)
    sandbox.inject(Fault(LATEST, "stall", times=1, seconds=2))
    assert source.get_json(LATEST)["status"] == "ok"
    assert len(sleeps) == 1


# --- refusals are not retried ---------------------------------------------------


@pytest.mark.integration
def test_403_is_refused_without_retry(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4)
    sandbox.inject(Fault(LATEST, "403", times=0))
    with pytest.raises(SourceRefused) as caught:
        source.get(LATEST)
    assert caught.value.status == 403
    assert "sandbox fault 403" in caught.value.reason  # the source's own message
    assert len(_served(sandbox, LATEST)) == 1
    assert sleeps == []


@pytest.mark.integration
def test_400_is_refused_without_retry_with_the_source_message(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4)
    with pytest.raises(SourceRefused) as caught:
        source.get_json("/pubapi/v2/latest/nosuchcoin")
    assert caught.value.status == 400
    assert caught.value.reason == "HTTP 400: Coin not found"
    assert len(_served(sandbox, "/pubapi/v2/latest/nosuchcoin")) == 1
    assert sleeps == []


@pytest.mark.integration
def test_404_is_refused_without_retry(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, retries=4)
    with pytest.raises(SourceRefused) as caught:
        source.get("/no/such/path")
    assert caught.value.status == 404
    assert len(_served(sandbox, "/no/such")) == 1
    assert sleeps == []


@pytest.mark.integration
def test_refusal_without_a_json_message_uses_the_reason_phrase(sandbox, make_source):
    sandbox.server.route("GET", r"/teapot", lambda req, m: Response(418, b"<html>no</html>", content_type="text/html"))
    source = make_source(sandbox.url)
    with pytest.raises(SourceRefused) as caught:
        source.get("/teapot")
    assert caught.value.status == 418
    assert caught.value.reason == f"HTTP 418: {HTTPStatus(418).phrase}"
    assert "<html>" not in str(caught.value)


# --- payloads ---------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["malformed", "truncated"])
def test_bad_json_is_a_payload_error_and_not_retried(sandbox, make_source, sleeps, kind):
    source = make_source(sandbox.url, retries=4)
    sandbox.inject(Fault(LATEST, kind, times=1))
    with pytest.raises(SourcePayloadError) as caught:
        source.get_json(LATEST)
    assert "not valid JSON" in caught.value.reason
    assert caught.value.url == f"{sandbox.url}{LATEST}"
    assert len(_served(sandbox, LATEST)) == 1
    assert sleeps == []


@pytest.mark.integration
def test_get_without_json_does_not_judge_the_body(sandbox, make_source):
    source = make_source(sandbox.url)
    sandbox.inject(Fault(LATEST, "malformed", times=1))
    assert source.get(LATEST).text.startswith("<html>")


# --- errors name the source and URL, never a secret ----------------------------


def _assert_no_secret(exc: SourceError, source: HttpSource, path: str) -> None:
    texts = [str(exc), repr(exc), exc.url, exc.reason, *map(str, exc.args), "".join(traceback.format_exception(exc))]
    for text in texts:
        assert SECRET not in text
    assert str(exc).startswith(f"{source.name}: ")
    assert exc.source == source.name
    assert exc.url == f"{source.base_url}{path}?coin=btc&auth_token=%2A%2A%2A"
    assert exc.url in str(exc)


SECRET_CASES = [
    ("403", SourceRefused),
    ("429", SourceThrottled),
    ("500", SourceUnavailable),
    ("502", SourceUnavailable),
    ("503", SourceUnavailable),
    ("disconnect", SourceUnavailable),
    ("stall", SourceUnavailable),
    ("malformed", SourcePayloadError),
    ("truncated", SourcePayloadError),
]


@pytest.mark.integration
@pytest.mark.parametrize("kind, error", SECRET_CASES, ids=[k for k, _ in SECRET_CASES])
def test_errors_never_show_a_secret_param(sandbox, make_source, kind, error):
    source = make_source(sandbox.url, retries=1, timeout=0.3, secret_params={"auth_token"})
    sandbox.inject(Fault(LATEST, kind, times=0, seconds=2))
    with pytest.raises(error) as caught:
        source.get_json(LATEST, {"coin": "btc", "auth_token": SECRET})
    _assert_no_secret(caught.value, source, LATEST)


@pytest.mark.integration
def test_retry_after_refusal_never_shows_a_secret_param(sandbox, make_source):
    source = make_source(sandbox.url, secret_params={"auth_token"})
    sandbox.inject(Fault(LATEST, "429", times=0, retry_after=3600))
    with pytest.raises(SourceThrottled) as caught:
        source.get(LATEST, {"coin": "btc", "auth_token": SECRET})
    _assert_no_secret(caught.value, source, LATEST)


@pytest.mark.integration
def test_400_refusal_never_shows_a_secret_param(sandbox, make_source):
    source = make_source(sandbox.url, secret_params={"auth_token"})
    path = "/pubapi/v2/latest/nosuchcoin"
    with pytest.raises(SourceRefused) as caught:
        source.get_json(path, {"coin": "btc", "auth_token": SECRET})
    _assert_no_secret(caught.value, source, path)


def test_refused_connection_never_shows_a_secret_param(make_source):
    source = make_source(unreachable_url(), retries=1, secret_params={"auth_token"})
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST, {"coin": "btc", "auth_token": SECRET})
    _assert_no_secret(caught.value, source, LATEST)


@pytest.mark.integration
def test_the_secret_still_reaches_the_server(sandbox, make_source):
    seen = []
    sandbox.server.route("GET", r"/echo", lambda req, m: seen.append(req.query) or Response(body={"status": "ok"}))
    source = make_source(sandbox.url, secret_params={"auth_token"})
    source.get("/echo", {"auth_token": SECRET})
    assert seen == [{"auth_token": [SECRET]}]  # masked only where it is shown


def test_shown_url_masks_only_secret_params():
    source = HttpSource("test-shown", "http://example.invalid/", secret_params=("key", "auth_token"))
    try:
        assert source.shown_url("/a") == "http://example.invalid/a"
        assert source.shown_url("/a", {"key": "k1", "coin": "btc"}) == "http://example.invalid/a?key=%2A%2A%2A&coin=btc"
    finally:
        source.close()


def test_error_types_form_one_hierarchy():
    for cls in (SourceUnavailable, SourceThrottled, SourcePayloadError):
        assert issubclass(cls, SourceError)
        exc = cls("src", "http://h/p", "why")
        assert str(exc) == "src: why (http://h/p)"
    refused = SourceRefused("src", "http://h/p", "HTTP 401: no", 401)
    assert isinstance(refused, SourceError) and refused.status == 401
    assert not issubclass(SourceError, httpx.HTTPError)


# --- the deadline of one request ------------------------------------------------------------

BTC = "/pubapi/v2/latest/btc"  # a short answer (about 80 bytes)


def test_the_default_deadline_is_three_read_timeouts_and_can_be_set():
    with HttpSource("test-deadline", "http://example.invalid", timeout=2.0) as source:
        assert source.deadline == 6.0
    with HttpSource("test-deadline", "http://example.invalid", timeout=2.0, deadline=0.5) as source:
        assert source.deadline == 0.5


@pytest.mark.integration
def test_a_dripping_answer_ends_at_its_deadline(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, timeout=2.0, deadline=1.0, retries=0)
    sandbox.inject(Fault(LATEST, "drip", times=0, seconds=0.1))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    elapsed = time.monotonic() - started
    # Each byte comes well within the read timeout: only the deadline ends it, one drip after at most.
    assert 1.0 <= elapsed < 1.5
    assert "took too long" in caught.value.reason and "1 s deadline" in caught.value.reason
    assert caught.value.url == f"{sandbox.url}{LATEST}"


@pytest.mark.integration
def test_a_request_past_its_deadline_is_retried_like_a_timeout(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, deadline=0.5, retries=2)
    sandbox.inject(Fault(LATEST, "drip", times=1, seconds=0.1))
    assert source.get_json(LATEST)["status"] == "ok"
    assert [r["fault"] for r in _served(sandbox, LATEST)] == ["drip", None]
    assert len(sleeps) == 1


@pytest.mark.integration
def test_an_answer_dripping_in_within_the_deadline_is_read_whole(sandbox, make_source):
    whole = make_source(sandbox.url).get_json(BTC)
    sandbox.inject(Fault(BTC, "drip", times=1, seconds=0.002))
    assert make_source(sandbox.url, deadline=5.0).get_json(BTC) == whole


@pytest.mark.integration
def test_waiting_for_the_headers_stops_at_the_deadline_not_the_read_timeout(sandbox, make_source):
    source = make_source(sandbox.url, timeout=10.0, deadline=0.5, retries=0)
    sandbox.inject(Fault(LATEST, "stall", times=0, seconds=5))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert time.monotonic() - started < 1.0
    assert "took too long" in caught.value.reason


@pytest.mark.integration
def test_a_body_gone_quiet_stops_at_the_deadline_not_the_read_timeout(sandbox, make_source):
    # The first byte comes at once, the next only after 5 s: the body's reads wait what is left.
    source = make_source(sandbox.url, timeout=10.0, deadline=0.5, retries=0)
    sandbox.inject(Fault(LATEST, "drip", times=0, seconds=5))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert time.monotonic() - started < 1.0
    assert "took too long" in caught.value.reason


# --- the budget of one client ---------------------------------------------------------------


@pytest.fixture
def highest_backoff(monkeypatch):
    """Backoff without jitter: always the cap, so that waits are known in advance."""
    monkeypatch.setattr(http.random, "uniform", lambda low, high: high)


@pytest.mark.integration
def test_a_budget_stops_retries_before_a_wait_would_pass_it(sandbox, make_source, highest_backoff):
    clock = FakeClock()
    source = make_source(sandbox.url, retries=20, backoff=1.0, budget=5.0, clock=clock, sleep=clock.sleep)
    sandbox.inject(Fault(LATEST, "503", times=0))
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert clock.sleeps == [1.0, 2.0]  # the next wait, 4 s, would end past the 5 s budget
    assert len(_served(sandbox, LATEST)) == 3
    assert "5 s budget" in caught.value.reason and "HTTP 503" in caught.value.reason


@pytest.mark.integration
def test_many_retries_end_at_the_budget_in_real_time(sandbox, make_source):
    sandbox.inject(Fault(LATEST, "500", times=0))
    started = time.monotonic()
    source = make_source(sandbox.url, retries=1000, backoff=0.02, budget=1.0, sleep=time.sleep)
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert time.monotonic() - started < 1.3
    assert "budget" in caught.value.reason
    assert 3 < len(_served(sandbox, LATEST)) < 1000


@pytest.mark.integration
def test_the_budget_cuts_a_request_short(sandbox, make_source):
    sandbox.inject(Fault(LATEST, "drip", times=0, seconds=0.05))
    started = time.monotonic()  # the budget counts from the client's creation
    source = make_source(sandbox.url, deadline=10.0, retries=5, budget=0.8)
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert 0.8 <= time.monotonic() - started < 1.3
    assert "0.8 s budget" in caught.value.reason
    assert len(_served(sandbox, LATEST)) == 1  # no retry once the budget is spent


@pytest.mark.integration
def test_retry_after_counts_against_the_budget(sandbox, make_source):
    clock = FakeClock()
    source = make_source(sandbox.url, retries=5, budget=5.0, clock=clock, sleep=clock.sleep)
    sandbox.inject(Fault(LATEST, "429", times=0, retry_after=3))
    # Still "throttled": a caller (the SEC's cool-down) must know the source asked us to slow down.
    with pytest.raises(SourceThrottled) as caught:
        source.get(LATEST)
    assert clock.sleeps == [3.0]
    assert len(_served(sandbox, LATEST)) == 2
    assert "5 s budget" in caught.value.reason


@pytest.mark.integration
def test_the_budget_counts_from_the_clients_creation(sandbox, make_source):
    clock = FakeClock()
    source = make_source(sandbox.url, budget=2.0, clock=clock, sleep=clock.sleep)
    assert source.get(LATEST).status_code == 200
    clock.now += 2.0
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)
    assert "budget" in caught.value.reason
    assert len(_served(sandbox, LATEST)) == 1  # nothing sent once it is spent


@pytest.mark.integration
def test_a_rate_limit_wait_past_the_budget_is_not_slept(sandbox, make_source, monkeypatch):
    clock = FakeClock()
    monkeypatch.setitem(http._limiters, "test-budget-limit", RateLimiter(0.1, clock=clock, sleep=clock.sleep))
    source = make_source(sandbox.url, name="test-budget-limit", rate_limit=0.1, budget=5.0, clock=clock)
    assert source.get(LATEST).status_code == 200
    with pytest.raises(SourceUnavailable) as caught:
        source.get(LATEST)  # the next slot is 10 s away
    assert clock.sleeps == []
    assert "rate limit" in caught.value.reason and "budget" in caught.value.reason
    assert len(_served(sandbox, LATEST)) == 1


def test_rate_limiter_refuses_a_slot_beyond_the_limit_without_taking_it():
    clock = FakeClock()
    limiter = RateLimiter(1.0, clock=clock, sleep=clock.sleep)
    assert limiter.wait(within=0.0)
    assert not limiter.wait(within=0.5)  # the next slot is 1 s away
    assert clock.sleeps == []
    assert limiter.wait(within=1.0)  # the refused call did not take a slot
    assert clock.sleeps == [1.0]


# --- the size of an answer --------------------------------------------------------------------


def test_the_default_size_limit_is_finite_and_below_the_sandboxs_oversized_answer():
    with HttpSource("test-size", "http://example.invalid") as source:
        assert source.max_bytes == MAX_BYTES == 32 * 1024 * 1024
    assert OVERSIZED_BYTES >= 2 * MAX_BYTES


@pytest.mark.integration
def test_a_declared_length_over_the_limit_is_refused_before_reading(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, max_bytes=1_000_000)
    sandbox.inject(Fault(LATEST, "oversized", times=0))
    started = time.monotonic()
    with pytest.raises(SourcePayloadError) as caught:
        source.get(LATEST)
    assert time.monotonic() - started < 0.5
    assert "1,000,000-byte limit" in caught.value.reason
    assert len(_served(sandbox, LATEST)) == 1 and sleeps == []  # not retried: it would be as big again


@pytest.mark.integration
def test_a_streamed_answer_stops_at_the_limit_in_bounded_memory(sandbox, make_source, sleeps):
    source = make_source(sandbox.url, max_bytes=1024 * 1024)
    sandbox.inject(Fault(LATEST, "oversized", times=0, variant="chunked"))  # 64 MiB, no length said
    tracemalloc.start()
    try:
        with pytest.raises(SourcePayloadError) as caught:
            source.get(LATEST)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # a few chunks past the 1 MiB kept, never the 64 MiB sent
    assert "1,048,576-byte limit" in caught.value.reason and "stopped" in caught.value.reason
    assert sleeps == []


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["declared", "chunked"])
def test_an_answer_exactly_at_the_limit_is_read(sandbox, make_source, variant):
    sandbox.inject(Fault(LATEST, "oversized", times=2, size=5000, variant=variant))
    assert len(make_source(sandbox.url, max_bytes=5000).get(LATEST).content) == 5000
    with pytest.raises(SourcePayloadError):
        make_source(sandbox.url, max_bytes=4999).get(LATEST)


@pytest.mark.integration
def test_a_compressed_answer_is_judged_by_its_decoded_size(sandbox, make_source):
    import gzip

    body = b"[" + b"0," * 500_000 + b"0]"  # a megabyte of JSON that gzips to a few kilobytes
    packed = gzip.compress(body)
    sandbox.server.route("GET", r"/packed",
                         lambda req, m: Response(body=packed, headers={"Content-Encoding": "gzip"}))
    assert len(make_source(sandbox.url).get_json("/packed")) == 500_001
    with pytest.raises(SourcePayloadError) as caught:
        make_source(sandbox.url, max_bytes=len(body) - 1).get("/packed")
    assert "limit" in caught.value.reason


@pytest.mark.integration
def test_an_empty_answer_is_not_json(sandbox, make_source, sleeps):
    sandbox.inject(Fault(LATEST, "empty"))
    source = make_source(sandbox.url)
    with pytest.raises(SourcePayloadError) as caught:
        source.get_json(LATEST)
    assert "not valid JSON" in caught.value.reason and sleeps == []


# --- URLs safe to show, quiet loggers, no chain to walk ---------------------------------------


@pytest.mark.parametrize("url, shown", [
    ("https://example.com/feed?key=abc", "https://example.com/feed?key=%2A%2A%2A"),
    ("https://example.com/feed?page=2&apikey=abc&limit=5", "https://example.com/feed?page=2&apikey=%2A%2A%2A&limit=5"),
    ("https://example.com/feed", "https://example.com/feed"),
    ("https://user:pa55@example.com:8443/feed", "https://***@example.com:8443/feed"),
    ("https://example.com/cb#access_token=abc", "https://example.com/cb"),
    ("https://example.com/x?sig=", "https://example.com/x?sig=%2A%2A%2A"),
])
def test_safe_url_masks_every_query_value_but_paging_and_filters(url, shown):
    assert safe_url(url) == shown


def test_safe_url_masks_secret_names_even_when_they_look_harmless():
    assert safe_url("https://h/p?page=2&limit=5", secret_params=("limit",)) == "https://h/p?page=2&limit=%2A%2A%2A"


def test_shown_url_masks_a_query_that_came_with_the_path():
    with HttpSource("test-shown", "https://example.com") as source:
        assert source.shown_url("/feed?key=abc&page=2") == "https://example.com/feed?key=%2A%2A%2A&page=2"
        assert source.shown_url("/feed?key=abc", {"page": 3}) == "https://example.com/feed?key=%2A%2A%2A&page=3"


@pytest.mark.integration
def test_no_log_record_shows_a_secret(sandbox, make_source, caplog):
    caplog.set_level(logging.DEBUG)  # an application that logs everything
    source = make_source(sandbox.url, retries=1, secret_params={"auth_token"})
    source.get(LATEST, {"auth_token": SECRET})
    sandbox.inject(Fault(LATEST, "500", times=0))
    with pytest.raises(SourceUnavailable):
        source.get(LATEST, {"auth_token": SECRET})
    feed = make_source(sandbox.url, name="test-feed")
    with pytest.raises(SourceRefused):
        feed.get(f"/feeds/nosuchfeed?key={SECRET}")
    assert not [r for r in caplog.records if SECRET in r.getMessage() or SECRET in str(r.args)]
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("httpcore").getEffectiveLevel() >= logging.WARNING




@pytest.mark.integration
def test_a_payload_error_keeps_neither_the_body_nor_the_request(sandbox, make_source):
    # An error page that echoes the address asked for, token and all, in a 200.
    sandbox.server.route("GET", r"/echo", lambda req, m: Response(body=f"<html>you asked {req.query}</html>"))
    source = make_source(sandbox.url, secret_params={"auth_token"})
    with pytest.raises(SourcePayloadError) as caught:
        source.get_json("/echo", {"auth_token": SECRET})
    assert exception_chain(caught.value) == [caught.value]
    assert SECRET not in "".join(traceback.format_exception(caught.value))


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["disconnect", "stall", "drip", "oversized"])
def test_layer_errors_keep_no_httpx_error(sandbox, make_source, kind):
    source = make_source(sandbox.url, retries=0, timeout=0.3, deadline=0.5, max_bytes=1000,
                         secret_params={"auth_token"})
    sandbox.inject(Fault(LATEST, kind, times=0, seconds=1))
    with pytest.raises(SourceError) as caught:
        source.get(LATEST, {"coin": "btc", "auth_token": SECRET})
    assert exception_chain(caught.value) == [caught.value]
    _assert_no_secret(caught.value, source, LATEST)


# --- a form POST that is safe to repeat (a token grant) ----------------------------------------

TOKEN_PATH = "/api/v1/access_token"
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def reddit_credentials():
    from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET

    return REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET


@pytest.mark.integration
def test_a_form_post_sends_the_form_with_basic_auth_and_is_retried_like_a_read(sandbox, make_source, sleeps,
                                                                               reddit_credentials):
    sandbox.inject(Fault(TOKEN_PATH, "500", times=1))
    sandbox.inject(Fault(TOKEN_PATH, "disconnect", times=1))
    source = make_source(sandbox.url, retries=2)
    answer = source.decode_json(source.post_form(TOKEN_PATH, GRANT, auth=reddit_credentials), TOKEN_PATH)
    assert answer["token_type"] == "bearer" and answer["access_token"]
    assert [(r["method"], r["fault"]) for r in _served(sandbox, TOKEN_PATH)] == [
        ("POST", "500"), ("POST", "disconnect"), ("POST", None)]
    assert len(sleeps) == 2


@pytest.mark.integration
@pytest.mark.parametrize("kind, error, reason", [
    ("drip", SourceUnavailable, "took too long"),
    ("oversized", SourcePayloadError, "1,000,000-byte limit"),
    ("403", SourceRefused, "HTTP 403"),
])
def test_a_form_post_has_a_reads_deadline_size_cap_and_refusals(sandbox, make_source, reddit_credentials,
                                                                 kind, error, reason):
    source = make_source(sandbox.url, timeout=2.0, deadline=0.5, retries=0, max_bytes=1_000_000)
    sandbox.inject(Fault(TOKEN_PATH, kind, times=0, seconds=0.1))
    started = time.monotonic()
    with pytest.raises(error) as caught:
        source.post_form(TOKEN_PATH, GRANT, auth=reddit_credentials)
    assert time.monotonic() - started < 1.0
    assert reason in caught.value.reason and caught.value.url == f"{sandbox.url}{TOKEN_PATH}"


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["500", "disconnect", "stall", "malformed", "oversized"])
def test_a_form_post_never_shows_its_credentials(sandbox, make_source, reddit_credentials, kind, caplog):
    import base64

    caplog.set_level(logging.DEBUG)
    client_id, secret = reddit_credentials
    source = make_source(sandbox.url, retries=1, timeout=0.3, deadline=0.5)
    sandbox.inject(Fault(TOKEN_PATH, kind, times=0, seconds=1))
    with pytest.raises(SourceError) as caught:
        source.decode_json(source.post_form(TOKEN_PATH, GRANT, auth=reddit_credentials), TOKEN_PATH)
    assert exception_chain(caught.value) == [caught.value]
    shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(source)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    for text in [shown, *(r.getMessage() + str(r.args) for r in caplog.records)]:
        assert secret not in text and basic not in text
