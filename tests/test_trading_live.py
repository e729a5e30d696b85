"""The CoinSpot live broker against the sandbox's private API, on both databases (the nonces
live there): signing, nonces, fills, refusals, and the order whose answer never came."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from chains import exception_chain
from omc_pipelines.sandbox import AccountFault, Fault
from omc_pipelines.sandbox.coinspot_private import (
    FULL_ACCESS_KEY, FULL_ACCESS_SECRET, READ_ONLY_KEY, READ_ONLY_SECRET,
)
from omc_pipelines.sandbox.server import SandboxServer
from omc_trading.broker import OrderOutcomeUnknown, OrderRejected, OrderRequest, Quote
from omc_trading.coinspot import (
    BUY_NOW, SELL_NOW, CoinSpotClient, CoinSpotError, CoinSpotLiveBroker, CoinSpotRefused, CoinSpotUnavailable,
    NonceStore, key_fingerprint, sign,
)
from omc_trading.tables import nonces

pytestmark = pytest.mark.integration
BTC_ASK, BTC_BID = Decimal("130748.31"), Decimal("130226.37")  # the sandbox's recorded prices
SECRETS = (FULL_ACCESS_KEY, FULL_ACCESS_SECRET, READ_ONLY_KEY, READ_ONLY_SECRET)


class SandboxQuotes:
    """A QuoteSource over the sandbox's public API (the pipelines provide the real one)."""

    def __init__(self, url: str):
        self.url = url

    def quote(self, coin: str) -> Quote | None:
        prices = httpx.get(f"{self.url}/pubapi/v2/latest/{coin}").json().get("prices")
        if not prices:
            return None
        return Quote(coin, Decimal(str(prices["bid"])), Decimal(str(prices["ask"])), datetime.now(timezone.utc),
                     "sandbox /pubapi/v2/latest")


def _client(url: str, engine, key=FULL_ACCESS_KEY, secret=FULL_ACCESS_SECRET, timeout=2.0, **more) -> CoinSpotClient:
    return CoinSpotClient(url, key, secret, engine, timeout=timeout, backoff=0.01, **more)


@pytest.fixture
def make_broker(sandbox, engine):
    """Brokers on the sandbox; ``timeout`` is the trading client's (the order POSTs)."""
    clients = []

    def make(timeout: float = 2.0, url: str | None = None, **more) -> CoinSpotLiveBroker:
        url = url or sandbox.url
        clients.extend([_client(url, engine, timeout=timeout, **more),
                        _client(url, engine, READ_ONLY_KEY, READ_ONLY_SECRET)])
        return CoinSpotLiveBroker(clients[-2], clients[-1], SandboxQuotes(url))

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def broker(make_broker):
    return make_broker()


def _buy(aud_amount="100", expected_rate=BTC_ASK, coin="btc", **more) -> OrderRequest:
    return OrderRequest("live:test:buy", coin, "buy", aud_amount=Decimal(aud_amount), expected_rate=expected_rate,
                        **more)


def _sell(coin_amount="0.5", expected_rate=BTC_BID) -> OrderRequest:
    return OrderRequest("live:test:sell", "btc", "sell", coin_amount=Decimal(coin_amount), expected_rate=expected_rate)


def _order_posts(sandbox) -> list[dict]:
    return sandbox.server.requests_to(BUY_NOW) + sandbox.server.requests_to(SELL_NOW)


# --- signing -------------------------------------------------------------------------------------


def test_sign_is_rfc_4231_hmac_sha512():
    # RFC 4231, test case 2
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
    )


def test_the_bytes_sent_are_the_bytes_signed(sandbox, broker):
    broker.place(_buy("100.005", max_slippage_pct=Decimal("2.5")))
    (received,) = [r for r in sandbox.coinspot_account.received if r.path == BUY_NOW]
    assert received.key == FULL_ACCESS_KEY
    assert received.sign == sign(received.body, FULL_ACCESS_SECRET)
    assert b" " not in received.body  # compact, as serialised once
    body = json.loads(received.body)
    # amounts at CoinSpot's precision, as strings; the slippage guard always there
    assert body == {"cointype": "BTC", "amounttype": "aud", "amount": "100.01", "rate": "130748.31",
                    "threshold": "2.5", "direction": "UP", "nonce": body["nonce"]}
    assert isinstance(body["nonce"], int)


def test_a_sell_sends_coins_to_8_places_and_guards_downwards(sandbox, broker):
    sandbox.coinspot_account.set_balances(BTC="1")
    broker.place(_sell("0.123456789"))
    (received,) = [json.loads(r.body) for r in sandbox.coinspot_account.received if r.path == SELL_NOW]
    assert (received["amounttype"], received["amount"], received["direction"]) == ("coin", "0.12345678", "DOWN")


