"""The sandbox itself: CoinSpot's routes in CoinSpot's shape, faults, the control API.

Talked to with plain httpx, the way a person or another process would.
"""

from __future__ import annotations

import json
import re
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from omc_pipelines import settings
from omc_pipelines.sandbox import FAULT_KINDS, Fault, Sandbox
from omc_pipelines.sandbox.coinspot import RECORDINGS, TAPE_PERIOD, CoinSpotMarket
from omc_pipelines.sandbox.cryptopanic import CRYPTOPANIC_TOKEN
from omc_pipelines.sandbox.reddit import REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET
from omc_pipelines.sandbox.server import OVERSIZED_BYTES, unreachable_url, wrong_shape

API = "/pubapi/v2"


@pytest.fixture
def client(sandbox):
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as c:
        yield c


def _recorded(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


def _log(client: httpx.Client) -> list[dict]:
    """The served requests, control calls left out."""
    return [r for r in client.get("/_sandbox/requests").json() if not r["path"].startswith("/_sandbox")]


def _iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- CoinSpot's routes ------------------------------------------------------------------


@pytest.mark.integration
def test_latest_in_coinspot_shape(client):
    response = client.get(f"{API}/latest")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["status"], body["message"]) == ("ok", "ok")
    assert body["prices"] == _recorded("latest.json")["prices"]
    assert body["prices"]["btc"] == {"bid": "130226.37", "ask": "130748.31", "last": "130487.34"}
    assert body["prices"]["btc_usdt"]["last"] == "85285.843"
    assert body["prices"]["ape_usdt"]["bid"] == "NaN"
    assert isinstance(body["prices"]["doge"]["bid"], float)
    assert "pepe" not in body["prices"]


@pytest.mark.integration
def test_latest_coin_and_market(client):
    assert client.get(f"{API}/latest/btc").json() == {
        "status": "ok", "message": "ok", "prices": {"bid": "130226.37", "ask": "130748.31", "last": "130487.34"},
    }
    assert client.get(f"{API}/latest/BTC").json()["prices"]["last"] == "130487.34"
    assert client.get(f"{API}/latest/pepe").json() == _recorded("latest/pepe.json")
    assert client.get(f"{API}/latest/btc/usdt").json()["prices"]["last"] == "85285.843"
    assert client.get(f"{API}/latest/btc/aud").json()["prices"]["last"] == "130487.34"


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/latest/notacoin", "/latest/pepe/usdt", "/buyprice/notacoin", "/orders/completed/notacoin"])
def test_unknown_coin_is_coinspots_400(client, path):
    response = client.get(API + path)
    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": "Coin not found"}


@pytest.mark.integration
def test_buy_and_sell_price(client):
    assert client.get(f"{API}/buyprice/btc").json() == {"status": "ok", "message": "ok", "rate": "130748.31", "market": "BTC/AUD"}
    assert client.get(f"{API}/sellprice/btc").json()["rate"] == "130226.37"
    pepe = client.get(f"{API}/buyprice/pepe").json()
    assert pepe == {"status": "ok", "message": "ok", "rate": "0.00003044", "market": "PEPE/AUD"}


@pytest.mark.integration
def test_completed_orders_in_coinspot_shape(client):
    body = client.get(f"{API}/orders/completed/btc").json()
    recorded = _recorded("orders_completed/btc.json")
    assert body["status"] == "ok"
    assert len(body["buyorders"]) == len(recorded["buyorders"]) == 24
    assert len(body["sellorders"]) == 24
    fields = ("amount", "rate", "total", "coin", "market")
    for side in ("buyorders", "sellorders"):  # the recorded trades, at their times on the tape (newest first)
        assert sorted(tuple(o[k] for k in fields) for o in body[side]) == sorted(
            tuple(o[k] for k in fields) for o in recorded[side])
    for got in body["buyorders"] + body["sellorders"]:
        assert set(got) == {*fields, "solddate"}
        assert got["solddate"].endswith("Z") and len(got["solddate"]) == len("2026-01-02T03:04:05.000Z")


