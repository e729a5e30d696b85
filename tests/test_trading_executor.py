"""The money path on both databases: record once, send once, settle, reconcile, never twice."""

import os
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from omc_trading import controls
from omc_trading.broker import Fill, OrderOutcomeUnknown
from omc_trading.config import TradingConfig
from omc_trading.positions import book_fill
from omc_trading.trader import Trader
from omc_trading.tables import orders, paper_fills
from trading_fakes import (
    T0, Clock, CountingBroker, Quotes, TimesOutAfterFilling, listing, paper_trader, rows, run,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def quotes(clock):
    q = Quotes(clock)
    q.set("sol", bid="99.00", ask="100.00")
    q.set("eth", bid="4950.00", ask="5000.00")
    return q


def states(engine) -> list[tuple[str, str]]:
    return [(o["coin"], o["state"]) for o in rows(engine, "trading_orders")]


# --- kill switch ---------------------------------------------------------------------------

def test_a_halt_refuses_every_signal_and_sends_nothing_and_resume_trades_again(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes)
    trader.record_signals([listing("1", "SOL")], {})  # an intent recorded before the halt...
    controls.halt(engine, "exchange incident", by="ops", now=T0)
    report = run(trader, [listing("2", "ETH", "SOL")])
    halted = "kill switch on: halted by ops at 2026-03-02 03:00:00 UTC: exchange incident"
    assert [(s.coin, s.decision, s.decision_reason) for s in report["signals"].signals] == [
        ("eth", "refused", halted), ("sol", "refused", halted)]
    # ...is not sent either: it is refused with the same reason.
    assert states(engine) == [("sol", "rejected")]
    assert rows(engine, "trading_orders")[0]["reason"] == f"not sent: {halted}"
    assert sum(broker.placed.values()) == 0 and rows(engine, "trading_paper_fills") == []
    assert controls.status(engine, trader.config).halted and report["signals"].kill_switch == halted

    controls.resume(engine, by="ops", now=T0)
    report = run(trader, [listing("3", "ETH")])
    assert [s.decision for s in report["signals"].signals] == ["accepted"]
    assert states(engine) == [("sol", "rejected"), ("eth", "filled")]
    assert not controls.status(engine, trader.config).halted


def test_the_kill_switch_forced_by_configuration_blocks_sells_too(engine, clock, quotes):
    trader, _ = paper_trader(engine, clock, quotes)
    run(trader, [listing("1", "SOL")])
    clock.advance(minutes=5)
    quotes.set("sol", bid="50.00", ask="51.00")  # far past the stop-loss
    forced, broker = paper_trader(engine, clock, quotes, TradingConfig(kill_switch_forced=True))
    report = run(forced, [listing("2", "ETH")])
    says = "kill switch on: forced by OMC_KILL_SWITCH=on"
    assert [(s.action, s.decision_reason) for s in report["signals"].signals + report["exits"].signals] == [
        ("buy", says), ("sell", says)]
    assert states(engine) == [("sol", "filled")] and sum(broker.placed.values()) == 0
    with pytest.raises(ValueError, match="reason"):
        controls.halt(engine, " ", by="ops")


def test_an_exit_refused_by_the_kill_switch_is_tried_again_after_resume(engine, clock, quotes):
    """A stop-loss refused while trading was halted must still sell once trading resumes."""
    trader, broker = paper_trader(engine, clock, quotes)
    run(trader, [listing("1", "SOL")])
    clock.advance(minutes=5)
    quotes.set("sol", bid="50.00", ask="51.00")  # far past the stop-loss
    controls.halt(engine, "exchange incident", by="ops", now=clock())
    halted = run(trader)
    assert [(s.action, s.decision) for s in halted["exits"].signals] == [("sell", "refused")]
    clock.advance(minutes=1)
    assert run(trader)["exits"].signals == []  # not every minute: once per exit_retry_pause
    controls.resume(engine, by="ops", now=clock())
    clock.advance(minutes=15)
    quotes.set("sol", bid="50.00", ask="51.00")  # a fresh quote, still past the stop-loss
    resumed = run(trader)
    [exit_] = resumed["exits"].signals
    assert exit_.decision == "accepted" and exit_.key.endswith("|2") and "attempt 2" in exit_.reason
    assert states(engine) == [("sol", "filled"), ("sol", "filled")]
    assert rows(engine, "trading_lots")[0]["closed_at"] is not None
    clock.advance(minutes=30)
    assert run(trader)["exits"].signals == []  # the position is closed: nothing more to exit


def test_a_quick_run_prices_no_held_coin_one_by_one_and_still_trades(engine, clock, quotes):
    """A catalyst's run must not spend seconds quoting every coin the book holds."""
    trader, broker = paper_trader(engine, clock, quotes)
    run(trader, [listing("1", "SOL")])
    quick = Trader(engine, broker, trader.config, clock, quote_held=False)
    broker.quoted.clear()
    report = run(quick, [listing("2", "ETH")])
    assert [s.decision for s in report["signals"].signals] == ["accepted"]
    assert states(engine) == [("sol", "filled"), ("eth", "filled")]
    assert broker.quoted == Counter({"eth": 1})  # the order's own quote, and no held coin's
    broker.quoted.clear()
    run(trader)  # the minutely job prices what it holds
    assert set(broker.quoted) == {"sol", "eth"}


# --- never twice ---------------------------------------------------------------------------

def test_a_timeout_after_sending_is_marked_unknown_reconciled_to_filled_and_never_resent(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes, broker_class=TimesOutAfterFilling)
    report = run(trader, [listing("1", "SOL")])
    [order] = report["sent"]
    assert order.state == "unknown" and "read timeout" in order.reason and "never resent" in order.reason
    assert rows(engine, "trading_lots") == []  # not booked until it is known
    trader.send_pending()
    clock.advance(minutes=1)
    report = run(trader)  # the next run
    [settled] = report["reconciled"]
    assert (settled.state, settled.aud_total, settled.coin_amount, settled.fee_aud) == (
        "filled", Decimal("100.00"), Decimal("0.99000000"), Decimal("1.00"))
    assert "found among the broker's completed orders (attempt 1) after: buy sol: read timeout" in settled.reason
    assert [(lot["coin"], lot["coin_amount"]) for lot in rows(engine, "trading_lots")] == [("sol", Decimal("0.99"))]
    run(trader)
    assert broker.placed == Counter({"paper|listing|coinspot_announcements|1|buy|sol": 1})
    assert states(engine) == [("sol", "filled")]


def test_an_intent_left_by_a_crash_is_sent_once_by_the_next_run(engine, clock, quotes):
    first, first_broker = paper_trader(engine, clock, quotes)
    first.record_signals([listing("1", "SOL", "ETH")], {})  # ...and the process dies before sending
    assert states(engine) == [("sol", "intent"), ("eth", "intent")]
    clock.advance(seconds=20)
    second, second_broker = paper_trader(engine, clock, quotes)
    report = run(second, [listing("1", "SOL", "ETH")])  # the same event is seen again, too
    assert [s.decision for s in report["signals"].signals] == ["already recorded", "already recorded"]
    assert [o.state for o in report["sent"]] == ["filled", "filled"]
    run(second)
    assert sum(first_broker.placed.values()) == 0 and set(second_broker.placed.values()) == {1}
    assert len(rows(engine, "trading_paper_fills")) == 2 and len(rows(engine, "trading_lots")) == 2


def test_a_buy_intent_older_than_max_event_age_is_not_sent(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes)
    trader.record_signals([listing("1", "SOL")], {})
    clock.advance(minutes=11)  # the process was down for a while
    [order] = trader.send_pending()
    assert order.state == "missed" and order.reason == (
        "not sent: the buy was recorded 11 min ago, older than max_event_age 10 min (the news it trades on is old)")
    assert sum(broker.placed.values()) == 0


def test_an_order_without_a_price_is_not_sent(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes)
    trader.record_signals([listing("1", "NEWCOIN")], {})
    [order] = trader.send_pending()
    assert order.state == "missed" and "no ask for newcoin from the broker" in order.reason
    assert sum(broker.placed.values()) == 0


CRASH_WHILE_SENDING = """
import os, sys
from datetime import datetime
from sqlalchemy import create_engine
from trading_fakes import Clock, CountingBroker, Quotes, listing, paper_trader

class DiesAfterPlacing(CountingBroker):
    def place(self, order):
        super().place(order)  # the paper broker commits its fill...
        os._exit(3)           # ...and the process dies before the executor records it

clock = Clock(datetime.fromisoformat(sys.argv[2]))
quotes = Quotes(clock)
quotes.set("sol", bid="99.00", ask="100.00")
trader, _ = paper_trader(create_engine(sys.argv[1]), clock, quotes, broker_class=DiesAfterPlacing)
trader.record_signals([listing("1", "SOL")], {})
trader.send_pending()
"""


def test_a_process_that_dies_while_sending_leaves_an_order_that_reconciliation_settles(engine, database_url, clock, quotes):
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)])}
    died = subprocess.run([sys.executable, "-c", CRASH_WHILE_SENDING, database_url, T0.isoformat()],
                          env=env, capture_output=True, text=True, timeout=60)
    assert died.returncode == 3, died.stderr
    assert states(engine) == [("sol", "sent")] and len(rows(engine, "trading_paper_fills")) == 1

    trader, broker = paper_trader(engine, clock, quotes)
    clock.advance(minutes=1)
    assert run(trader)["reconciled"] == []  # within the grace period it may still be in flight
    clock.advance(minutes=5)
    [settled] = run(trader)["reconciled"]
    assert settled.state == "filled" and "interrupted while sending" in settled.reason
    assert len(rows(engine, "trading_lots")) == 1 and sum(broker.placed.values()) == 0


