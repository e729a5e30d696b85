"""CoinSpot's public API client and parse functions (omc_pipelines/sources/coinspot.py).

The recorded payloads the sandbox serves are the main fixtures; small hand-made
variants cover what the recordings do not (faults, odd values).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from omc_pipelines.sandbox.coinspot import TAPE_PERIOD
from omc_pipelines.sandbox import Fault
from omc_pipelines.sandbox.coinspot import RECORDINGS
from omc_pipelines.sources.coinspot import (
    CoinSpotPublic,
    PriceQuote,
    TradePrint,
    parse_completed_orders,
    parse_latest,
    parse_latest_coin,
    split_market_key,
)
from omc_pipelines.sources.http import HttpSource, SourcePayloadError, SourceRefused

RECORDED_COINS = sorted(p.stem for p in (RECORDINGS / "orders_completed").glob("*.json"))


def _recording(name: str) -> dict:
    return json.loads((RECORDINGS / name).read_text())


@pytest.fixture
def latest_payload() -> dict:
    return _recording("latest.json")


@pytest.fixture
def pepe_payload() -> dict:
    return _recording("latest/pepe.json")


@pytest.fixture
def btc_orders() -> dict:
    return _recording("orders_completed/btc.json")


def _payload_error(call, *args, **kwargs) -> SourcePayloadError:
    with pytest.raises(SourcePayloadError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- parse_latest ---------------------------------------------------------------


def test_parse_latest_reads_every_recorded_pair(latest_payload):
    quotes = parse_latest(latest_payload)
    assert len(quotes) == len(latest_payload["prices"]) == 20
    assert all(isinstance(q, PriceQuote) for q in quotes)
    by_key = {(q.coin, q.market): q for q in quotes}
    assert by_key[("btc", "aud")] == PriceQuote("btc", "aud", 130226.37, 130748.31, 130487.34)


def test_parse_latest_prices_as_strings(latest_payload):
    by_key = {(q.coin, q.market): q for q in parse_latest(latest_payload)}
    eth = by_key[("eth", "aud")]
    assert (eth.bid, eth.ask, eth.last) == (4600.8998, 4619.3402, 4610.12)
    shib = by_key[("shib", "aud")]  # exponent notation in a string
    assert shib.last == pytest.approx(3.21e-05)


def test_parse_latest_prices_as_numbers(latest_payload):
    assert isinstance(latest_payload["prices"]["doge"]["bid"], float)  # the recording has numbers here
    by_key = {(q.coin, q.market): q for q in parse_latest(latest_payload)}
    assert by_key[("doge", "aud")] == PriceQuote("doge", "aud", 0.3713558, 0.3728442, 0.3721)
    assert by_key[("ada", "aud")].last == 1.281


def test_parse_latest_nan_is_no_price(latest_payload):
    by_key = {(q.coin, q.market): q for q in parse_latest(latest_payload)}
    assert by_key[("ape", "usdt")] == PriceQuote("ape", "usdt", None, None, None)
    assert by_key[("ape", "aud")].last == 1.93  # the AUD pair of the same coin is priced


def test_parse_latest_coin_market_keys(latest_payload):
    by_key = {(q.coin, q.market): q for q in parse_latest(latest_payload)}
    assert by_key[("btc", "usdt")] == PriceQuote("btc", "usdt", 85115.271, 85456.415, 85285.843)
    assert ("eth", "usdt") in by_key
    markets = {q.market for q in by_key.values()}
    assert markets == {"aud", "usdt"}
    assert ("usdt", "aud") in by_key  # USDT itself is a coin on the AUD market


@pytest.mark.parametrize(
    "key, expected",
    [("btc", ("btc", "aud")), ("btc_usdt", ("btc", "usdt")), ("BTC_USDT", ("btc", "usdt")), ("Eth", ("eth", "aud"))],
)
def test_split_market_key(key, expected):
    assert split_market_key(key) == expected


def test_parse_latest_empty_string_and_null_prices_are_none():
    payload = {"status": "ok", "message": "ok", "prices": {"xyz": {"bid": "", "ask": " 2.5 ", "last": None}}}
    assert parse_latest(payload) == [PriceQuote("xyz", "aud", None, 2.5, None)]


@pytest.mark.parametrize("name", ["bid", "ask", "last"])
def test_a_price_coinspot_always_sends_must_be_there(latest_payload, pepe_payload, name):
    """CoinSpot sends bid, ask and last for every pair, "NaN" or null for no price: an absent
    one is a wrong answer, never "no price" stored over a real one."""
    del latest_payload["prices"]["eth"][name]
    assert f"prices.eth has no {name!r}" in _payload_error(parse_latest, latest_payload).reason
    del pepe_payload["prices"][name]
    assert f"prices has no {name!r}" in _payload_error(parse_latest_coin, pepe_payload, "pepe").reason


def test_parse_latest_numeric_nan_is_none_and_integers_are_floats():
    payload = {"status": "ok", "prices": {"btc": {"bid": float("nan"), "ask": 130000, "last": "nan"}}}
    (quote,) = parse_latest(payload)
    assert quote.bid is None and quote.last is None
    assert quote.ask == 130000.0 and isinstance(quote.ask, float)


def test_parse_latest_empty_prices_is_no_quotes():
    assert parse_latest({"status": "ok", "message": "ok", "prices": {}}) == []


# --- parse_latest failures ---------------------------------------------------------


def test_parse_latest_status_error():
    exc = _payload_error(parse_latest, {"status": "error", "message": "Coin not found"})
    assert "status is 'error'" in exc.reason
    assert "Coin not found" in exc.reason


def test_parse_latest_missing_status(latest_payload):
    del latest_payload["status"]
    assert "status is None" in _payload_error(parse_latest, latest_payload).reason


def test_parse_latest_prices_not_an_object(latest_payload):
    latest_payload["prices"] = [latest_payload["prices"]["btc"]]
    assert "prices is not an object" in _payload_error(parse_latest, latest_payload).reason


def test_parse_latest_prices_missing():
    exc = _payload_error(parse_latest, {"status": "ok", "message": "ok"})
    assert "body has no 'prices'" in exc.reason


def test_parse_latest_garbage_price_names_the_field(latest_payload):
    latest_payload["prices"]["eth"]["ask"] = "abc"
    exc = _payload_error(parse_latest, latest_payload)
    assert "prices.eth.ask" in exc.reason
    assert "'abc'" in exc.reason


@pytest.mark.parametrize(
    "value, complaint",
    [
        (True, "is a boolean"), ("inf", "is infinite"), (float("-inf"), "is infinite"),
        ([1.0], "is a list"), ({"v": 1}, "is a dict"),
    ],
)
def test_parse_latest_other_bad_prices_name_the_field(latest_payload, value, complaint):
    latest_payload["prices"]["btc_usdt"]["last"] = value
    exc = _payload_error(parse_latest, latest_payload)
    assert "prices.btc_usdt.last" in exc.reason
    assert complaint in exc.reason


def test_parse_latest_entry_not_an_object(latest_payload):
    latest_payload["prices"]["sol"] = "288.91"
    assert "prices.sol is not an object" in _payload_error(parse_latest, latest_payload).reason


@pytest.mark.parametrize("body, name", [([], "list"), (None, "NoneType"), ("ok", "str"), (42, "int")])
def test_parse_latest_non_dict_body(body, name):
    exc = _payload_error(parse_latest, body)
    assert f"expected a JSON object, got {name}" in exc.reason


def test_payload_errors_name_coinspot_and_the_url(latest_payload):
    latest_payload["prices"]["btc"]["bid"] = "abc"
    exc = _payload_error(parse_latest, latest_payload, "http://sandbox.test/pubapi/v2/latest")
    assert exc.source == "coinspot"
    assert exc.url == "http://sandbox.test/pubapi/v2/latest"
    assert str(exc).startswith("coinspot: malformed payload: prices.btc.bid")
    assert str(exc).endswith("(http://sandbox.test/pubapi/v2/latest)")


def test_parse_functions_do_not_change_their_input(latest_payload, btc_orders):
    before = copy.deepcopy((latest_payload, btc_orders))
    parse_latest(latest_payload)
    parse_completed_orders(btc_orders, "btc")
    assert (latest_payload, btc_orders) == before


# --- parse_latest_coin --------------------------------------------------------------


def test_parse_latest_coin_recorded_pepe(pepe_payload):
    assert parse_latest_coin(pepe_payload, "pepe") == PriceQuote("pepe", "aud", 0.00003012, 0.00003044, 0.00003031)


def test_parse_latest_coin_lowercases_the_coin(pepe_payload):
    assert parse_latest_coin(pepe_payload, "PEPE").coin == "pepe"


def test_parse_latest_coin_nan_and_numbers():
    quote = parse_latest_coin({"status": "ok", "prices": {"bid": "NaN", "ask": 2, "last": ""}}, "newc")
    assert quote == PriceQuote("newc", "aud", None, 2.0, None)


def test_parse_latest_coin_status_error():
    exc = _payload_error(parse_latest_coin, {"status": "error", "message": "Coin not found"}, "zzz")
    assert "status is 'error'" in exc.reason
    assert exc.url.endswith("/pubapi/v2/latest/zzz")


def test_parse_latest_coin_prices_not_an_object():
    exc = _payload_error(parse_latest_coin, {"status": "ok", "prices": ["1", "2"]}, "pepe")
    assert "prices is not an object" in exc.reason


def test_parse_latest_coin_garbage_price(pepe_payload):
    pepe_payload["prices"]["bid"] = "abc"
    exc = _payload_error(parse_latest_coin, pepe_payload, "pepe")
    assert "prices.bid is 'abc'" in exc.reason


def test_parse_latest_coin_non_dict_body():
    assert "got list" in _payload_error(parse_latest_coin, [], "pepe").reason


# --- parse_completed_orders ----------------------------------------------------------


def test_parse_completed_orders_recorded_btc(btc_orders):
    trades = parse_completed_orders(btc_orders, "btc")
    assert len(trades) == 48
    assert [t.side for t in trades] == ["buy"] * 24 + ["sell"] * 24
    first = trades[0]
    assert first == TradePrint(
        coin="btc", market="aud", side="buy", amount=0.00963118, rate=130343.44, total=1255.36,
        sold_at=datetime(2026, 11, 20, 11, 38, 48, tzinfo=timezone.utc),
    )
    first_sell = trades[24]
    assert first_sell.side == "sell"
    assert first_sell.amount == btc_orders["sellorders"][0]["amount"]


@pytest.mark.parametrize("coin", RECORDED_COINS)
def test_parse_completed_orders_every_recording(coin):
    payload = _recording(f"orders_completed/{coin}.json")
    trades = parse_completed_orders(payload, coin)
    assert len(trades) == len(payload["buyorders"]) + len(payload["sellorders"])
    for trade in trades:
        assert trade.coin == coin
        assert trade.market == "aud"
        assert trade.sold_at.utcoffset() == timedelta(0)
        assert trade.amount > 0 and trade.rate > 0
        # the recorded totals are AUD at 2 dp
        assert trade.total == pytest.approx(trade.amount * trade.rate, abs=0.01)


def test_parse_completed_orders_solddate_z_is_aware_utc(btc_orders):
    sold_at = parse_completed_orders(btc_orders, "btc")[0].sold_at
    assert sold_at.tzinfo is not None
    assert sold_at.utcoffset() == timedelta(0)
    assert sold_at.isoformat() == "2026-11-20T11:38:48+00:00"


def _one_trade(**row) -> dict:
    base = {
        "amount": 0.5, "rate": 130000, "total": 65000, "coin": "BTC", "market": "BTC/AUD",
        "solddate": "2026-01-02T03:04:05.000Z",
    }
    base.update(row)
    base = {k: v for k, v in base.items() if v is not ...}
    return {"status": "ok", "message": "ok", "buyorders": [base], "sellorders": []}


def test_parse_completed_orders_documented_example():
    (trade,) = parse_completed_orders(_one_trade(), "btc")
    assert trade == TradePrint("btc", "aud", "buy", 0.5, 130000.0, 65000.0, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))


def test_parse_completed_orders_side_from_the_book():
    payload = _one_trade()
    payload["sellorders"], payload["buyorders"] = payload["buyorders"], []
    (trade,) = parse_completed_orders(payload, "btc")
    assert trade.side == "sell"


def test_parse_completed_orders_market_from_the_pair():
    (trade,) = parse_completed_orders(_one_trade(market="BTC/USDT"), "BTC")
    assert (trade.coin, trade.market) == ("btc", "usdt")


@pytest.mark.parametrize("total", [..., None])
def test_parse_completed_orders_missing_total_is_computed(total):
    (trade,) = parse_completed_orders(_one_trade(amount="0.25", rate="120000.5", total=total), "btc")
    assert trade.total == pytest.approx(0.25 * 120000.5)
    assert trade.amount == 0.25  # amounts and rates may arrive as strings too


def test_parse_completed_orders_offset_times_are_converted_to_utc():
    (trade,) = parse_completed_orders(_one_trade(solddate="2026-01-02T13:04:05+10:00"), "btc")
    assert trade.sold_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert trade.sold_at.utcoffset() == timedelta(0)


def test_parse_completed_orders_naive_times_are_utc():
    (trade,) = parse_completed_orders(_one_trade(solddate="2026-01-02T03:04:05"), "btc")
    assert trade.sold_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_parse_completed_orders_empty_books():
    assert parse_completed_orders({"status": "ok", "buyorders": [], "sellorders": []}, "ltc") == []


# --- parse_completed_orders failures ----------------------------------------------------


def test_parse_completed_orders_missing_solddate():
    exc = _payload_error(parse_completed_orders, _one_trade(solddate=...), "btc")
    assert "buyorders[0] has no 'solddate'" in exc.reason


def test_parse_completed_orders_solddate_not_a_time():
    exc = _payload_error(parse_completed_orders, _one_trade(solddate="yesterday"), "btc")
    assert "buyorders[0].solddate is 'yesterday'" in exc.reason
    exc = _payload_error(parse_completed_orders, _one_trade(solddate=1767323045), "btc")
    assert "buyorders[0].solddate is not a time string" in exc.reason


def test_parse_completed_orders_wrong_market_for_coin(btc_orders):
    btc_orders["sellorders"][3]["market"] = "ETH/AUD"
    exc = _payload_error(parse_completed_orders, btc_orders, "btc")
    assert "sellorders[3].market is 'ETH/AUD'" in exc.reason
    assert "BTC/<market>" in exc.reason


@pytest.mark.parametrize("market", ["BTC", "BTCAUD", "BTC/", ""])
def test_parse_completed_orders_market_without_a_pair(market):
    exc = _payload_error(parse_completed_orders, _one_trade(market=market), "btc")
    assert "buyorders[0].market" in exc.reason


@pytest.mark.parametrize("field", ["amount", "rate", "market"])
def test_parse_completed_orders_missing_required_field(field):
    exc = _payload_error(parse_completed_orders, _one_trade(**{field: ...}), "btc")
    assert f"buyorders[0] has no {field!r}" in exc.reason


def test_parse_completed_orders_garbage_amount_and_nan_rate():
    exc = _payload_error(parse_completed_orders, _one_trade(amount="abc"), "btc")
    assert "buyorders[0].amount is 'abc'" in exc.reason
    exc = _payload_error(parse_completed_orders, _one_trade(rate="NaN"), "btc")
    assert "buyorders[0].rate" in exc.reason  # a trade always has a rate


def test_parse_completed_orders_books_missing_or_not_lists():
    exc = _payload_error(parse_completed_orders, {"status": "ok", "buyorders": []}, "btc")
    assert "body has no 'sellorders'" in exc.reason
    exc = _payload_error(parse_completed_orders, {"status": "ok", "buyorders": {}, "sellorders": []}, "btc")
    assert "buyorders is not a list" in exc.reason
    exc = _payload_error(parse_completed_orders, {"status": "ok", "buyorders": ["x"], "sellorders": []}, "btc")
    assert "buyorders[0] is not an object" in exc.reason


def test_parse_completed_orders_status_error_and_non_dict_body():
    exc = _payload_error(parse_completed_orders, {"status": "error", "message": "Coin not found"}, "zzz")
    assert "status is 'error'" in exc.reason
    assert exc.url.endswith("/pubapi/v2/orders/completed/zzz")
    assert "got list" in _payload_error(parse_completed_orders, [], "btc").reason


# --- CoinSpotPublic against the live sandbox --------------------------------------------


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def coinspot(sandbox, sleeps):
    http = HttpSource("coinspot", sandbox.url, timeout=2.0, retries=2, backoff=0.01, rate_limit=1000.0, sleep=sleeps.append)
    with CoinSpotPublic(http) as client:
        yield client


@pytest.mark.integration
def test_client_latest_matches_the_recording(coinspot, latest_payload):
    assert coinspot.latest() == parse_latest(latest_payload)


@pytest.mark.integration
def test_client_latest_coin_answers_for_a_coin_latest_omits(coinspot, pepe_payload):
    assert "pepe" not in {q.coin for q in coinspot.latest()}
    assert coinspot.latest_coin("pepe") == parse_latest_coin(pepe_payload, "pepe")
    assert coinspot.latest_coin("PEPE").coin == "pepe"


@pytest.mark.integration
def test_client_latest_coin_for_a_summary_coin(coinspot):
    assert coinspot.latest_coin("btc") == PriceQuote("btc", "aud", 130226.37, 130748.31, 130487.34)


@pytest.mark.integration
def test_client_sees_a_moved_price(sandbox, coinspot):
    sandbox.coinspot.set_price("btc", last="140000.5")
    sandbox.coinspot.set_price("newcoin", bid="1.1", ask="1.3", last="1.2")
    by_key = {(q.coin, q.market): q for q in coinspot.latest()}
    assert by_key[("btc", "aud")].last == 140000.5
    assert by_key[("btc", "aud")].bid == 130226.37
    assert "newcoin" not in {q.coin for q in by_key.values()}
    assert coinspot.latest_coin("newcoin") == PriceQuote("newcoin", "aud", 1.1, 1.3, 1.2)


@pytest.mark.integration
def test_client_completed_orders(sandbox, coinspot, btc_orders):
    trades = coinspot.completed_orders("btc")
    assert len(trades) == 48
    assert {t.side for t in trades} == {"buy", "sell"}
    assert all(t.coin == "btc" and t.market == "aud" for t in trades)
    # Served from the sandbox's tape: the recorded trades, each at its recorded time plus whole periods.
    assert sorted(t.amount for t in trades[:24]) == sorted(o["amount"] for o in btc_orders["buyorders"])
    recorded = {t.amount: t.sold_at for t in parse_completed_orders(btc_orders, "btc")}
    assert all((t.sold_at - recorded[t.amount]) % TAPE_PERIOD == timedelta(0) for t in trades)
    newest = max(t.sold_at for t in trades)
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    assert newest <= hour  # all are at or before the anchor, within a period of it
    assert hour - min(t.sold_at for t in trades) < TAPE_PERIOD + timedelta(hours=1)


@pytest.mark.integration
def test_client_sees_an_added_trade(sandbox, coinspot):
    sold_at = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    sandbox.coinspot.add_trade("btc", side="sell", amount=0.5, rate=100000.0, sold_at=sold_at)
    trades = coinspot.completed_orders("btc")
    assert len(trades) == 49
    assert trades[24] == TradePrint("btc", "aud", "sell", 0.5, 100000.0, 50000.0, sold_at)


@pytest.mark.integration
def test_client_unknown_coin_is_refused(sandbox, coinspot, sleeps):
    for call in (coinspot.latest_coin, coinspot.completed_orders):
        with pytest.raises(SourceRefused) as caught:
            call("notacoin")
        assert caught.value.status == 400
        assert "Coin not found" in caught.value.reason
        assert caught.value.source == "coinspot"
    assert sleeps == []  # a refusal is not retried
    assert len(sandbox.server.requests_to("/pubapi/v2")) == 2


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["malformed", "truncated"])
@pytest.mark.parametrize(
    "call, path",
    [
        (lambda c: c.latest(), "/pubapi/v2/latest"),
        (lambda c: c.latest_coin("pepe"), "/pubapi/v2/latest/pepe"),
        (lambda c: c.completed_orders("btc"), "/pubapi/v2/orders/completed/btc"),
    ],
    ids=["latest", "latest_coin", "completed_orders"],
)
def test_client_bad_body_is_a_payload_error_naming_coinspot_and_the_url(sandbox, coinspot, kind, call, path):
    sandbox.inject(Fault(path, kind, times=1))
    with pytest.raises(SourcePayloadError) as caught:
        call(coinspot)
    assert caught.value.source == "coinspot"
    assert caught.value.url == f"{sandbox.url}{path}"
    assert str(caught.value).startswith("coinspot: ")
    assert f"{sandbox.url}{path}" in str(caught.value)


@pytest.mark.integration
def test_client_rides_out_a_short_burst_of_faults(sandbox, coinspot, sleeps):
    sandbox.inject(Fault("/pubapi/v2/latest", "429", times=1, retry_after=1))
    sandbox.inject(Fault("/pubapi/v2/latest", "503", times=1))
    assert len(coinspot.latest()) == 20
    assert sleeps[0] == 1.0 and len(sleeps) == 2  # Retry-After, then a backoff


@pytest.mark.integration
def test_a_coin_answered_without_its_ask_is_skipped_and_its_stored_price_kept(resources, engine, sandbox):
    from dagster import materialize

    from omc_pipelines.db.models import PriceSnapshot
    from omc_pipelines.ledgers.exchange.assets import OBSERVED_AT_TAG, coinspot_price_snapshots

    def pepe():
        with engine.connect() as conn:
            return conn.execute(sa.select(PriceSnapshot.bid, PriceSnapshot.ask, PriceSnapshot.last)
                                .where(PriceSnapshot.coin == "pepe")).all()

    tags = {OBSERVED_AT_TAG: "2026-11-26T10:15:00+00:00"}  # a retried tick: the same observation
    assert materialize([coinspot_price_snapshots], resources=resources, tags=tags).success
    before = pepe()
    sandbox.inject(Fault("/pubapi/v2/latest/pepe", "wrong_shape", times=0, variant="missing"))  # "ask" dropped

    result = materialize([coinspot_price_snapshots], resources=resources, tags=tags)

    assert result.success and pepe() == before and before[0].ask is not None
    failed = result.asset_materializations_for_node("coinspot_price_snapshots")[0].metadata["failed"].value
    assert list(failed) == ["pepe"] and "coinspot: malformed payload: prices has no 'ask'" in failed["pepe"]