@pytest.mark.integration
def test_completed_orders_of_a_listed_coin_without_trades(client):
    body = client.get(f"{API}/orders/completed/ltc").json()
    assert body == {"status": "ok", "message": "ok", "buyorders": [], "sellorders": []}


@pytest.mark.integration
def test_unknown_path_is_404_and_a_wrong_method_is_not_served(client):
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json()["status"] == "error"
    response = client.post(f"{API}/latest")
    assert 400 <= response.status_code < 500
    assert "prices" not in response.json()


# --- the control API ----------------------------------------------------------------------


@pytest.mark.integration
def test_control_prices_moves_a_price(client):
    response = client.post("/_sandbox/coinspot/prices", json={"coin": "btc", "last": "140000", "ask": 140100})
    assert response.json() == {"status": "ok"}
    btc = client.get(f"{API}/latest").json()["prices"]["btc"]
    assert btc == {"bid": "130226.37", "ask": 140100, "last": "140000"}
    assert client.get(f"{API}/buyprice/btc").json()["rate"] == 140100


@pytest.mark.integration
def test_control_prices_non_aud_market(client):
    client.post("/_sandbox/coinspot/prices", json={"coin": "eth", "market": "USDT", "last": "3100"})
    assert client.get(f"{API}/latest").json()["prices"]["eth_usdt"]["last"] == "3100"
    assert client.get(f"{API}/latest/eth/usdt").json()["prices"]["last"] == "3100"


@pytest.mark.integration
def test_control_prices_new_coin_is_listed_but_off_the_summary(client):
    client.post("/_sandbox/coinspot/prices", json={"coin": "NEWC", "bid": "0.9", "ask": "1.1", "last": "1.0"})
    assert client.get(f"{API}/latest/newc").json() == {
        "status": "ok", "message": "ok", "prices": {"bid": "0.9", "ask": "1.1", "last": "1.0"},
    }
    assert "newc" not in client.get(f"{API}/latest").json()["prices"]
    assert client.get(f"{API}/buyprice/newc").json()["rate"] == "1.1"
    # listed: its (empty) trade history answers instead of "Coin not found"
    assert client.get(f"{API}/orders/completed/newc").json()["buyorders"] == []


@pytest.mark.integration
def test_control_prices_new_coin_can_join_the_summary(client):
    client.post("/_sandbox/coinspot/prices", json={"coin": "newd", "last": "2", "in_summary": True})
    assert client.get(f"{API}/latest").json()["prices"]["newd"] == {"last": "2"}


@pytest.mark.integration
def test_set_price_of_a_new_coin_in_process(sandbox, client):
    sandbox.coinspot.set_price("fresh", bid="5", ask="6", last="5.5")
    assert client.get(f"{API}/latest/fresh").json()["prices"] == {"bid": "5", "ask": "6", "last": "5.5"}
    assert "fresh" not in client.get(f"{API}/latest").json()["prices"]
    assert sandbox.coinspot.is_listed("fresh")


@pytest.mark.integration
@pytest.mark.parametrize("body", [{"last": "1"}, {"coin": "btc", "colour": "red"}, ["btc"]])
def test_control_prices_bad_requests_are_400(client, body):
    response = client.post("/_sandbox/coinspot/prices", json=body)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert client.get(f"{API}/latest").json()["prices"]["btc"]["last"] == "130487.34"


@pytest.mark.integration
def test_control_trades_adds_the_newest_trade(client):
    response = client.post(
        "/_sandbox/coinspot/trades",
        json={"coin": "btc", "side": "sell", "amount": 0.5, "rate": 100000.0, "sold_at": "2031-01-02T03:04:05.000Z"},
    )
    order = response.json()["order"]
    assert order == {
        "amount": 0.5, "rate": 100000.0, "total": 50000.0, "coin": "BTC", "market": "BTC/AUD",
        "solddate": "2031-01-02T03:04:05.000Z",
    }
    book = client.get(f"{API}/orders/completed/btc").json()
    assert book["sellorders"][0] == order
    assert len(book["sellorders"]) == 25 and len(book["buyorders"]) == 24


