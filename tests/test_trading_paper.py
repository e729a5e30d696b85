"""The paper broker: spread and fee to the cent, missed fills, refusals, one fill per key."""

from datetime import timedelta
from decimal import Decimal

import pytest

from omc_trading.broker import MissedFill, OrderRejected, OrderRequest, Quote
from omc_trading.config import TradingConfig
from omc_trading.paper import PaperBroker
from trading_fakes import T0, Clock, Quotes, rows

pytestmark = pytest.mark.integration


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def quotes(clock):
    q = Quotes(clock)
    q.set("sol", bid="100.00", ask="101.37")
    return q


def broker(engine, quotes, clock, **config) -> PaperBroker:
    return PaperBroker(engine, quotes, TradingConfig(**config), clock)


def buy(key="k1", aud="100", coin="sol", **extra) -> OrderRequest:
    return OrderRequest(idempotency_key=key, coin=coin, side="buy", aud_amount=Decimal(aud), **extra)


def sell(amount, key="k2", coin="sol", **extra) -> OrderRequest:
    return OrderRequest(idempotency_key=key, coin=coin, side="sell", coin_amount=Decimal(amount), **extra)


def test_a_round_trip_pays_the_spread_and_both_fees_to_the_cent(engine, quotes, clock):
    paper = broker(engine, quotes, clock)
    bought = paper.place(buy())
    # 100 AUD at the ask 101.37: fee 1.00 out of the 100, (100 - 1.00) / 101.37 = 0.976620301.. -> 0.97662030
    assert (bought.rate, bought.aud_total, bought.fee_aud, bought.coin_amount) == (
        Decimal("101.37"), Decimal("100.00"), Decimal("1.00"), Decimal("0.97662030"))
    assert paper.balances() == {"AUD": Decimal("9900.00"), "SOL": Decimal("0.97662030")}
    sold = paper.place(sell("0.97662030"))
    # at the bid 100.00: 97.66203 gross, fee 0.98, proceeds 96.68
    assert (sold.rate, sold.aud_total, sold.fee_aud) == (Decimal("100.00"), Decimal("96.68"), Decimal("0.98"))
    assert paper.balances() == {"AUD": Decimal("9996.68"), "SOL": Decimal("0")}
    fills = rows(engine, "trading_paper_fills")
    assert [(f["idempotency_key"], f["side"], f["quote_source"]) for f in fills] == [
        ("k1", "buy", "test quotes"), ("k2", "sell", "test quotes")]


def test_the_wallet_starts_at_the_configured_amount_and_is_not_written_by_reading_it(engine, quotes, clock):
    paper = broker(engine, quotes, clock, paper_start_aud="2500")
    assert paper.balances() == {"AUD": Decimal("2500")}
    assert rows(engine, "trading_paper_wallet") == []


def test_no_quote_is_a_missed_fill_and_moves_nothing(engine, quotes, clock):
    paper = broker(engine, quotes, clock)
    with pytest.raises(MissedFill, match="no quote for pepe"):
        paper.place(buy(coin="pepe"))
    assert rows(engine, "trading_paper_fills") == [] and rows(engine, "trading_paper_wallet") == []


def test_a_stale_quote_is_a_missed_fill_with_its_age(engine, quotes, clock):
    quotes.set("sol", bid="100", ask="101", at=T0 - timedelta(seconds=121))
    paper = broker(engine, quotes, clock, max_quote_age=timedelta(seconds=120))
    with pytest.raises(MissedFill, match=r"quote from test quotes is 2 min 1 s old, older than max_quote_age 2 min"):
        paper.place(buy())
    assert rows(engine, "trading_paper_fills") == []
    quotes.set("sol", bid="100", ask="101", at=T0 - timedelta(seconds=120))
    assert paper.place(buy()).rate == Decimal("101")  # at the limit it still fills


def test_a_quote_without_an_ask_is_a_missed_buy(engine, quotes, clock):
    quotes.prices["sol"] = Quote("sol", Decimal("100"), None, T0, "test quotes")
    with pytest.raises(MissedFill, match="has no ask"):
        broker(engine, quotes, clock).place(buy())


def test_the_wallet_refuses_what_it_cannot_pay_with_the_figures(engine, quotes, clock):
    paper = broker(engine, quotes, clock, paper_start_aud="50")
    with pytest.raises(OrderRejected, match=r"100.00 AUD asked, the wallet holds 50.00 AUD"):
        paper.place(buy())
    with pytest.raises(OrderRejected, match=r"1.00000000 sol asked, the wallet holds 0.00000000 sol"):
        paper.place(sell("1"))
    assert rows(engine, "trading_paper_fills") == []
    assert paper.balances() == {"AUD": Decimal("50")}


def test_the_slippage_guard_refuses_a_fill_beyond_it_and_allows_one_within(engine, quotes, clock):
    paper = broker(engine, quotes, clock)
    quotes.set("sol", bid="97.00", ask="103.00")
    with pytest.raises(OrderRejected, match=r"slippage guard: ask 103.00 is 3.00 % above the expected 100, more than the 2 %"):
        paper.place(buy(expected_rate=Decimal("100"), max_slippage_pct=Decimal("2")))
    quotes.set("sol", bid="99.00", ask="101.90")
    assert paper.place(buy(expected_rate=Decimal("100"), max_slippage_pct=Decimal("2"))).rate == Decimal("101.90")
    quotes.set("sol", bid="97.00", ask="103.00")
    with pytest.raises(OrderRejected, match=r"bid 97.00 is 3.00 % below the expected 100"):
        paper.place(sell("0.1", expected_rate=Decimal("100"), max_slippage_pct=Decimal("2")))


def test_placing_a_key_twice_returns_the_first_fill_and_moves_nothing(engine, quotes, clock):
    paper = broker(engine, quotes, clock)
    first = paper.place(buy())
    clock.advance(seconds=30)
    quotes.set("sol", bid="200", ask="201")
    assert paper.place(buy()) == first
    quotes.drop("sol")
    assert paper.place(buy()) == first  # even with no quote left: nothing is priced again
    assert len(rows(engine, "trading_paper_fills")) == 1
    assert paper.balances()["AUD"] == Decimal("9900.00")


def test_completed_orders_give_the_key_as_the_broker_reference(engine, quotes, clock):
    paper = broker(engine, quotes, clock)
    paper.place(buy(key="early"))
    clock.advance(minutes=10)
    quotes.set("sol", bid="100.00", ask="101.37")
    paper.place(buy(key="late"))
    assert [f.broker_ref for f in paper.completed_orders(T0)] == ["early", "late"]
    assert [f.broker_ref for f in paper.completed_orders(T0 + timedelta(minutes=5))] == ["late"]