class DiesBeforePlacing(CountingBroker):
    def place(self, order):
        raise SystemExit("killed")  # the process ends after the claim, before the broker hears of it


def test_an_order_the_broker_never_got_is_lost_after_the_attempts_and_the_age_never_resent(engine, clock, quotes):
    config = TradingConfig(reconcile_max_attempts=3, reconcile_max_age=timedelta(hours=1))
    dying, _ = paper_trader(engine, clock, quotes, config, broker_class=DiesBeforePlacing)
    dying.record_signals([listing("1", "SOL")], {})
    with pytest.raises(SystemExit):
        dying.send_pending()
    trader, broker = paper_trader(engine, clock, quotes, config)
    for _ in range(4):  # four attempts, but younger than the age limit: still unknown
        clock.advance(minutes=6)
        run(trader)
    [order] = rows(engine, "trading_orders")
    assert (order["state"], order["reconcile_attempts"]) == ("unknown", 4)
    clock.advance(minutes=40)
    [lost] = run(trader)["reconciled"]
    assert lost.state == "lost" and lost.reason.startswith(
        "not among the broker's completed orders after 5 attempts over 1 h 4 min: nothing was bought")
    run(trader)
    assert sum(broker.placed.values()) == 0 and rows(engine, "trading_lots") == []