@pytest.mark.integration
def test_control_trades_for_a_coin_without_history(client):
    client.post("/_sandbox/coinspot/trades", json={"coin": "ltc", "amount": 2, "rate": 150, "market": "usdt"})
    book = client.get(f"{API}/orders/completed/ltc").json()
    (order,) = book["buyorders"]  # side defaults to buy
    assert order["market"] == "LTC/USDT" and order["total"] == 300
    # without sold_at, the trade is now
    assert abs(_iso(order["solddate"]) - datetime.now(timezone.utc)) < timedelta(seconds=10)


@pytest.mark.integration
@pytest.mark.parametrize("body", [{"coin": "btc", "side": "hold", "amount": 1, "rate": 1}, {"coin": "btc", "amount": 1}])
def test_control_trades_bad_requests_are_400(client, body):
    response = client.post("/_sandbox/coinspot/trades", json=body)
    assert response.status_code == 400
    assert len(client.get(f"{API}/orders/completed/btc").json()["buyorders"]) == 24


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_fault_with_times_2_hits_twice_then_clears(client):
    response = client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "503", "times": 2})
    assert response.json() == {"status": "ok"}
    statuses = [client.get(f"{API}/latest").status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert [(r["status"], r["fault"]) for r in _log(client)] == [(503, "503"), (503, "503"), (200, None), (200, None)]


@pytest.mark.integration
def test_fault_matches_a_path_prefix_only(client):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "500", "times": 0})
    assert client.get(f"{API}/latest").status_code == 500
    assert client.get(f"{API}/latest/pepe").status_code == 500
    assert client.get(f"{API}/orders/completed/btc").status_code == 200
    assert client.get("/_sandbox/requests").status_code == 200  # the control API is never faulted


@pytest.mark.integration
def test_fault_until_cleared_then_delete(client):
    client.post("/_sandbox/faults", json={"path": API, "kind": "403", "times": 0})
    assert [client.get(f"{API}/latest").status_code for _ in range(3)] == [403, 403, 403]
    assert client.delete("/_sandbox/faults").json() == {"status": "ok"}
    assert client.get(f"{API}/latest").status_code == 200


@pytest.mark.integration
def test_a_catch_all_fault_leaves_the_control_api_working(client):
    client.post("/_sandbox/faults", json={"path": "/", "kind": "503", "times": 0})
    assert client.get(f"{API}/latest").status_code == 503
    assert client.get("/_sandbox/requests").status_code == 200
    assert client.post("/_sandbox/coinspot/prices", json={"coin": "btc", "last": "1"}).status_code == 200
    assert client.delete("/_sandbox/faults").status_code == 200
    assert client.get(f"{API}/latest").json()["prices"]["btc"]["last"] == "1"


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["429", "403", "500", "502", "503"])
def test_status_faults_answer_in_coinspot_error_shape(client, kind):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": kind})
    response = client.get(f"{API}/latest")
    assert response.status_code == int(kind)
    assert response.json() == {"status": "error", "message": f"sandbox fault {kind}"}
    assert "retry-after" not in response.headers


@pytest.mark.integration
def test_429_fault_carries_retry_after(client):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "429", "retry_after": 2})
    response = client.get(f"{API}/latest")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"


@pytest.mark.integration
def test_malformed_fault_is_html_labelled_json(client):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "malformed"})
    response = client.get(f"{API}/latest")
    assert response.status_code == 200
    assert response.text.startswith("<html>")
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.integration
def test_truncated_fault_cuts_the_real_body_in_half(client):
    whole = client.get(f"{API}/latest").content
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "truncated"})
    response = client.get(f"{API}/latest")
    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.integration