# --- nonces ----------------------------------------------------------------------------------------


def test_nonces_grow_from_the_clock_and_never_shrink_when_it_steps_back(engine):
    clock = [1_800_000_000.0]
    store = NonceStore(engine, "fp-clock", clock=lambda: clock[0])
    assert store.next() == 1_800_000_000_000
    clock[0] += 5
    assert store.next() == 1_800_000_005_000
    clock[0] -= 60  # the clock is set back (NTP, another machine)
    assert store.next() == 1_800_000_005_001
    assert store.next() == 1_800_000_005_002


def test_nonces_are_kept_per_key_under_its_fingerprint_only(engine, sandbox):
    client = _client(sandbox.url, engine)
    client.read("/api/v2/ro/my/balances")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(nonces)).mappings().all()
    assert [r["key_fingerprint"] for r in rows] == [key_fingerprint(FULL_ACCESS_KEY)]
    assert not any(secret in str(dict(row)) for row in rows for secret in SECRETS)


def test_nonces_strictly_increase_across_instances_and_threads(engine):
    # A clock that stands still: every nonce after the first is last + 1, so only the
    # database's atomic update keeps two takers from getting the same one.
    stores = [NonceStore(engine, "fp-shared", clock=lambda: 1_800_000_000.0) for _ in range(2)]
    taken: list[list[int]] = [[] for _ in range(6)]
    errors = []

    def take(mine: list[int], store: NonceStore) -> None:
        try:
            mine.extend(store.next() for _ in range(15))
        except Exception as exc:  # a thread's failure must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(taken[i], stores[i % 2])) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    every = [n for mine in taken for n in mine]
    assert len(every) == len(set(every)) == 90
    assert all(mine == sorted(mine) and len(set(mine)) == len(mine) for mine in taken)
    assert sorted(every) == list(range(1_800_000_000_000, 1_800_000_000_090))
    assert NonceStore(engine, "fp-shared").next() > max(every)


def test_two_clients_with_one_key_interleave_and_coinspot_accepts_every_nonce(sandbox, engine):
    first, second = _client(sandbox.url, engine), _client(sandbox.url, engine)
    for _ in range(5):
        first.read("/api/v2/ro/my/balances")
        second.read("/api/v2/ro/my/balances")
    sent = [json.loads(r.body)["nonce"] for r in sandbox.coinspot_account.received]
    assert len(sent) == 10 and sent == sorted(set(sent))


# --- fills -------------------------------------------------------------------------------------------


def test_a_buy_fills_with_the_fee(broker, sandbox):
    fill = broker.place(_buy("100"))
    assert (fill.coin, fill.side, fill.coin_amount, fill.aud_total, fill.fee_aud) == (
        "btc", "buy", Decimal("0.00075717"), Decimal("100.00"), Decimal("1.00"))
    # 99.00 bought 0.00075717 BTC (rounded down): a touch above the ask per coin
    assert fill.rate == Decimal("130750.02971592")
    assert abs(datetime.now(timezone.utc) - fill.filled_at) < timedelta(seconds=10)
    assert broker.balances() == {"AUD": Decimal("9900"), "BTC": Decimal("0.00075717")}


def test_a_sell_fills_with_the_fee(broker, sandbox):
    sandbox.coinspot_account.set_balances(BTC="0.5")
    fill = broker.place(_sell("0.5"))
    assert (fill.side, fill.coin_amount, fill.rate, fill.fee_aud, fill.aud_total) == (
        "sell", Decimal("0.5"), BTC_BID, Decimal("651.13"), Decimal("64462.06"))
    assert broker.balances() == {"AUD": Decimal("74462.06")}


def test_quotes_come_from_the_quote_source(broker):
    quote = broker.quote("btc")
    assert (quote.bid, quote.ask) == (BTC_BID, BTC_ASK)
    assert broker.mode == "live"


@pytest.mark.parametrize("shape", ["list", "map"])
def test_balances_in_either_shape(broker, sandbox, shape):
    sandbox.coinspot_account.set_balances(shape, ETH="2.5")
    assert broker.balances() == {"AUD": Decimal("10000"), "ETH": Decimal("2.5")}


def test_completed_orders_carry_the_fee_and_leave_out_older_orders_and_other_markets(broker, sandbox):
    broker.place(_buy("100"))
    sandbox.coinspot_account.completed["buyorders"] += [
        {**sandbox.coinspot_account.completed["buyorders"][0], "id": "usdt", "market": "BTC/USDT", "rate": 85000},
        {**sandbox.coinspot_account.completed["buyorders"][0], "id": "old", "solddate": "2020-01-01T00:00:00.000Z"},
    ]
    (fill,) = broker.completed_orders(datetime.now(timezone.utc) - timedelta(minutes=5))
    assert (fill.coin, fill.side, fill.coin_amount, fill.rate, fill.fee_aud, fill.aud_total, fill.broker_ref) == (
        "btc", "buy", Decimal("0.00075717"), BTC_ASK, Decimal("1.00"), Decimal("100"), "sandbox-1")
    assert broker.completed_orders(datetime.now(timezone.utc) + timedelta(minutes=1)) == []
    with pytest.raises(ValueError, match="naive"):
        broker.completed_orders(datetime(2026, 1, 1))