class Broken(CountingBroker):
    def place(self, order):
        super().place(order)
        raise RuntimeError("HTTP 500 for https://x/api?key=SECRET-KEY")


def test_a_broker_failing_unexpectedly_leaves_the_order_unknown_without_its_text_and_stops_the_run(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes, broker_class=Broken)
    trader.record_signals([listing("1", "SOL", "ETH")], {})
    with pytest.raises(RuntimeError):
        trader.send_pending()
    [first, second] = rows(engine, "trading_orders")
    assert first["state"] == "unknown" and "SECRET" not in first["reason"]
    assert first["reason"].startswith("the broker raised RuntimeError: outcome unknown, never resent")
    assert second["state"] == "intent" and sum(broker.placed.values()) == 1  # nothing more is sent


class LiveLike(CountingBroker):
    """A broker like CoinSpot: no client order id, so its completed orders carry its own ids,
    never our keys, and match on coin, side, amount and time. Orders after the first time out."""

    def place(self, order):
        fill = replace(super().place(order), broker_ref=None)  # an instant order's answer has no id
        if sum(self.placed.values()) > 1:
            raise OrderOutcomeUnknown(f"{order.side} {order.coin}: read timeout")
        return fill

    def completed_orders(self, since):
        return [replace(f, broker_ref=f"coinspot-{i}") for i, f in enumerate(super().completed_orders(since))]