def test_disconnect_fault_closes_without_an_answer(sandbox, client):
    sandbox.inject(Fault(f"{API}/latest", "disconnect"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{API}/latest")
    assert client.get(f"{API}/latest").status_code == 200  # once only
    assert [r["fault"] for r in sandbox.server.requests_to(API)] == ["disconnect", None]


@pytest.mark.integration
def test_stall_fault_outlasts_a_short_timeout(sandbox, client):
    sandbox.inject(Fault(f"{API}/latest", "stall", seconds=2))
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{API}/latest", timeout=0.2)
    assert client.get(f"{API}/latest").status_code == 200  # the stall was used up


@pytest.mark.integration
def test_a_stalled_request_is_logged_on_arrival_before_it_is_answered(sandbox, client):
    sandbox.inject(Fault(f"{API}/latest", "stall", seconds=2))
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{API}/latest", timeout=0.2)
    assert [r["path"] for r in sandbox.server.arrivals] == [f"{API}/latest"]
    assert sandbox.server.requests_to(API) == []  # answered only when the stall ends
    sandbox.reset()
    assert sandbox.server.arrivals == []


@pytest.mark.integration
def test_stall_ends_with_a_503_when_waited_out(client):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "stall", "seconds": 0.2})
    response = client.get(f"{API}/latest")
    assert response.status_code == 503
    assert response.json()["message"] == "sandbox stall ended"


@pytest.mark.integration
def test_stop_releases_a_stall():
    box = Sandbox().start()
    try:
        box.inject(Fault(f"{API}/latest", "stall", seconds=30))
        with httpx.Client(base_url=box.url) as c, pytest.raises(httpx.ReadTimeout):
            c.get(f"{API}/latest", timeout=0.2)
    finally:
        started = time.monotonic()
        box.stop()
    assert time.monotonic() - started < 2.0


