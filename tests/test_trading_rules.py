"""The pure parts of the trading core: configuration, effective mode, strategy, exits, risk gate."""

import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest

from omc_trading.broker import Quote
from omc_trading.config import TradingConfig, effective_mode
from omc_trading.controls import KillSwitch
from omc_trading.positions import Holding
from omc_trading.risk import Book, decide
from omc_trading.strategy import Signal, event_signals, exit_signals
from trading_fakes import T0, listing

CONFIG = TradingConfig()


def test_the_trading_core_imports_neither_dagster_nor_the_pipelines():
    code = (
        "import importlib, pkgutil, sys, omc_trading\n"
        "for m in pkgutil.iter_modules(omc_trading.__path__): importlib.import_module('omc_trading.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('dagster', 'omc_pipelines'))\n"
        "print(len([n for n in sys.modules if n.startswith('omc_trading.')]), bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) >= 10 and out[1].strip() == "[]"


# --- configuration -------------------------------------------------------------------------

def test_defaults_are_sane_and_money_is_decimal():
    assert CONFIG.mode == "paper" and CONFIG.trade_aud == Decimal("100") and CONFIG.fee_rate == Decimal("0.01")
    assert CONFIG.trade_aud <= CONFIG.max_order_aud and not CONFIG.btc_purchase_enabled
    assert TradingConfig(trade_aud="50", allow_coins={" SOL ", "eth", ""}).allow_coins == {"sol", "eth"}
    assert TradingConfig(trade_aud="50").trade_aud == Decimal("50")


@pytest.mark.parametrize("field, value, says", [
    ("max_order_aud", Decimal("-1"), "TradingConfig.max_order_aud must not be negative"),
    ("fee_rate", Decimal("1"), "TradingConfig.fee_rate must be below 1"),
    ("fee_rate", 0.01, "TradingConfig.fee_rate: money must not be a float"),
    ("trade_aud", Decimal("0"), "TradingConfig.trade_aud must be above 0"),
    ("trade_aud", "lots", "TradingConfig.trade_aud: 'lots' is not a number"),
    ("cooldown", timedelta(minutes=-1), "TradingConfig.cooldown must not be negative"),
    ("max_event_age", timedelta(0), "TradingConfig.max_event_age must be above 0"),
    ("max_open_positions", -2, "TradingConfig.max_open_positions must be a whole number"),
    ("mode", "yolo", "TradingConfig.mode must be one of paper, live"),
    ("live_confirmed", "yes", "TradingConfig.live_confirmed must be True or False"),
    ("stop_loss_pct", Decimal("100"), "TradingConfig.stop_loss_pct must be below 100"),
    ("slippage_pct", Decimal("1001"), "TradingConfig.slippage_pct must be 1000 at most"),
    ("reconcile_max_attempts", 0, "TradingConfig.reconcile_max_attempts must be 1 at least"),
])
def test_a_bad_value_is_refused_naming_its_field(field, value, says):
    with pytest.raises(ValueError, match=says.replace(".", r"\.")):
        TradingConfig(**{field: value})


@pytest.mark.parametrize("config, trading_keys, read_only_keys, mode, says", [
    (TradingConfig(), True, True, "paper", "paper trading (requested)"),
    (TradingConfig(mode="live"), True, True, "paper",
     "live requested but OMC_TRADING_LIVE_CONFIRM is not yes: trading on paper"),
    (TradingConfig(mode="live", live_confirmed=True), True, False, "paper",
     "live requested but the CoinSpot read-only key and secret are not both set: trading on paper"),
    (TradingConfig(mode="live", live_confirmed=True), False, True, "paper", "trading key and secret are not both set"),
    (TradingConfig(mode="live", live_confirmed=True), True, True, "live", "live trading"),
])
def test_live_needs_the_request_the_confirmation_and_both_key_pairs(config, trading_keys, read_only_keys, mode, says):
    decided = effective_mode(config, trading_keys, read_only_keys)
    assert decided.mode == mode and says in decided.reason


# --- strategy ------------------------------------------------------------------------------

def test_a_listing_buys_each_coin_it_names_once_with_a_stable_key():
    signals = event_signals(listing("77", "SOL", "sol", "AUD", "Pepe"), CONFIG, "paper", T0, {})
    assert [(s.action, s.coin, s.aud_amount, s.refusal) for s in signals] == [
        ("buy", "sol", Decimal("100.00"), None), ("buy", "pepe", Decimal("100.00"), None)]
    assert signals[0].key == "paper|listing|coinspot_announcements|77|buy|sol"
    again = event_signals(listing("77", "SOL"), CONFIG, "paper", T0 + timedelta(minutes=3), {})
    assert again[0].key == signals[0].key
    assert event_signals(listing("77", "SOL"), CONFIG, "live", T0, {})[0].key.startswith("live|")


def test_an_event_older_than_max_event_age_is_refused_with_its_ages():
    old = listing("5", "SOL", published=T0 - timedelta(hours=2, minutes=3), detected=T0 - timedelta(minutes=1))
    [signal] = event_signals(old, CONFIG, "paper", T0, {})
    assert signal.refusal == ("event too old to trade: published 2 h 3 min ago (2026-03-02 00:57:00 UTC), "
                              "detected 1 min ago; max_event_age is 10 min")
    assert decide(signal, Book("paper", T0, KillSwitch(False), aud_balance=Decimal(10000)), CONFIG).decision == "refused"
    [fresh] = event_signals(listing("6", "SOL", published=T0 - timedelta(minutes=10)), CONFIG, "paper", T0, {})
    assert fresh.refusal is None


def test_a_delisting_sells_the_whole_position_or_says_there_is_nothing_to_sell():
    held = {"sol": Holding("sol", Decimal("1.5"), Decimal("150"), T0)}
    sell, nothing = event_signals(listing("9", "SOL", "ETH", event_type="delisting"), CONFIG, "paper", T0, held)
    assert (sell.action, sell.coin, sell.coin_amount) == ("sell", "sol", Decimal("1.5"))
    assert (nothing.action, nothing.coin) == ("none", "eth")
    assert "no open eth position: nothing to sell" in nothing.reason
    # The key is the sell's, so a later look at the same event can never become a sale.
    assert nothing.key == "paper|delisting|coinspot_announcements|9|sell|eth"


def test_a_bitcoin_purchase_buys_btc_only_when_enabled():
    event = listing("0001050446-26-000009", "BTC", event_type="bitcoin_purchase")
    [off] = event_signals(event, CONFIG, "paper", T0, {})
    assert off.action == "none" and "btc_purchase_enabled is off" in off.reason
    [on] = event_signals(event, TradingConfig(btc_purchase_enabled=True), "paper", T0, {})
    assert (on.action, on.coin, on.aud_amount) == ("buy", "btc", Decimal("100.00"))


@pytest.mark.parametrize("event_type", ["maintenance", "filing", "trading_change", "other"])
def test_other_events_are_informational(event_type):
    [signal] = event_signals(listing("3", "SOL", event_type=event_type), CONFIG, "paper", T0, {})
    assert signal.action == "none" and "no trading rule" in signal.reason
    assert decide(signal, Book("paper", T0, KillSwitch(False)), CONFIG).decision == "informational"


def quote(bid: str, at=T0) -> Quote:
    return Quote("sol", Decimal(bid), Decimal(bid) * Decimal("1.01"), at, "test quotes")


HELD = {"sol": Holding("sol", Decimal("1"), Decimal("100.00"), T0 - timedelta(days=1))}


@pytest.mark.parametrize("bid, at, says", [
    ("120.00", T0, "take profit: 1.00000000 sol at bid 120.00 is worth 120.00 AUD, +20.00 % on its cost of 100.00 AUD"),
    ("90.00", T0, "stop loss: 1.00000000 sol at bid 90.00 is worth 90.00 AUD, -10.00 % on its cost of 100.00 AUD"),
    ("119.99", T0, None),
    ("50.00", T0 - timedelta(minutes=5), None),  # a stale quote says nothing about gain or loss
])
def test_exits_on_gain_or_loss_judged_on_a_fresh_bid(bid, at, says):
    signals = exit_signals(HELD, {"sol": quote(bid, at)}, CONFIG, "paper", T0)
    assert [s.reason.split(" (")[0] for s in signals] == ([says] if says else [])
    if says:
        assert signals[0].key == "paper|exit|sol|2026-03-01T03:00:00+00:00|1"  # the first attempt
        assert signals[0].coin_amount == Decimal("1")


def test_an_exit_after_the_maximum_holding_time_needs_no_price():
    config = TradingConfig(max_holding=timedelta(hours=24))
    [signal] = exit_signals(HELD, {}, config, "paper", T0)
    assert signal.reason.startswith("max holding time: sol held for 1 d since 2026-03-01 03:00 UTC")
    assert exit_signals(HELD, {}, config, "paper", T0 - timedelta(seconds=1)) == []


# --- risk gate -----------------------------------------------------------------------------

def buy(coin="sol", aud="100") -> Signal:
    return Signal(key=f"paper|listing|x|1|buy|{coin}", mode="paper", strategy="listing", action="buy", coin=coin,
                  reason="test", aud_amount=Decimal(aud))


def book(**state) -> Book:
    return Book(**{"mode": "paper", "now": T0, "kill_switch": KillSwitch(False), "aud_balance": Decimal("10000"), **state})


def holding(cost: str) -> Holding:
    return Holding("x", Decimal("1"), Decimal(cost), T0)


LIMITS = TradingConfig(max_order_aud="150", max_daily_spend_aud="300", max_coin_exposure_aud="200",
                       max_total_exposure_aud="400", max_open_positions=2, daily_loss_limit_aud="50",
                       cooldown=timedelta(minutes=30), deny_coins={"pepe"})


@pytest.mark.parametrize("signal, state, says", [
    (buy("pepe"), {}, "deny list: pepe is on it (pepe)"),
    (buy(aud="150.01"), {}, "per-order cap: 150.01 AUD > max_order_aud 150.00"),
    (buy(), {"spent_today": Decimal("250")},
     "daily spend cap: spent 250.00 AUD on 2026-03-02 (UTC) + 100.00 = 350.00 > max_daily_spend_aud 300.00"),
    (buy(), {"holdings": {"sol": holding("60")}, "pending_buys": {"sol": Decimal("50")}},
     "sol exposure at cost: 110.00 AUD held or pending + 100.00 = 210.00 > max_coin_exposure_aud 200.00"),
    (buy(), {"holdings": {"eth": holding("199"), "btc": holding("150")}},
     "total exposure at cost: 349.00 AUD held or pending + 100.00 = 449.00 > max_total_exposure_aud 400.00"),
    (buy(), {"holdings": {"eth": holding("50")}, "pending_buys": {"btc": Decimal("50")}},
     "open positions: 2 open (btc, eth), max_open_positions 2"),
    (buy(), {"realized_today": Decimal("-30"), "unrealized": Decimal("-20"), "unpriced": ("eth",)},
     "daily loss limit: realized today -30.00 + unrealized -20.00 = -50.00 AUD (eth without a price, counted at cost), "
     "a loss of 50.00 or more"),
    (buy(), {"last_buy_at": {"sol": T0 - timedelta(minutes=29)}}, "cooldown: the last sol buy was 29 min ago, cooldown 30 min"),
    (buy(), {"aud_balance": Decimal("120"), "pending_buys": {"eth": Decimal("30")}},
     "available AUD: 90.00 (balance 120.00 less 30.00 in unsettled buys) < 100.00"),
    (buy(), {"aud_balance": None}, "available AUD: the broker's balance was not read"),
])
def test_each_limit_refuses_a_buy_naming_the_limit_and_the_figures(signal, state, says):
    decision = decide(signal, book(**state), LIMITS)
    assert (decision.decision, decision.reason) == ("refused", says)


def test_a_buy_within_every_limit_is_accepted_with_the_figures():
    state = {"holdings": {"sol": holding("50")}, "spent_today": Decimal("50"), "realized_today": Decimal("-49.99"),
             "last_buy_at": {"sol": T0 - timedelta(minutes=30)}}
    decision = decide(buy(), book(**state), LIMITS)
    assert decision.decision == "accepted" and decision.aud_amount == Decimal("100")
    assert decision.reason.startswith("within limits: 100.00 AUD <= per-order 150.00; spent today 150.00 <= 300.00; "
                                      "sol exposure at cost 150.00 <= 200.00; total 150.00 <= 400.00; positions 1 of 2")


def test_the_allow_list_admits_only_its_coins():
    config = TradingConfig(allow_coins={"btc"})
    assert decide(buy("sol"), book(), config).reason == "allow list: sol is not on it (btc)"
    assert decide(buy("btc"), book(), config).decision == "accepted"


def test_the_kill_switch_refuses_sells_too():
    halted = KillSwitch(True, reason="exchange incident", changed_by="ops", changed_at=T0)
    sell = Signal(key="k", mode="paper", strategy="exit", action="sell", coin="sol", reason="t", coin_amount=Decimal(1))
    state = book(kill_switch=halted, holdings={"sol": Holding("sol", Decimal(1), Decimal(100), T0)})
    for signal in (buy(), sell):
        assert decide(signal, state, CONFIG).reason == (
            "kill switch on: halted by ops at 2026-03-02 03:00:00 UTC: exchange incident")


def test_a_sell_needs_an_open_position_not_already_being_sold():
    sell = Signal(key="k", mode="paper", strategy="exit", action="sell", coin="sol", reason="t", coin_amount=Decimal(2))
    assert decide(sell, book(), CONFIG).reason == "no open sol position: nothing to sell"
    held = {"sol": Holding("sol", Decimal("1.5"), Decimal(150), T0)}
    partly = decide(sell, book(holdings=held, pending_sells={"sol": Decimal("0.5")}), CONFIG)
    assert (partly.decision, partly.coin_amount) == ("accepted", Decimal("1.0"))
    assert decide(sell, book(holdings=held, pending_sells={"sol": Decimal("1.5")}), CONFIG).reason == (
        "all 1.50000000 sol held is already being sold")
