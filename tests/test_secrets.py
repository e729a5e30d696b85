"""Secrets stay where they are sent: never in an error, its chain, a log record or a repr.

The human sources carry the secrets (CryptoPanic's token in a query, Reddit's bearer
token and client secret, keys in configured feed URLs); each test here walks everything
an error could show, chained errors included, with the request any of them might hold.
"""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest

from chains import exception_chain
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.cryptopanic import CRYPTOPANIC_POSTS, CRYPTOPANIC_TOKEN
from omc_pipelines.sandbox.human import HumanSandbox
from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET
from omc_pipelines.sandbox.server import Response, SandboxServer, serve, unreachable_url
from omc_pipelines.sources import http as http_layer
from omc_pipelines.sources.cryptopanic import CryptoPanicClient, CryptoPanicRefused
from omc_pipelines.sources.http import SourceError, SourcePayloadError, SourceUnavailable
from omc_pipelines.sources.news import NewsFeeds
from omc_pipelines.sources.reddit import RedditClient, RedditRefused

FAST = {"retries": 0, "backoff": 0.01, "rate_limit": 1000.0, "timeout": 2.0}
FEED_KEY = "feed-key-5e3a9c"
BEARER = "bearer-token-77f0e1"


@pytest.fixture(autouse=True)
def fresh_rate_limits(monkeypatch):
    monkeypatch.setattr(http_layer, "_limiters", {})


@pytest.fixture
def box():
    human = HumanSandbox()
    with serve(human) as server:
        yield server, human


@pytest.fixture
def bare():
    """A server with no routes but the ones a test adds."""
    with SandboxServer() as server:
        yield server




def _all_text(exc: BaseException) -> str:
    """Everything the error and its chain could show, with any request they hold."""
    parts = ["".join(traceback.format_exception(exc))]
    for current in exception_chain(exc):
        parts += [str(current), repr(current), *(repr(value) for value in vars(current).values())]
        request = getattr(current, "_request", None)
        if isinstance(request, httpx.Request):
            parts += [str(request.url), repr(dict(request.headers))]
    return "\n".join(parts)


def _assert_alone(exc: SourceError) -> None:
    """No chain at all: neither an httpx error (its request holds the URL and the headers)
    nor the layer's own error that a client's refusal was made from."""
    assert exception_chain(exc) == [exc]


# --- CryptoPanic: the token in the query --------------------------------------------------------


@pytest.mark.integration
def test_a_cryptopanic_refusal_stands_alone(box):
    server, _ = box
    wrong = "wrong-token-3c9d"
    with CryptoPanicClient.create(server.url, wrong, **FAST) as client, pytest.raises(CryptoPanicRefused) as caught:
        client.posts()
    _assert_alone(caught.value)
    assert wrong not in _all_text(caught.value)


@pytest.mark.integration
def test_a_cryptopanic_answer_echoing_the_token_leaves_no_trace(bare):
    bare.route("GET", CRYPTOPANIC_POSTS.rstrip("/"), lambda req, m: Response(body=f"<html>you asked {req.query}</html>"))
    with CryptoPanicClient.create(bare.url, CRYPTOPANIC_TOKEN, **FAST) as client, \
            pytest.raises(SourcePayloadError) as caught:
        client.posts()
    _assert_alone(caught.value)
    assert CRYPTOPANIC_TOKEN not in _all_text(caught.value)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["disconnect", "drip", "stall"])
def test_a_cryptopanic_failure_carries_no_httpx_error(box, kind):
    server, _ = box
    server.inject(Fault("/api/", kind, times=0, seconds=1))
    client = CryptoPanicClient.create(server.url, CRYPTOPANIC_TOKEN, **{**FAST, "timeout": 0.3})
    client.http.deadline = 0.5
    with client, pytest.raises(SourceUnavailable) as caught:
        client.posts()
    _assert_alone(caught.value)
    assert CRYPTOPANIC_TOKEN not in _all_text(caught.value)


def test_a_refused_connection_carries_no_httpx_error():
    with CryptoPanicClient.create(unreachable_url(), CRYPTOPANIC_TOKEN, **FAST) as client, \
            pytest.raises(SourceUnavailable) as caught:
        client.posts()
    _assert_alone(caught.value)
    assert CRYPTOPANIC_TOKEN not in _all_text(caught.value)


@pytest.mark.integration
def test_no_log_record_shows_the_cryptopanic_token(box, caplog):
    server, _ = box
    caplog.set_level(logging.DEBUG)
    with CryptoPanicClient.create(server.url, CRYPTOPANIC_TOKEN, **FAST) as client:
        assert client.posts(max_pages=2)
    assert not [r for r in caplog.records if CRYPTOPANIC_TOKEN in r.getMessage() or CRYPTOPANIC_TOKEN in str(r.args)]


# --- Reddit: the bearer token and the client secret ---------------------------------------------


@pytest.mark.integration
def test_a_reddit_refusal_stands_alone(box):
    server, human = box
    human.reddit.set_access(False)
    client = RedditClient.create(server.url, server.url, REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, **FAST)
    with client, pytest.raises(RedditRefused) as caught:
        client.new_posts("Bitcoin")
    _assert_alone(caught.value)
    assert REDDIT_CLIENT_SECRET not in _all_text(caught.value)


@pytest.mark.integration
def test_a_reddit_answer_echoing_the_bearer_token_leaves_no_trace(bare):
    bare.route("POST", r"/api/v1/access_token",
               lambda req, m: Response(body={"access_token": BEARER, "token_type": "bearer", "expires_in": 3600}))
    bare.route("GET", r"/r/Bitcoin/new\.json",
               lambda req, m: Response(body=f"<html>you sent {req.headers.get('authorization')}</html>"))
    client = RedditClient.create(bare.url, bare.url, REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, **FAST)
    with client, pytest.raises(SourcePayloadError) as caught:
        client.new_posts("Bitcoin")
    _assert_alone(caught.value)
    assert BEARER not in _all_text(caught.value)


# --- news feeds: a key in a configured URL --------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("kind, error", [("500", SourceUnavailable), ("malformed", SourcePayloadError),
                                         ("oversized", SourcePayloadError)])
def test_a_feed_key_never_shows_in_an_error(box, kind, error):
    server, _ = box
    server.inject(Fault("/feeds/decrypt", kind, times=0, **({"size": 100_000} if kind == "oversized" else {})))
    http = http_layer.HttpSource("news:decrypt", server.url, max_bytes=50_000, **FAST)
    with NewsFeeds({"decrypt": f"{server.url}/feeds/decrypt?key={FEED_KEY}&page=1"},
                   http_factory=lambda name, base: http) as news:
        failed = news.fetch_all().errors["decrypt"]
    assert isinstance(failed, error)
    assert FEED_KEY not in _all_text(failed) and FEED_KEY not in repr(http)
    assert failed.url == f"{server.url}/feeds/decrypt?key=%2A%2A%2A&page=1"


@pytest.mark.integration
def test_a_feed_key_still_reaches_the_feed(box):
    server, _ = box
    feed = httpx.get(f"{server.url}/feeds/decrypt").content
    seen = []
    server.route("GET", r"/keyed", lambda req, m: seen.append(req.query) or Response(
        body=feed, content_type="application/rss+xml"))
    with NewsFeeds({"keyed": f"{server.url}/keyed?key={FEED_KEY}"}, **FAST) as news:
        assert news.fetch("keyed")
    assert seen == [{"key": [FEED_KEY]}]