@pytest.mark.integration
@pytest.mark.parametrize(
    "body, words",
    [
        ({"path": API, "kind": "418"}, "unknown fault kind '418'"),
        ({"path": API, "kind": "slow"}, "unknown fault kind 'slow'"),
        ({"path": API, "kind": "429", "colour": "red"}, "colour"),
        ({"kind": "429"}, "path"),
    ],
)
def test_bad_fault_is_400_and_not_installed(client, body, words):
    response = client.post("/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert words in response.json()["message"]
    assert client.get(f"{API}/latest").status_code == 200


@pytest.mark.integration
def test_fault_body_that_is_not_json_is_400(client):
    response = client.post("/_sandbox/faults", content=b"kind=429", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_fault_kinds_are_checked_in_process_too():
    assert set(FAULT_KINDS) == {"429", "403", "500", "502", "503", "stall", "malformed", "truncated", "disconnect",
                                "drip", "empty", "wrong_shape", "oversized"}
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("/x", "404")


# --- the faults of a bad day: drip, empty, wrong shape, oversized, nobody listening ------------


def test_seconds_default_by_kind():
    assert Fault("/x", "drip").seconds == 2.0
    assert Fault("/x", "stall").seconds == 30.0
    assert Fault("/x", "drip", seconds=0.5).seconds == 0.5


@pytest.mark.parametrize(
    "options, words",
    [
        ({"kind": "wrong_shape", "variant": "upside_down"}, "missing, types, negative, zero"),
        ({"kind": "oversized", "variant": "huge"}, "declared, chunked"),
        ({"kind": "429", "variant": "zero"}, "no variants"),
        ({"kind": "oversized", "size": 0}, "size"),
        ({"kind": "oversized", "size": 1.5e6}, "size"),
        ({"kind": "500", "size": 10}, "size"),
        ({"kind": "drip", "seconds": -1}, "seconds"),
    ],
)
def test_bad_variants_sizes_and_seconds_are_refused(options, words):
    with pytest.raises(ValueError, match=words):
        Fault("/x", **options)


@pytest.mark.integration
def test_drip_sends_the_headers_then_the_real_body_a_byte_at_a_time(sandbox, client):
    whole = client.get(f"{API}/latest/btc").content
    client.post("/_sandbox/faults", json={"path": f"{API}/latest/btc", "kind": "drip", "seconds": 0.1})
    started = time.monotonic()
    with client.stream("GET", f"{API}/latest/btc") as response:
        headers_at = time.monotonic() - started
        chunks = []
        for chunk in response.iter_raw():
            chunks.append(chunk)
            if sum(map(len, chunks)) >= 5:
                break
        fifth_at = time.monotonic() - started
    assert response.status_code == 200 and int(response.headers["content-length"]) == len(whole)
    # The real body's first bytes, a byte at a time (a busy reader may find two waiting at once).
    assert b"".join(chunks) == whole[:len(b"".join(chunks))] and max(map(len, chunks)) <= 2 and len(chunks) >= 3
    # A byte at once, then one every 0.1 s: the fifth no sooner than 0.4 s; the headers well before.
    assert fifth_at >= 0.35 and headers_at < fifth_at - 0.25


@pytest.mark.integration
def test_drip_delivers_the_whole_real_body(sandbox, client):
    whole = client.get(f"{API}/latest/btc").content
    sandbox.inject(Fault(f"{API}/latest/btc", "drip", seconds=0.001))
    response = client.get(f"{API}/latest/btc")
    assert response.content == whole
    assert [r["fault"] for r in sandbox.server.requests_to(f"{API}/latest/btc")] == [None, "drip"]


@pytest.mark.integration
def test_stop_releases_a_drip():
    box = Sandbox().start()
    box.inject(Fault(f"{API}/latest", "drip", seconds=30))
    with httpx.Client(base_url=box.url) as c, c.stream("GET", f"{API}/latest") as response:
        started = time.monotonic()
        box.stop()
        with pytest.raises(httpx.HTTPError):
            response.read()
    assert time.monotonic() - started < 2.0


@pytest.mark.integration
def test_empty_is_a_200_with_no_body_in_the_routes_content_type(sandbox, client):
    sandbox.inject(Fault("/feeds/decrypt", "empty"))
    sandbox.inject(Fault(f"{API}/latest", "empty"))
    feed = client.get("/feeds/decrypt")
    latest = client.get(f"{API}/latest")
    for response in (feed, latest):
        assert response.status_code == 200 and response.content == b""
        assert response.headers["content-length"] == "0"
    assert "xml" in feed.headers["content-type"] and latest.headers["content-type"] == "application/json"


def test_wrong_shape_missing_drops_the_first_field_of_every_object():
    payload = {"status": "ok", "prices": {"btc": {"bid": "1", "ask": "2"}, "eth": {"ask": "3"}}, "list": [{"b": 1, "a": 2}]}
    assert wrong_shape(payload, "missing") == {"status": "ok", "prices": {"eth": {}}}
    assert wrong_shape([{"b": 1, "a": 2}, 3], "missing") == [{"b": 1}, 3]


def test_wrong_shape_types_numbers_become_words_and_text_numbers():
    payload = {"n": 5, "x": -2.5, "s": "hello", "price": "130.5", "flag": True, "none": None, "nested": [1, "ab"]}
    assert wrong_shape(payload, "types") == {
        "n": "n/a", "x": "n/a", "s": 5, "price": 130.5, "flag": True, "none": None, "nested": ["n/a", 2]}


@pytest.mark.parametrize("variant, expected", [
    ("negative", {"n": -5, "x": 2.5, "price": "-130.5", "neg": "5", "s": "hello", "flag": True, "nan": "NaN"}),
    ("zero", {"n": 0, "x": 0, "price": "0", "neg": "0", "s": "hello", "flag": True, "nan": "NaN"}),
])
def test_wrong_shape_negative_and_zero_change_numbers_and_numeric_text(variant, expected):
    payload = {"n": 5, "x": -2.5, "price": "130.5", "neg": "-5", "s": "hello", "flag": True, "nan": "NaN"}
    assert wrong_shape(payload, variant) == expected


def _leaves(value, at=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{at}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{at}[{i}]")
    else:
        yield at, value


def _assert_first_field_dropped(original, mutated):
    """Every object lost its alphabetically first field, and nothing else changed."""
    if isinstance(original, dict):
        assert set(mutated) == set(original) - {min(original, default=None)}
        for key in mutated:
            _assert_first_field_dropped(original[key], mutated[key])
    elif isinstance(original, list):
        assert len(mutated) == len(original)
        for before, after in zip(original, mutated):
            _assert_first_field_dropped(before, after)
    else:
        assert mutated == original


def _reddit_bearer(client) -> dict[str, str]:
    token = client.post("/api/v1/access_token", data={"grant_type": "client_credentials"},
                        auth=(REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET)).json()["access_token"]
    return {"Authorization": f"bearer {token}"}


# One JSON answer of every source the sandbox serves.
JSON_ROUTES = [
    f"{API}/latest",
    f"{API}/orders/completed/btc",
    "/v2/chains",
    "/protocols",
    "/overview/fees?excludeTotalDataChart=true&dataType=dailyFees",
    "/stablecoins?includePrices=true",
    "/submissions/CIK0001050446.json",
    "/api/v2/help_center/en-us/categories/115000579994/articles.json",
    f"/api/developer/v2/posts/?auth_token={CRYPTOPANIC_TOKEN}",
    "/r/Bitcoin/new.json",
]


@pytest.mark.integration
@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("variant", ["missing", "types", "negative", "zero"])
def test_wrong_shape_works_on_every_json_source(sandbox, client, route, variant):
    headers = _reddit_bearer(client) if route.startswith("/r/") else {}
    if route.startswith("/submissions"):
        headers["User-Agent"] = "OMC Pipelines sandbox sandbox@example.com"
    real = client.get(route, headers=headers)
    assert real.status_code == 200
    sandbox.inject(Fault(route.split("?")[0], "wrong_shape", times=2, variant=variant))
    first, second = (client.get(route, headers=headers) for _ in range(2))
    assert first.status_code == 200 and first.content == second.content  # deterministic
    original, mutated = real.json(), first.json()
    assert mutated != original
    if variant == "missing":
        _assert_first_field_dropped(original, mutated)
        return
    before, after = dict(_leaves(original)), dict(_leaves(mutated))
    assert before.keys() == after.keys()  # the same fields, only their values changed
    numbers = {at for at, v in before.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    texts = {at for at, v in before.items() if isinstance(v, str)}
    if variant == "types":
        assert all(after[at] == "n/a" for at in numbers)
        assert all(isinstance(after[at], (int, float)) for at in texts)
    elif variant == "negative":
        assert all(after[at] == -before[at] for at in numbers)
    else:
        assert all(after[at] == 0 for at in numbers)


@pytest.mark.integration
def test_wrong_shape_leaves_an_answer_that_is_not_json_as_it_is(client):
    whole = client.get("/feeds/decrypt").content
    client.post("/_sandbox/faults", json={"path": "/feeds/decrypt", "kind": "wrong_shape", "variant": "types"})
    assert client.get("/feeds/decrypt").content == whole


@pytest.mark.integration
def test_oversized_declares_its_length_and_sends_it_all(client):
    client.post("/_sandbox/faults", json={"path": f"{API}/latest", "kind": "oversized", "size": 200_000})
    response = client.get(f"{API}/latest")
    assert response.status_code == 200
    assert response.headers["content-length"] == "200000" and len(response.content) == 200_000


@pytest.mark.integration
def test_oversized_chunked_says_no_length(sandbox, client):
    sandbox.inject(Fault(f"{API}/latest", "oversized", size=200_001, variant="chunked"))
    response = client.get(f"{API}/latest")
    assert response.status_code == 200 and "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked" and len(response.content) == 200_001


@pytest.mark.integration
def test_oversized_by_default_is_streamed_without_being_built(sandbox, client):
    sandbox.inject(Fault(f"{API}/latest", "oversized", variant="chunked"))
    tracemalloc.start()  # the server runs in this process: its memory counts too
    try:
        with client.stream("GET", f"{API}/latest") as response:
            received = sum(len(chunk) for chunk in response.iter_raw())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == OVERSIZED_BYTES == 64 * 1024 * 1024
    assert peak < 8 * 1024 * 1024


def test_unreachable_url_is_a_port_where_nothing_listens():
    url = unreachable_url()
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2.0)


# --- the request log and reset -----------------------------------------------------------


@pytest.mark.integration
def test_request_log_over_http(client):
    client.get(f"{API}/latest")
    client.get(f"{API}/latest/notacoin")
    client.post("/_sandbox/faults", json={"path": f"{API}/buyprice", "kind": "502"})
    client.get(f"{API}/buyprice/btc")
    log = _log(client)
    assert [(r["method"], r["path"], r["status"], r["fault"]) for r in log] == [
        ("GET", f"{API}/latest", 200, None),
        ("GET", f"{API}/latest/notacoin", 400, None),
        ("GET", f"{API}/buyprice/btc", 502, "502"),
    ]
    times = [r["at"] for r in log]
    assert times == sorted(times)
    # the control calls are logged too
    assert ("POST", "/_sandbox/faults") in {(r["method"], r["path"]) for r in client.get("/_sandbox/requests").json()}


@pytest.mark.integration
def test_reset_restores_the_recorded_world(sandbox, client):
    client.post("/_sandbox/coinspot/prices", json={"coin": "btc", "last": "1"})
    client.post("/_sandbox/coinspot/prices", json={"coin": "newc", "last": "1"})
    client.post("/_sandbox/coinspot/trades", json={"coin": "btc", "amount": 1, "rate": 1})
    client.post("/_sandbox/faults", json={"path": f"{API}/orders", "kind": "500", "times": 0})
    client.get(f"{API}/latest")

    assert client.post("/_sandbox/reset").json() == {"status": "ok"}

    assert _log(client) == []
    assert client.get(f"{API}/latest").json()["prices"]["btc"]["last"] == "130487.34"
    assert client.get(f"{API}/latest/newc").status_code == 400
    book = client.get(f"{API}/orders/completed/btc")
    assert book.status_code == 200  # the fault is gone
    assert len(book.json()["buyorders"]) == 24
    assert client.get(f"{API}/latest/pepe").json() == _recorded("latest/pepe.json")


@pytest.mark.integration
def test_env_points_every_source_here(sandbox):
    env = sandbox.env()
    urls = {name: value for name, value in env.items() if name.endswith("_URL")}
    # Every source the settings name, and nothing but the sandbox.
    assert set(urls) == {settings.env_name(field) for field in settings.Settings.model_fields
                         if field.endswith("_url") and field != "database_url"}
    assert set(urls.values()) == {sandbox.url}
    feeds = dict(pair.split("=", 1) for pair in env[settings.NEWS_FEEDS].split(","))
    assert all(url.startswith(f"{sandbox.url}/feeds/") for url in feeds.values())
    assert sandbox.url.startswith("http://127.0.0.1:")
    # The sandbox's own fake credentials, or none to see the "not configured" state.
    assert env[settings.CRYPTOPANIC_TOKEN] and env[settings.REDDIT_CLIENT_SECRET]
    assert "@" in env[settings.SEC_USER_AGENT]  # the SEC's rule: a contact email
    assert not {settings.CRYPTOPANIC_TOKEN, settings.SEC_USER_AGENT} & set(sandbox.env(credentials=False))


# --- recorded trade times ----------------------------------------------------------------


def _all_times(market: CoinSpotMarket) -> dict[str, list[datetime]]:
    return {
        coin: [_iso(o["solddate"]) for side in ("buyorders", "sellorders") for o in book[side]]
        for coin, book in market.trades.items()
    }


def _served(market: CoinSpotMarket) -> set[tuple]:
    """Every served trade as a ledger row's natural key would see it (time included)."""
    return {(coin, side, o["amount"], o["rate"], o["solddate"])
            for coin, book in market.trades.items() for side in ("buyorders", "sellorders") for o in book[side]}


def test_recorded_trades_are_served_within_one_tape_period_before_the_start_of_the_hour():
    now = datetime(2031, 3, 4, 5, 47, 12, 345678, tzinfo=timezone.utc)
    market = CoinSpotMarket(now=now)
    times = [t for ts in _all_times(market).values() for t in ts]
    hour = datetime(2031, 3, 4, 5, 0, tzinfo=timezone.utc)
    assert market.anchor == hour
    assert all(hour - TAPE_PERIOD < t <= hour for t in times)
    assert set(_all_times(market)) == {p.stem for p in (RECORDINGS / "orders_completed").glob("*.json")}
    # Each recorded trade once, at its recorded time plus a whole number of periods.
    moved = _all_times(market)
    for coin, served in moved.items():
        book = _recorded(f"orders_completed/{coin}.json")
        recorded = sorted(_iso(o["solddate"]) for side in ("buyorders", "sellorders") for o in book[side])
        assert len(served) == len(recorded)
        assert sorted((t - hour) % TAPE_PERIOD for t in served) == sorted((r - hour) % TAPE_PERIOD for r in recorded)


def test_a_trade_keeps_its_time_in_every_sandbox_that_serves_it():
    """The cause of a trade stored twice: two sandboxes (two demos, a demo then `omc dev`) started
    in different hours serving one recorded trade under two times. On the tape they cannot."""
    first = CoinSpotMarket(now=datetime(2031, 3, 4, 5, 59, tzinfo=timezone.utc))
    for later_by in (timedelta(minutes=1), timedelta(hours=1), timedelta(hours=3), timedelta(hours=6, minutes=30)):
        later = CoinSpotMarket(now=datetime(2031, 3, 4, 5, 59, tzinfo=timezone.utc) + later_by)
        old, new = _served(first), _served(later)
        # what the later one serves beyond the first is newer than all the first served: the tape moved on
        assert all(t[4] > max(o[4] for o in old) for t in new - old)
        # no recorded trade (coin, side, amount, rate) under two times within a period
        times = {}
        for coin, side, amount, rate, sold in old | new:
            times.setdefault((coin, side, amount, rate), set()).add(_iso(sold))
        for both in times.values():
            assert all(abs(a - b) >= TAPE_PERIOD for a in both for b in both if a != b)


def test_a_running_sandbox_never_re_dates_its_trades_a_reset_included():
    with Sandbox() as box:
        before = _served(box.coinspot)
        box.coinspot.add_trade("btc", amount=0.1, rate=150000.0)
        assert len(_served(box.coinspot)) == len(before) + 1  # new trades only when published
        box.reset()
        assert _served(box.coinspot) == before


def test_recorded_times_are_served_in_coinspots_format():
    market = CoinSpotMarket(now=datetime(2031, 3, 4, 5, 47, tzinfo=timezone.utc))
    solddates = [o["solddate"] for book in market.trades.values() for side in book.values() for o in side]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d) for d in solddates)
    for book in market.trades.values():
        for side in book.values():  # newest first, as CoinSpot lists them
            assert [o["solddate"] for o in side] == sorted((o["solddate"] for o in side), reverse=True)


def test_two_sandboxes_in_the_same_hour_serve_identical_trades():
    early = CoinSpotMarket(now=datetime(2031, 3, 4, 5, 1, tzinfo=timezone.utc))
    late = CoinSpotMarket(now=datetime(2031, 3, 4, 5, 59, 59, tzinfo=timezone.utc))
    assert early.trades == late.trades


@pytest.mark.parametrize(
    "now",
    [
        datetime(2031, 3, 4, 15, 47, tzinfo=timezone(timedelta(hours=10))),  # Sydney
        datetime(2031, 3, 4, 11, 17, tzinfo=timezone(timedelta(hours=5, minutes=30))),  # India: a half-hour offset
    ],
    ids=["sydney", "india"],
)
def test_the_clock_may_be_in_another_timezone(now):
    market = CoinSpotMarket(now=now)
    # 05:47 UTC either way: the anchor is the start of the UTC hour, not the local one
    assert market.anchor == datetime(2031, 3, 4, 5, 0, tzinfo=timezone.utc)
    assert market.trades == CoinSpotMarket(now=datetime(2031, 3, 4, 5, 47, tzinfo=timezone.utc)).trades


@pytest.mark.integration
def test_live_sandbox_serves_recent_trades_none_after_the_start_of_the_current_utc_hour(client):
    served = [
        _iso(o["solddate"])
        for coin in ("ada", "btc", "doge", "eth", "pepe", "sol", "xrp")
        for side in ("buyorders", "sellorders")
        for o in client.get(f"{API}/orders/completed/{coin}").json()[side]
    ]
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    assert max(served) <= hour and min(served) > hour - timedelta(hours=1) - TAPE_PERIOD
    assert max(served) > hour - timedelta(hours=1)  # the newest within the hour before (the tape's gap is 16 min)