def test_reconciliation_gives_a_broker_fill_to_one_order_only(engine, clock, quotes):
    """Three identical buys: the first fills, two time out, and the exchange has a fill for only
    one of those. The fills cannot say whose they are: each goes to one order at most."""
    trader, broker = paper_trader(engine, clock, quotes, TradingConfig(cooldown=timedelta(0)), broker_class=LiveLike)
    trader.record_signals([listing("1", "SOL"), listing("2", "SOL"), listing("3", "SOL")], {})
    assert [o.state for o in trader.send_pending()] == ["filled", "unknown", "unknown"]
    with engine.begin() as conn:  # the exchange never filled the third
        conn.execute(paper_fills.delete().where(paper_fills.c.idempotency_key.like("%|3|%")))
    clock.advance(minutes=1)
    assert [o.state for o in trader.reconcile()] == ["filled", "unknown"]
    assert len(rows(engine, "trading_lots")) == 2 and sum(broker.placed.values()) == 3


def test_two_runs_at_once_place_each_order_once(engine, clock, quotes):
    events = [listing("1", "SOL", "ETH"), listing("2", "BTC")]
    quotes.set("btc", bid="150000", ask="151000")
    shared = CountingBroker(paper_trader(engine, clock, quotes)[1].inner, place_delay=0.05)
    traders = [paper_trader(engine, clock, quotes)[0] for _ in range(2)]
    for t in traders:
        t.broker = shared
    start, errors = threading.Barrier(2), []

    def trade(trader):
        try:
            start.wait(timeout=20)
            trader.record_signals(events, {})
            start.wait(timeout=20)
            trader.send_pending()
        except Exception as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=trade, args=(t,)) for t in traders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    keys = [o["idempotency_key"] for o in rows(engine, "trading_orders")]
    assert len(keys) == 3 and len(set(keys)) == 3
    assert shared.placed == Counter({k: 1 for k in keys})
    assert states(engine) == [("sol", "filled"), ("eth", "filled"), ("btc", "filled")]
    assert len(rows(engine, "trading_signals")) == 3 and len(rows(engine, "trading_paper_fills")) == 3


# --- what is traded and booked -------------------------------------------------------------

def test_old_events_place_no_order(engine, clock, quotes):
    trader, broker = paper_trader(engine, clock, quotes)
    history = [listing(str(i), "SOL", published=T0 - timedelta(days=i)) for i in range(1, 4)]
    report = run(trader, history)
    assert [s.decision for s in report["signals"].signals] == ["refused"] * 3
    assert all(s.decision_reason.startswith("event too old to trade") for s in report["signals"].signals)
    assert rows(engine, "trading_orders") == [] and sum(broker.placed.values()) == 0


def test_the_cooldown_is_read_from_the_recorded_orders(engine, clock, quotes):
    trader, _ = paper_trader(engine, clock, quotes, TradingConfig(cooldown=timedelta(hours=1)))
    run(trader, [listing("1", "SOL")])
    clock.advance(minutes=5)
    quotes.set("sol", bid="99.00", ask="100.00")
    [signal] = run(trader, [listing("2", "SOL")])["signals"].signals
    assert signal.decision_reason == "cooldown: the last sol buy was 5 min ago, cooldown 1 h"


def test_paper_and_live_books_never_mix(engine, clock, quotes):
    paper, _ = paper_trader(engine, clock, quotes)
    run(paper, [listing("1", "SOL")])
    live, live_broker = paper_trader(engine, clock, quotes)
    live_broker.mode = "live"  # a stand-in live book on the same database
    report = run(live, [listing("1", "SOL")])
    assert [s.decision for s in report["signals"].signals] == ["accepted"]  # its own key, its own book
    assert report["positions"][0].coin_amount == Decimal("0.99")
    assert [(o["mode"], o["state"]) for o in rows(engine, "trading_orders")] == [("paper", "filled"), ("live", "filled")]
    assert len(paper.refresh_positions({})) == 1