def test_a_completed_order_without_a_fee_field_names_it(broker, sandbox):
    broker.place(_buy("100"))
    del sandbox.coinspot_account.completed["buyorders"][0]["audGst"]
    with pytest.raises(CoinSpotError, match=r"buyorders\[0\] has no 'audGst'.*/api/v2/ro/my/orders/completed"):
        broker.completed_orders(datetime.now(timezone.utc) - timedelta(minutes=5))


# --- refusals -----------------------------------------------------------------------------------------


def test_the_slippage_guard_refuses_when_the_price_moved_past_the_threshold(broker, sandbox):
    quote = broker.quote("btc")
    sandbox.coinspot.set_price("btc", ask=str(quote.ask * Decimal("1.03")))  # up 3 % after the decision
    with pytest.raises(OrderRejected, match="moved beyond the threshold") as refused:
        broker.place(_buy("100", expected_rate=quote.ask, max_slippage_pct=Decimal("2")))
    assert "HTTP 400" in refused.value.reason
    assert sandbox.coinspot_account.completed["buyorders"] == []
    assert broker.balances() == {"AUD": Decimal("10000")}


def test_a_rejection_carries_coinspots_message(broker, sandbox):
    sandbox.coinspot_account.inject(AccountFault("reject", message="Coin trading is paused"))
    with pytest.raises(OrderRejected, match="Coin trading is paused"):
        broker.place(_buy())
    assert len(_order_posts(sandbox)) == 1


def test_insufficient_funds_is_a_rejection(broker, sandbox):
    with pytest.raises(OrderRejected, match="Insufficient funds"):
        broker.place(_sell("0.5"))


def test_a_401_is_a_rejection_without_the_keys(broker, sandbox):
    sandbox.coinspot_account.inject(AccountFault("401"))
    with pytest.raises(OrderRejected, match="HTTP 401: Invalid API key") as refused:
        broker.place(_buy())
    assert not any(secret in refused.value.reason for secret in SECRETS)


def test_a_401_on_a_read_is_refused_and_not_retried(broker, sandbox):
    sandbox.coinspot_account.inject(AccountFault("401"))
    with pytest.raises(CoinSpotRefused, match="HTTP 401"):
        broker.balances()
    assert len(sandbox.server.requests_to("/api/v2/ro")) == 1


@pytest.mark.parametrize("order, words", [
    (OrderRequest("k", "btc", "buy", aud_amount=Decimal("100")), "no expected rate"),
    (OrderRequest("k", "btc", "buy", aud_amount=Decimal("0.001"), expected_rate=BTC_ASK), "nothing to trade"),
    (OrderRequest("k", "btc", "sell", expected_rate=BTC_BID), "nothing to trade"),
    (OrderRequest("k", "btc", "buy", aud_amount=Decimal("100"), expected_rate=BTC_ASK,
                  max_slippage_pct=Decimal("1001")), "outside CoinSpot's 0-1000%"),
])
def test_an_order_that_cannot_be_sent_as_asked_is_refused_unsent(broker, sandbox, order, words):
    with pytest.raises(OrderRejected, match=words):
        broker.place(order)
    assert _order_posts(sandbox) == []


def test_no_connection_is_a_refusal_not_sent(make_broker):
    with SandboxServer() as closed:  # a port nothing listens on once it stops
        url = closed.url
    broker = make_broker(url=url)
    with pytest.raises(OrderRejected, match="not sent: could not connect"):
        broker.place(_buy())
    with pytest.raises(CoinSpotUnavailable, match=r"could not connect .* after 3 tries"):
        broker.balances()


# --- the answer that never came --------------------------------------------------------------------


def test_a_timeout_after_accept_is_unknown_and_reconciliation_finds_the_fill(make_broker, sandbox):
    broker = make_broker(timeout=0.5)
    sandbox.coinspot_account.inject(AccountFault("timeout_after_accept", seconds=10))
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    with pytest.raises(OrderOutcomeUnknown, match="may have filled") as unknown:
        broker.place(_buy("100"))
    assert "no answer within 0.5 s" in unknown.value.reason
    # sent once, never again (the server logs a request once answered: this one is still held)
    assert [r.path for r in sandbox.coinspot_account.received] == [BUY_NOW]
    assert len(sandbox.coinspot_account.completed["buyorders"]) == 1
    (fill,) = broker.completed_orders(before)
    assert (fill.side, fill.coin_amount, fill.aud_total, fill.fee_aud) == (
        "buy", Decimal("0.00075717"), Decimal("100"), Decimal("1.00"))
    assert broker.balances()["BTC"] == Decimal("0.00075717")


