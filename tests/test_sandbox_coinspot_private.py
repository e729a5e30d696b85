"""The sandbox's private CoinSpot API, talked to with plain httpx and hand-made signatures:
what it checks (key, signature, nonce, reach, amount type), how it fills, and its controls."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from omc_pipelines.sandbox import AccountFault
from omc_pipelines.sandbox.coinspot_private import (
    FULL_ACCESS_KEY, FULL_ACCESS_SECRET, READ_ONLY_KEY, READ_ONLY_SECRET,
)

pytestmark = pytest.mark.integration
BUY, SELL = "/api/v2/my/buy/now", "/api/v2/my/sell/now"
BALANCES, COMPLETED = "/api/v2/ro/my/balances", "/api/v2/ro/my/orders/completed"
BTC_ASK, BTC_BID = Decimal("130748.31"), Decimal("130226.37")  # the recorded /latest prices


class Signer:
    """Signs as CoinSpot asks, with nonces of its own (a new one per request unless given)."""

    def __init__(self, http: httpx.Client, key: str = FULL_ACCESS_KEY, secret: str = FULL_ACCESS_SECRET):
        self.http, self.key, self.secret = http, key, secret
        self.nonce = int(time.time() * 1000)

    def post(self, path: str, params: dict | None = None, *, nonce: int | None = None, secret: str | None = None,
             body: bytes | None = None) -> httpx.Response:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        body = body if body is not None else json.dumps({**(params or {}), "nonce": nonce}, separators=(",", ":")).encode()
        signature = hmac.new((secret or self.secret).encode(), body, hashlib.sha512).hexdigest()
        return self.http.post(path, content=body, headers={"key": self.key, "sign": signature,
                                                            "Content-Type": "application/json"})


@pytest.fixture
def http(sandbox):
    with httpx.Client(base_url=sandbox.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def full(http) -> Signer:
    return Signer(http)


@pytest.fixture
def read_only(http) -> Signer:
    return Signer(http, READ_ONLY_KEY, READ_ONLY_SECRET)


def _buy_100_btc(signer: Signer, **guard) -> httpx.Response:
    return signer.post(BUY, {"cointype": "BTC", "amounttype": "aud", "amount": "100.00", **guard})


def _balances(read_only: Signer) -> dict:
    return {symbol: entry for item in read_only.post(BALANCES).json()["balances"] for symbol, entry in item.items()}


# --- fills in CoinSpot's shape ----------------------------------------------------------------


def test_a_buy_by_aud_fills_at_the_ask_with_the_fee_out_of_the_total(sandbox, full, read_only):
    response = _buy_100_btc(full)
    assert response.status_code == 200
    # 1 % of 100.00 is the fee; 99.00 / 130748.31 rounded down to 8 places is what was bought
    assert response.json() == {"status": "ok", "message": "ok", "coin": "BTC", "market": "BTC/AUD",
                               "amount": 0.00075717, "total": 100}
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("9900.00"), "BTC": Decimal("0.00075717")}
    assert _balances(read_only)["BTC"]["available"] == 0.00075717
    (order,) = read_only.post(COMPLETED).json()["buyorders"]
    assert order["rate"] == float(BTC_ASK) and order["amount"] == 0.00075717 and order["audtotal"] == 100
    assert Decimal(str(order["audfeeExGst"])) + Decimal(str(order["audGst"])) == Decimal("1.00")
    assert (order["audfeeExGst"], order["audGst"]) == (0.91, 0.09)  # the fee includes 10 % GST


def test_a_sell_by_coin_fills_at_the_bid_with_the_fee_out_of_the_proceeds(sandbox, full, read_only):
    sandbox.coinspot_account.set_balances(BTC="0.5")
    response = full.post(SELL, {"cointype": "btc", "amounttype": "coin", "amount": "0.5"})
    # 0.5 x 130226.37 = 65113.19 (to the cent); the fee 651.13; received 64462.06
    assert response.json() == {"status": "ok", "message": "ok", "coin": "BTC", "market": "BTC/AUD",
                               "amount": 0.5, "rate": float(BTC_BID), "total": 64462.06}
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("74462.06")}  # BTC at zero is not listed
    (order,) = read_only.post(COMPLETED).json()["sellorders"]
    assert (order["total"], order["audtotal"]) == (65113.19, 64462.06)


def test_a_buy_by_coin_pays_the_fee_on_top(sandbox, full):
    response = full.post(BUY, {"cointype": "BTC", "amounttype": "coin", "amount": "0.01"})
    # 0.01 x 130748.31 = 1307.48, fee 13.07
    assert response.json()["total"] == 1320.55
    assert sandbox.coinspot_account.balances["BTC"] == Decimal("0.01")


# --- what it refuses ------------------------------------------------------------------------------


def test_a_wrong_signature_is_401_and_spends_neither_money_nor_the_nonce(sandbox, full):
    response = full.post(BUY, {"cointype": "BTC", "amounttype": "aud", "amount": "100.00"}, nonce=full.nonce + 1,
                         secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"status": "error", "message": "Invalid signature"}
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("10000")}
    assert _buy_100_btc(full).status_code == 200  # the same nonce, signed right, is taken


def test_bytes_other_than_the_ones_signed_are_401(full):
    params = {"cointype": "BTC", "amounttype": "aud", "amount": "100.00", "nonce": full.nonce + 1}
    signed = json.dumps(params, separators=(",", ":")).encode()
    sent = json.dumps(params).encode()  # the same JSON, re-serialised with spaces
    signature = hmac.new(FULL_ACCESS_SECRET.encode(), signed, hashlib.sha512).hexdigest()
    response = full.http.post(BUY, content=sent, headers={"key": FULL_ACCESS_KEY, "sign": signature})
    assert response.status_code == 401


def test_an_unknown_key_or_no_signature_is_401(http, sandbox):
    assert Signer(http, "someone-else", FULL_ACCESS_SECRET).post(BALANCES).status_code == 401
    response = http.post(BALANCES, content=b'{"nonce":1}', headers={"key": FULL_ACCESS_KEY})
    assert response.status_code == 401


@pytest.mark.parametrize("step", [0, -1], ids=["reused", "smaller"])
def test_a_nonce_not_above_the_last_is_invalid(sandbox, full, step):
    assert _buy_100_btc(full).status_code == 200
    response = full.post(BUY, {"cointype": "BTC", "amounttype": "aud", "amount": "100.00"}, nonce=full.nonce + step)
    assert response.status_code == 400
    assert response.json() == {"status": "invalid", "message": "Invalid nonce"}
    assert len(sandbox.coinspot_account.completed["buyorders"]) == 1


def test_nonces_are_counted_per_key(full, read_only):
    full.nonce = read_only.nonce = 1000
    assert full.post(BALANCES).status_code == 200
    assert read_only.post(BALANCES).status_code == 200  # 1001 again, but for the other key


def test_the_read_only_key_reaches_only_the_read_only_api(sandbox, read_only, full):
    response = _buy_100_btc(read_only)
    assert response.status_code == 401
    assert response.json()["message"] == "This API key is read-only"
    assert sandbox.coinspot_account.completed["buyorders"] == []
    assert read_only.post(BALANCES).status_code == 200
    assert full.post(BALANCES).status_code == 200  # full access reads too


def test_a_missing_amount_type_is_refused(sandbox, full):
    response = full.post(BUY, {"cointype": "BTC", "amount": "100.00"})
    assert response.status_code == 400
    assert response.json() == {"status": "error", "message": "Valid amount type required"}
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("10000")}


@pytest.mark.parametrize("params, message", [
    ({"cointype": "NOTACOIN", "amounttype": "aud", "amount": "10"}, "Coin not found"),
    ({"cointype": "BTC", "amounttype": "aud", "amount": "10.001"}, "Invalid amount"),  # AUD has 2 places
    ({"cointype": "BTC", "amounttype": "coin", "amount": "0.000000001"}, "Invalid amount"),  # coins have 8
    ({"cointype": "BTC", "amounttype": "aud", "amount": "-10"}, "Invalid amount"),
    ({"cointype": "BTC", "amounttype": "aud", "amount": True}, "Invalid amount"),
    ({"cointype": "BTC", "amounttype": "aud", "amount": "10001.00"}, "Insufficient funds"),
])
def test_orders_it_cannot_fill_are_refused_with_coinspots_message(sandbox, full, params, message):
    response = full.post(BUY, params)
    assert (response.status_code, response.json()["message"]) == (400, message)
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("10000")}


def test_a_sell_beyond_the_coins_held_is_refused(sandbox, full):
    sandbox.coinspot_account.set_balances(BTC="0.1")
    response = full.post(SELL, {"cointype": "BTC", "amounttype": "coin", "amount": "0.10000001"})
    assert response.json()["message"] == "Insufficient funds"
    assert sandbox.coinspot_account.balances["BTC"] == Decimal("0.1")


# --- the slippage guard ---------------------------------------------------------------------------


def test_a_buy_within_the_threshold_fills(full):
    # asked at 130000 within 1 %: up to 131300, and the ask is 130748.31
    assert _buy_100_btc(full, rate="130000", threshold="1", direction="UP").status_code == 200


def test_a_buy_refused_when_the_ask_moved_up_past_the_threshold(sandbox, full):
    sandbox.coinspot.set_price("btc", ask="132000")  # above 130000 + 1 %
    response = _buy_100_btc(full, rate="130000", threshold="1", direction="UP")
    assert response.status_code == 400
    assert "moved beyond the threshold" in response.json()["message"]
    assert sandbox.coinspot_account.completed["buyorders"] == []


def test_the_direction_decides_which_move_counts(sandbox, full):
    sandbox.coinspot_account.set_balances(BTC="1")
    sandbox.coinspot.set_price("btc", bid="120000")  # down 7.7 % from 130000
    guard = {"cointype": "BTC", "amounttype": "coin", "amount": "0.1", "rate": "130000", "threshold": "5"}
    assert full.post(SELL, {**guard, "direction": "UP"}).status_code == 200  # a fall is not what UP guards
    assert full.post(SELL, {**guard, "direction": "DOWN"}).status_code == 400
    assert full.post(SELL, {**guard, "direction": "BOTH"}).status_code == 400


@pytest.mark.parametrize("guard", [{"rate": "abc"}, {"rate": "1", "threshold": "1001"}, {"rate": "1", "direction": "SIDEWAYS"}])
def test_a_malformed_guard_is_refused(full, guard):
    assert _buy_100_btc(full, **guard).json()["message"] == "Invalid rate, threshold or direction"


# --- the read-only API ---------------------------------------------------------------------------


def test_balances_in_both_shapes(sandbox, read_only):
    sandbox.coinspot_account.set_balances(BTC="0.5")
    listed = read_only.post(BALANCES).json()["balances"]
    assert listed == [
        {"AUD": {"balance": 10000, "available": 10000, "audbalance": 10000, "rate": 1}},
        {"BTC": {"balance": 0.5, "available": 0.5, "audbalance": 65113.19, "rate": float(BTC_BID)}},
    ]
    sandbox.coinspot_account.set_balances(shape="map")
    assert read_only.post(BALANCES).json()["balances"] == {k: v for item in listed for k, v in item.items()}


def test_completed_orders_filter_by_coin_start_and_limit(sandbox, full, read_only):
    for _ in range(3):
        _buy_100_btc(full)
    full.post(BUY, {"cointype": "ETH", "amounttype": "aud", "amount": "50.00"})
    assert len(read_only.post(COMPLETED).json()["buyorders"]) == 4
    assert len(read_only.post(COMPLETED, {"cointype": "eth"}).json()["buyorders"]) == 1
    assert len(read_only.post(COMPLETED, {"limit": 2}).json()["buyorders"]) == 2
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    assert read_only.post(COMPLETED, {"startdate": tomorrow.date().isoformat()}).json()["buyorders"] == []
    today = datetime.now(timezone.utc).date().isoformat()
    assert len(read_only.post(COMPLETED, {"startdate": today}).json()["buyorders"]) == 4
    assert read_only.post(COMPLETED, {"startdate": str(int(tomorrow.timestamp()))}).json()["buyorders"] == []
    newest = read_only.post(COMPLETED).json()["buyorders"][0]
    assert newest["coin"] == "ETH" and newest["id"] == "sandbox-4"


@pytest.mark.parametrize("params", [{"limit": 501}, {"limit": 0}, {"startdate": "last week"}])
def test_completed_orders_refuse_bad_filters(read_only, params):
    assert read_only.post(COMPLETED, params).status_code == 400


# --- steering it ---------------------------------------------------------------------------------------


def test_reject_fault_refuses_the_next_order_only(sandbox, full):
    sandbox.coinspot_account.inject(AccountFault("reject", message="Trading is paused"))
    response = _buy_100_btc(full)
    assert (response.status_code, response.json()["message"]) == (400, "Trading is paused")
    assert _buy_100_btc(full).status_code == 200


def test_401_fault_refuses_any_private_request(sandbox, read_only):
    sandbox.coinspot_account.inject(AccountFault("401", times=2))
    assert [read_only.post(BALANCES).status_code for _ in range(3)] == [401, 401, 200]


def test_timeout_after_accept_fills_then_answers_too_late(sandbox, full, read_only):
    sandbox.coinspot_account.inject(AccountFault("timeout_after_accept", seconds=5))
    full.http.timeout = httpx.Timeout(0.5)
    with pytest.raises(httpx.ReadTimeout):
        _buy_100_btc(full)
    full.http.timeout = httpx.Timeout(5.0)
    assert len(read_only.post(COMPLETED).json()["buyorders"]) == 1
    assert sandbox.coinspot_account.balances["AUD"] == Decimal("9900.00")


def test_a_refused_order_does_not_use_up_a_stall(sandbox, full):
    sandbox.coinspot_account.inject(AccountFault("timeout_after_accept", seconds=5))
    assert full.post(BUY, {"cointype": "BTC", "amount": "1"}).status_code == 400  # answered at once
    assert sandbox.coinspot_account.faults  # still waiting for an order it accepts


def test_the_control_api_over_http(http, full, read_only):
    assert http.post("/_sandbox/coinspot/account/balances",
                     json={"balances": {"AUD": "500", "ETH": 2}, "shape": "map"}).json() == {"status": "ok"}
    assert set(read_only.post(BALANCES).json()["balances"]) == {"AUD", "ETH"}
    http.post("/_sandbox/coinspot/account/faults", json={"kind": "reject", "times": 0, "message": "No"})
    assert [_buy_100_btc(full).json()["message"] for _ in range(2)] == ["No", "No"]  # until cleared
    assert http.delete("/_sandbox/coinspot/account/faults").json() == {"status": "ok"}
    assert full.post(BUY, {"cointype": "BTC", "amounttype": "aud", "amount": "100.00"}).status_code == 200
    state = http.get("/_sandbox/coinspot/account").json()
    assert state["balances"] == {"AUD": "400.00", "ETH": "2", "BTC": "0.00075717"}
    assert len(state["buyorders"]) == 1 and state["sellorders"] == []


@pytest.mark.parametrize("path, body", [
    ("/_sandbox/coinspot/account/faults", {"kind": "explode"}),
    ("/_sandbox/coinspot/account/balances", {"balances": {"AUD": "-5"}}),
    ("/_sandbox/coinspot/account/balances", {"balances": {"AUD": "lots"}}),
    ("/_sandbox/coinspot/account/balances", {"shape": "tree"}),
])
def test_bad_control_requests_are_400_and_change_nothing(sandbox, http, path, body):
    assert http.post(path, json=body).status_code == 400
    assert sandbox.coinspot_account.balances == {"AUD": Decimal("10000")}
    assert sandbox.coinspot_account.faults == []


def test_reset_restores_the_account(sandbox, http, full):
    _buy_100_btc(full)
    sandbox.coinspot_account.inject(AccountFault("401"))
    assert http.post("/_sandbox/reset").json() == {"status": "ok"}
    account = sandbox.coinspot_account
    assert (account.balances, account.completed["buyorders"], account.faults, account.last_nonce) == (
        {"AUD": Decimal("10000")}, [], [], {})