def test_fifo_lots_and_realized_pnl_with_both_fees_to_the_cent(engine, clock, quotes):
    no_exits = TradingConfig(cooldown=timedelta(0), take_profit_pct="1000", stop_loss_pct="99")
    trader, _ = paper_trader(engine, clock, quotes, no_exits)
    run(trader, [listing("1", "SOL")])  # 100 AUD at 100: fee 1.00, 0.99 sol
    quotes.set("sol", bid="190.00", ask="200.00")
    run(trader, [listing("2", "SOL")])  # 100 AUD at 200: fee 1.00, 0.495 sol
    quotes.set("sol", bid="150.00", ask="151.00")
    run(trader, [listing("3", "SOL", event_type="delisting")])
    # 1.485 sol at 150: 222.75 gross, fee 2.23, proceeds 220.52; split FIFO by amount:
    # lot 1: 0.99 -> 147.01 - 100.00 = 47.01; lot 2 (the rest): 73.51 - 100.00 = -26.49
    assert [(r["coin_amount"], r["proceeds_aud"], r["cost_aud"], r["pnl_aud"]) for r in rows(engine, "trading_realized")] == [
        (Decimal("0.99"), Decimal("147.01"), Decimal("100.00"), Decimal("47.01")),
        (Decimal("0.495"), Decimal("73.51"), Decimal("100.00"), Decimal("-26.49"))]
    assert [(lot["remaining"], lot["closed_at"]) for lot in rows(engine, "trading_lots")] == [
        (Decimal(0), clock()), (Decimal(0), clock())]
    assert rows(engine, "trading_positions", mode="paper") == []

    pnl = trader.daily_pnl(T0.date(), {})
    assert (pnl.realized_pnl_aud, pnl.fees_aud, pnl.spent_aud, pnl.orders_filled, pnl.unrealized_pnl_aud) == (
        Decimal("20.52"), Decimal("4.23"), Decimal("200.00"), 3, Decimal(0))
    run(trader, [listing("4", "ETH")])
    trader.daily_pnl(T0.date(), {"eth": quotes.quote("eth")})  # computed again: the row is replaced
    [row] = rows(engine, "trading_pnl_daily")
    # eth: 100 AUD bought 0.0198 at 5000; at the bid 4950 worth 98.01: unrealized -1.99
    assert (row["day"], row["realized_pnl_aud"], row["unrealized_pnl_aud"], row["spent_aud"], row["orders_filled"]) == (
        T0.date(), Decimal("20.52"), Decimal("-1.99"), Decimal("300.00"), 4)
    assert trader.daily_pnl(T0.date() - timedelta(days=1), {}).orders_filled == 0


def test_partial_sells_split_a_lots_cost_and_the_last_piece_takes_the_remainder(engine):
    def fill(side, amount, total, minutes):
        return Fill("sol", side, Decimal(amount), Decimal(1), Decimal(total), Decimal(0), T0 + timedelta(minutes=minutes))

    with engine.begin() as conn:
        def order(key, side):
            return conn.execute(sa.insert(orders).values(idempotency_key=key, mode="paper", coin="sol", side=side,
                                                         state="filled", requested_at=T0)).inserted_primary_key[0]
        book_fill(conn, "paper", order("b1", "buy"), fill("buy", "1.0", "100.50", 0))
        book_fill(conn, "paper", order("b2", "buy"), fill("buy", "2.0", "300.00", 1))
        assert book_fill(conn, "paper", order("s1", "sell"), fill("sell", "1.5", "240.00", 2)) == 0
        assert book_fill(conn, "paper", order("s2", "sell"), fill("sell", "1.5", "150.00", 3)) == 0
        assert book_fill(conn, "paper", order("s3", "sell"), fill("sell", "0.1", "10.00", 4)) == Decimal("0.1")
    assert [(r["lot_id"], r["coin_amount"], r["proceeds_aud"], r["cost_aud"], r["pnl_aud"])
            for r in rows(engine, "trading_realized")] == [
        (1, Decimal("1.0"), Decimal("160.00"), Decimal("100.50"), Decimal("59.50")),
        (2, Decimal("0.5"), Decimal("80.00"), Decimal("75.00"), Decimal("5.00")),
        (2, Decimal("1.5"), Decimal("150.00"), Decimal("225.00"), Decimal("-75.00"))]
