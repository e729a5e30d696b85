"""No sequence of events and prices takes the book past a risk limit.

Each example is a run of trading steps (time passes, prices move, listings and delistings
arrive, one full trading run). After every step the limits are checked against what the
database holds, computed here independently of the risk gate.
"""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from omc_trading.config import TradingConfig
from omc_trading.money import aud
from omc_trading.clock import utc_day
from trading_fakes import Clock, Quotes, listing, paper_trader, rows, run, wipe

pytestmark = pytest.mark.integration

COINS = ["sol", "eth", "btc"]  # few, so that coins come back and limits per coin bind
FAILED = ("rejected", "missed", "lost")
PENDING = ("intent", "sent", "unknown")

step = st.fixed_dictionaries({
    "minutes": st.sampled_from([1, 7, 45, 300, 900]),
    "moves": st.dictionaries(st.sampled_from(COINS), st.sampled_from(["0.5", "0.8", "0.95", "1.05", "1.3", "2"])),
    "listings": st.lists(st.lists(st.sampled_from(COINS), min_size=1, max_size=3), max_size=3),
    "delisting": st.none() | st.sampled_from(COINS),
})
# Each example trades under one profile, in which one limit is tight and binds often (a
# random mix of limits would rarely bring the book to any of them), or under a mix of them.
LOOSE = dict(max_order_aud="150", max_daily_spend_aud="10000", max_coin_exposure_aud="10000",
             max_total_exposure_aud="10000", max_open_positions=10, daily_loss_limit_aud="10000",
             take_profit_pct="50", stop_loss_pct="90")
PROFILES = [
    {"max_daily_spend_aud": "150"},
    {"max_coin_exposure_aud": "100"},
    {"max_total_exposure_aud": "150"},
    {"max_open_positions": 1},
    {"daily_loss_limit_aud": "15"},
    {"max_daily_spend_aud": "400", "max_coin_exposure_aud": "200", "max_total_exposure_aud": "450",
     "max_open_positions": 3, "daily_loss_limit_aud": "60", "stop_loss_pct": "40"},
]
config = st.builds(
    lambda profile, **drawn: TradingConfig(**{**LOOSE, **profile, **drawn}),
    st.sampled_from(PROFILES),
    trade_aud=st.sampled_from(["40", "90", "160"]),
    paper_start_aud=st.sampled_from(["10000", "350"]),
    cooldown=st.sampled_from([timedelta(0), timedelta(minutes=20)]),
)


def exposure(engine) -> dict[str, Decimal]:
    """AUD at cost per coin: what open lots still cost, plus buys not yet settled."""
    matched = defaultdict(Decimal)
    for r in rows(engine, "trading_realized"):
        matched[r["lot_id"]] += r["cost_aud"]
    result = defaultdict(Decimal)
    for lot in rows(engine, "trading_lots"):
        if lot["closed_at"] is None:
            result[lot["coin"]] += lot["cost_aud"] - matched[lot["id"]]
    for o in rows(engine, "trading_orders", side="buy"):
        if o["state"] in PENDING:
            result[o["coin"]] += o["aud_total"]
    return result


def pnl_today(engine, now, quotes) -> Decimal:
    start, end = utc_day(now.date())
    realized = sum((r["pnl_aud"] for r in rows(engine, "trading_realized") if start <= r["closed_at"] < end), Decimal(0))
    held = defaultdict(Decimal)
    for lot in rows(engine, "trading_lots"):
        if lot["closed_at"] is None:
            held[lot["coin"]] += lot["remaining"]
    value = sum((aud(amount * quotes.quote(coin).bid) for coin, amount in held.items()), Decimal(0))
    return realized + value - sum(exposure(engine).values(), Decimal(0))


def check_limits(engine, limits: TradingConfig, buys_before: int, loss_before: Decimal) -> None:
    buys = [o for o in rows(engine, "trading_orders", side="buy")]
    assert all(o["aud_total"] <= limits.max_order_aud for o in buys)
    spent = defaultdict(Decimal)
    for o in buys:
        if o["state"] not in FAILED:
            spent[o["requested_at"].date()] += o["aud_total"]
    assert all(total <= limits.max_daily_spend_aud for total in spent.values()), spent
    held = exposure(engine)
    assert all(total <= limits.max_coin_exposure_aud for total in held.values()), held
    assert sum(held.values(), Decimal(0)) <= limits.max_total_exposure_aud
    assert len([c for c, total in held.items() if total > 0]) <= limits.max_open_positions
    if -loss_before >= limits.daily_loss_limit_aud:
        assert len(buys) == buys_before, f"a buy was accepted with today's P&L at {loss_before}"
    filled = [o for o in rows(engine, "trading_orders") if o["state"] == "filled"]
    assert len(filled) == len(rows(engine, "trading_paper_fills"))  # every fill booked once


def limits(profile: dict, trade_aud="90") -> TradingConfig:
    return TradingConfig(**{**LOOSE, **profile, "trade_aud": trade_aud, "cooldown": timedelta(0)})


def at(minutes=1, listings=(), moves=None, delisting=None) -> dict:
    return {"minutes": minutes, "moves": moves or {}, "listings": [list(c) for c in listings], "delisting": delisting}


# One example per limit that a random search could miss, so each limit is always brought to bind.
@example(limits(PROFILES[0]), [at(listings=[["sol"], ["eth"]])])
@example(limits(PROFILES[1]), [at(listings=[["sol"], ["sol"]])])  # the second while the first is unsettled
@example(limits(PROFILES[1]), [at(listings=[["sol"]]), at(listings=[["sol"]])])
@example(limits(PROFILES[2]), [at(listings=[["sol"], ["eth"]])])
@example(limits(PROFILES[3]), [at(listings=[["sol", "eth"]])])
@example(limits(PROFILES[4]), [at(listings=[["sol"]]), at(moves={"sol": "0.8"}, listings=[["eth"]])])
@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limits=config, steps=st.lists(step, min_size=1, max_size=8))
def test_no_sequence_of_signals_and_prices_breaches_a_limit(engine, limits, steps):
    wipe(engine)
    clock = Clock()
    quotes = Quotes(clock)
    price = {coin: Decimal(100) for coin in COINS}
    trader, _ = paper_trader(engine, clock, quotes, limits)
    for number, s in enumerate(steps):
        clock.advance(minutes=s["minutes"])
        for coin in COINS:
            price[coin] *= Decimal(s["moves"].get(coin, "1"))
            quotes.set(coin, bid=str(aud(price[coin])), ask=str(aud(price[coin] * Decimal("1.01"))))
        events = [listing(f"{number}-{i}", *coins, published=clock()) for i, coins in enumerate(s["listings"])]
        if s["delisting"]:
            events.append(listing(f"{number}-d", s["delisting"], published=clock(), event_type="delisting"))
        buys_before = len(rows(engine, "trading_orders", side="buy"))
        loss_before = pnl_today(engine, clock(), quotes)
        run(trader, events, dict(quotes.prices))
        check_limits(engine, limits, buys_before, loss_before)