@pytest.mark.parametrize("kind", ["disconnect", "500", "503", "malformed"])
def test_an_order_without_a_readable_answer_is_unknown_and_sent_once(broker, sandbox, kind):
    sandbox.inject(Fault(BUY_NOW, kind))
    with pytest.raises(OrderOutcomeUnknown, match="may have filled"):
        broker.place(_buy())
    assert len(_order_posts(sandbox)) == 1


def test_a_filled_order_whose_answer_is_cut_short_is_unknown(broker, sandbox):
    sandbox.inject(Fault(BUY_NOW, "truncated"))  # the sandbox fills, then sends half the answer
    with pytest.raises(OrderOutcomeUnknown, match="not a JSON object; the order may have filled"):
        broker.place(_buy())
    assert len(_order_posts(sandbox)) == 1
    assert len(sandbox.coinspot_account.completed["buyorders"]) == 1


def test_an_ok_answer_without_the_amount_is_unknown_not_a_fill_of_nothing(make_broker):
    # The one answer the sandbox cannot give: CoinSpot's shape with a field missing.
    posts = []

    def coinspot(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(200, json={"status": "ok", "message": "ok", "coin": "BTC", "total": 100})

    broker = make_broker(url="http://coinspot.invalid", transport=httpx.MockTransport(coinspot))
    with pytest.raises(OrderOutcomeUnknown, match="accepted the order but its answer is unreadable: "
                                                 "malformed answer: the order has no 'amount'") as unknown:
        broker.place(_buy())
    assert "http://coinspot.invalid/api/v2/my/buy/now" in unknown.value.reason
    assert len(posts) == 1
    assert unknown.value.__context__ is None and unknown.value.__cause__ is None


def test_reads_retry_5xx_and_dropped_connections_with_fresh_nonces(broker, sandbox):
    sandbox.inject(Fault("/api/v2/ro/my/balances", "503"))
    sandbox.inject(Fault("/api/v2/ro/my/balances", "disconnect"))
    assert broker.balances() == {"AUD": Decimal("10000")}
    assert len(sandbox.server.requests_to("/api/v2/ro/my/balances")) == 3


def test_reads_give_up_after_the_retries_naming_the_url(broker, sandbox):
    sandbox.inject(Fault("/api/v2/ro/my/balances", "502", times=0))
    with pytest.raises(CoinSpotUnavailable, match=r"HTTP 502 after 3 tries \(http://127.0.0.1:\d+/api/v2/ro/my/balances\)"):
        broker.balances()


# --- secrets ---------------------------------------------------------------------------------------------




def test_keys_and_secrets_appear_in_no_error_log_or_repr(make_broker, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []
    broker = make_broker(timeout=0.3)
    sandbox.coinspot_account.set_balances(BTC="1")
    broker.place(_buy())
    broker.place(_sell("0.1"))
    broker.balances()
    for fault, call in [
        (AccountFault("401"), lambda: broker.place(_buy())),
        (AccountFault("401"), broker.balances),
        (AccountFault("timeout_after_accept", seconds=5), lambda: broker.place(_buy())),
        (Fault(BUY_NOW, "disconnect"), lambda: broker.place(_buy())),
        (Fault("/api/v2/ro/my/balances", "malformed", times=0), broker.balances),
        (AccountFault("reject", message="Invalid"), lambda: broker.place(_buy())),
    ]:
        (sandbox.inject if isinstance(fault, Fault) else sandbox.coinspot_account.inject)(fault)
        with pytest.raises(Exception) as failure:
            call()
        raised.append(failure.value)
        sandbox.server.clear_faults()
    assert {type(e) for e in raised} == {OrderRejected, CoinSpotRefused, OrderOutcomeUnknown, CoinSpotError}
    signatures = [r.sign for r in sandbox.coinspot_account.received]
    shown = [caplog.text, repr(broker), str(broker), repr(broker._read_only)]
    for exc in raised:
        for link in exception_chain(exc):
            assert not isinstance(link, httpx.HTTPError)  # httpx's errors carry the request and its headers
            shown += [str(link), repr(link), repr(link.args)]
    assert "CoinSpot POST /api/v2/my/buy/now" in caplog.text  # the log was captured at DEBUG
    for text in shown:
        assert not any(secret in text for secret in SECRETS), text
        assert not any(signature in text for signature in signatures), text


def test_the_trading_core_does_not_import_dagster_or_the_pipelines():
    code = ("import sys, omc_trading.coinspot; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'omc_pipelines'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
