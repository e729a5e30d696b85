"""The backtest: events replayed through the live strategy, risk gate and paper broker at a
history's prices; its baseline; the research_backtest asset on both databases."""

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import sqlalchemy as sa
from dagster import materialize

from omc_pipelines.db import get_engine
from omc_pipelines.db.models import Backtest, BacktestTrade, CatalystEvent, PriceSnapshot, Trade
from omc_pipelines.ledgers.research import assets as research_assets
from omc_pipelines.research import backtest as research
from omc_pipelines.research.prices import PriceBook
from omc_pipelines.resources import LedgerDatabase, TradingResource
from omc_trading.backtest import ArrayHistory, Track, baseline, baseline_events, replay, to_ns
from omc_trading.config import TradingConfig
from omc_trading.strategy import Catalyst
from omc_trading.tables import orders

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
LATENCY = timedelta(seconds=6)
# 1 % fee (the default), 100 AUD a trade, take profit 20 %, stop loss 10 %.
CONFIG = TradingConfig()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def listing(coin: str, detected: datetime, external_id: str | None = None, published: datetime | None = None):
    return Catalyst("coinspot_announcements", external_id or coin, "listing", [coin.upper()],
                    published or detected, detected, f"{coin.upper()} listed")


def history(rows: dict, tolerance=timedelta(minutes=2)) -> ArrayHistory:
    return ArrayHistory.from_rows(rows, tolerance=tolerance)


# The entry of every hand-computed case: a listing detected at 10:00:00, replayed 6 s later; the
# first observation after 10:00:06 is at 10:00:30, bid 0.99 / ask 1.01 (a 2 % spread around 1.00).
# Buy 100 AUD at the ask: fee 1.00, coins = (100 - 1.00) / 1.01 = 98.0198019801... -> 98.01980198
# (rounded down to 8 places); cost 100.00 AUD, fee included.
ENTRY = (at(0.5), "0.99", "1.01")
COINS = Decimal("98.01980198")


def test_take_profit_to_the_cent():
    # 11:00 bid 1.10: worth 107.82, +7.82 %: held. 12:00 bid 1.25: worth 98.01980198 x 1.25 =
    # 122.524752475 -> 122.52 AUD, +22.52 % >= 20 %: sold at the bid. Fee = 1 % of 122.524752475 =
    # 1.23 (to the cent); proceeds = 122.524752475 - 1.23 = 121.29; P&L = 121.29 - 100.00 = 21.29;
    # fees 1.00 + 1.23 = 2.23.
    h = history({"abc": [ENTRY, (at(60), "1.10", "1.12"), (at(120), "1.25", "1.27"), (at(180), "1.30", "1.32")]})
    result = replay([listing("abc", T0)], h, CONFIG, LATENCY, "10000")
    [trade] = result.trades
    assert (trade.entry_at, trade.entry_rate, trade.coin_amount, trade.aud_in) == (
        T0 + LATENCY, Decimal("1.01"), COINS, Decimal("100.00"))
    assert (trade.exit_at, trade.exit_rate, trade.aud_out) == (at(120), Decimal("1.25"), Decimal("121.29"))
    assert (trade.fees_aud, trade.pnl_aud) == (Decimal("2.23"), Decimal("21.29"))
    assert trade.exit_reason.startswith("take profit") and not trade.open
    assert result.end_aud == Decimal("10021.29") and result.pnl_aud == Decimal("21.29")
    assert result.total_return_pct == Decimal("0.2129") and result.hit_rate == 1.0
    assert result.equity[0].equity_aud == Decimal("10000") and result.equity[-1].equity_aud == Decimal("10021.29")
    assert result.refusals == []


def test_stop_loss_to_the_cent():
    # 10:30 bid 0.95: worth 93.12, -6.88 %: held. 11:00 bid 0.88: worth 98.01980198 x 0.88 =
    # 86.2574257424 -> 86.26, -13.74 % <= -10 %: sold. Fee = 0.862574... -> 0.86; proceeds =
    # 86.2574257424 - 0.86 = 85.3974... -> 85.40; P&L = 85.40 - 100.00 = -14.60; fees 1.86.
    h = history({"abc": [ENTRY, (at(30), "0.95", "0.97"), (at(60), "0.88", "0.90"), (at(90), "0.80", "0.82")]})
    result = replay([listing("abc", T0)], h, CONFIG, LATENCY, "10000")
    [trade] = result.trades
    assert (trade.exit_at, trade.exit_rate, trade.aud_out) == (at(60), Decimal("0.88"), Decimal("85.40"))
    assert (trade.fees_aud, trade.pnl_aud) == (Decimal("1.86"), Decimal("-14.60"))
    assert trade.exit_reason.startswith("stop loss")
    assert result.end_aud == Decimal("9985.40") and result.hit_rate == 0.0
    # The worst moment is the exit: 10,000 - 14.60.
    assert result.max_drawdown_pct == Decimal("0.1460")


def test_max_holding_to_the_cent():
    # max_holding 24 h from the entry at 10:00:06: the first price after 10:00:06 next day is at
    # 11:00 (25 h). Bid 1.02: worth 98.01980198 x 1.02 = 99.9801980196 -> 99.98, -0.02 %: neither
    # take profit nor stop loss; held 24 h 59 min: sold. Fee 0.99980... -> 1.00; proceeds
    # 99.9801980196 - 1.00 = 98.98; P&L -1.02; fees 2.00.
    config = TradingConfig(max_holding=timedelta(hours=24))
    h = history({"abc": [ENTRY, (at(60), "1.00", "1.02"), (at(23 * 60), "1.05", "1.07"),
                         (at(25 * 60), "1.02", "1.04"), (at(26 * 60), "1.50", "1.52")]})
    result = replay([listing("abc", T0)], h, config, LATENCY, "10000")
    [trade] = result.trades
    assert (trade.exit_at, trade.exit_rate, trade.aud_out) == (at(25 * 60), Decimal("1.02"), Decimal("98.98"))
    assert (trade.fees_aud, trade.pnl_aud) == (Decimal("2.00"), Decimal("-1.02"))
    assert trade.exit_reason.startswith("max holding time")
    # In the market from 10:00:06 to 11:00 next day, of a period from 10:00 to 12:00 next day.
    assert abs(result.exposure - (25 * 3600 - 6) / (26 * 3600)) < 1e-9


def test_an_open_position_is_valued_at_the_last_bid_and_marked_open():
    h = history({"abc": [ENTRY, (at(60), "1.10", "1.12")]})
    result = replay([listing("abc", T0)], h, CONFIG, LATENCY, "10000")
    [trade] = result.trades
    # 98.01980198 x 1.10 = 107.821782178 -> 107.82 (no sell fee: not sold).
    assert trade.open and trade.exit_rate == Decimal("1.10") and trade.aud_out == Decimal("107.82")
    assert trade.pnl_aud == Decimal("7.82") and result.end_aud == Decimal("10007.82")
    assert result.hit_rate is None and "open at the end" in trade.exit_reason


def test_the_risk_gate_applies_and_events_replay_in_detection_order():
    config = TradingConfig(max_open_positions=1)
    h = history({"abc": [ENTRY, (at(60), "1.00", "1.02"), (at(120), "1.00", "1.02")],
                 "xyz": [(at(30.5), "2.00", "2.02"), (at(60), "2.00", "2.02"), (at(120), "2.00", "2.02")]})
    # Given in the wrong order: abc was detected first and takes the one position allowed.
    events = [listing("xyz", at(30)), listing("abc", T0)]
    result = replay(events, h, config, LATENCY, "10000")
    assert [t.coin for t in result.trades] == ["abc"]
    [refusal] = result.refusals
    assert (refusal.stage, refusal.coin, refusal.at) == ("risk gate", "xyz", at(30) + LATENCY)
    assert refusal.reason.startswith("open positions: 1 open (abc), max_open_positions 1")


def test_an_order_fills_at_the_first_price_after_its_moment_within_the_tolerance():
    # Hourly-like data: the first price after 10:00:06 is at 10:05. Within the hour's tolerance,
    # the buy fills there (ask 1.01), the price it would have got; its source says when.
    h = history({"abc": [(at(5), "0.99", "1.01"), (at(65), "1.30", "1.32")]}, tolerance=timedelta(hours=1))
    result = replay([listing("abc", T0)], h, CONFIG, LATENCY, "10000")
    [trade] = result.trades
    assert (trade.entry_at, trade.entry_rate) == (T0 + LATENCY, Decimal("1.01"))
    # Beyond the tolerance there is no price: the fill is missed, the wallet untouched.
    h = history({"abc": [(at(5), "0.99", "1.01")]}, tolerance=timedelta(minutes=2))
    result = replay([listing("abc", T0)], h, CONFIG, LATENCY, "10000")
    assert result.trades == []
    [refusal] = result.refusals
    assert refusal.stage == "missed fill" and refusal.action == "buy" and "no ask for abc" in refusal.reason
    assert result.end_aud == Decimal("10000")


def test_an_event_published_long_before_its_detection_is_too_old_as_live():
    h = history({"abc": [ENTRY, (at(60), "1.30", "1.32")]})
    late = listing("abc", T0, published=T0 - timedelta(hours=1))
    result = replay([late], h, CONFIG, LATENCY, "10000")
    assert result.trades == [] and result.refusals[0].stage == "strategy"
    assert result.refusals[0].reason.startswith("event too old")


def random_history(rng: random.Random, coins: list[str], start: datetime, hours: int) -> ArrayHistory:
    """Random walks observed at irregular times: minute bursts and hour-long gaps."""
    tracks = {}
    for coin in coins:
        t, times, prices = start, [], []
        price = rng.uniform(0.5, 50)
        while t < start + timedelta(hours=hours):
            times.append(to_ns(t))
            prices.append(price)
            price *= np.exp(rng.gauss(0, 0.03))
            t += timedelta(minutes=rng.choice([1, 1, 1, 2, 7, 60]), seconds=rng.randint(0, 59))
        tracks[coin] = [Track("random", timedelta(minutes=2), np.array(times, dtype="int64"),
                              np.array(prices), half_spread=Decimal("0.005"))]
    return ArrayHistory(tracks)


def test_no_position_ever_opens_before_detection_plus_latency():
    for seed in range(4):
        rng = random.Random(seed)
        coins = ["aaa", "bbb", "ccc"]
        h = random_history(rng, coins, T0, 72)
        events = [listing(rng.choice(coins), T0 + timedelta(minutes=rng.uniform(0, 60 * 60)), f"e{n}")
                  for n in range(12)]
        config = TradingConfig(take_profit_pct=Decimal("3"), stop_loss_pct=Decimal("3"),
                               max_holding=timedelta(hours=6), cooldown=timedelta(0))
        result = replay(events, h, config, LATENCY, "10000")
        detected = {e.external_id: e.detected_at for e in events}
        assert result.trades, f"seed {seed}: nothing traded"
        for trade in result.trades:
            assert trade.entry_at == detected[trade.event_external_id] + LATENCY
            assert trade.open or trade.exit_at > trade.entry_at
        # Money adds up: the end is the start plus every round trip's P&L, to the cent.
        assert result.end_aud == result.start_aud + sum(t.pnl_aud for t in result.trades)
        entries = [t.entry_at for t in result.trades]
        assert entries == sorted(entries)


def test_the_baseline_is_deterministic_for_a_seed():
    rng = random.Random(9)
    h = random_history(rng, ["aaa", "bbb"], T0, 96)
    events = [listing("aaa", at(10), "1"), listing("bbb", at(50), "2"), listing("aaa", at(600), "3")]
    end = T0 + timedelta(hours=96)
    first = baseline_events(events, h, CONFIG, LATENCY, 5, T0, end)
    assert first == baseline_events(events, h, CONFIG, LATENCY, 5, T0, end)
    assert first != baseline_events(events, h, CONFIG, LATENCY, 6, T0, end)
    assert sorted(e.currencies[0] for e in first) == ["AAA", "AAA", "BBB"]
    assert all(e.source == "baseline" for e in first)
    one = baseline(events, h, CONFIG, LATENCY, "10000", 5, start=T0, end=end)
    two = baseline(events, h, CONFIG, LATENCY, "10000", 5, start=T0, end=end)
    assert one.trades == two.trades and one.end_aud == two.end_aud and one.kind == "baseline"
    # Each entry is at an observation of the history (the drawn moment moved to its next price).
    for trade in one.trades:
        times, _ = h.bids(trade.coin)
        assert to_ns(trade.entry_at) in set(times.tolist())


def test_variants_are_the_cartesian_product_named_by_their_settings():
    found = research.variants(CONFIG, trade_aud=[50, 100.5], take_profit_pct=[], stop_loss_pct=[5, 10],
                              max_holding_hours=[24])
    assert [research.variant_name(v) for v in found] == [
        "aud=50 tp=20 sl=5 hold=24h", "aud=50 tp=20 sl=10 hold=24h",
        "aud=100.5 tp=20 sl=5 hold=24h", "aud=100.5 tp=20 sl=10 hold=24h"]
    assert found[0].trade_aud == Decimal("50.0") and found[0].max_holding == timedelta(hours=24)
    assert research.variant_name(CONFIG) == "aud=100 tp=20 sl=10 hold=168h"


# --- the ledger side ---------------------------------------------------------------------------


def add_ledger(engine: sa.Engine, with_snapshots: bool = False) -> None:
    """Two listings (abc at 10:00, xyz at 11:00) and a trade a minute for each coin: abc climbs
    1 % a minute for 30 minutes (take profit), xyz falls."""
    now = datetime.now(timezone.utc)
    trades = []
    for coin, start, step in (("abc", 0, 1.01), ("xyz", 60, 0.99)):
        for m in range(0, 240):
            price = 1.0 * step ** min(m, 30)
            trades.append({"coin": coin, "market": "aud", "side": "buy", "amount": 1.0, "rate": price, "total": price,
                           "sold_at": at(start + m) + timedelta(seconds=20), "collected_at": now})
    events = [{"source": "coinspot_announcements", "external_id": f"a-{coin}", "event_type": "listing",
               "title": f"{coin.upper()} listed", "description": None, "currencies": [coin.upper()],
               "impact_score": 7, "published_at": at(start), "detected_at": at(start), "url": None,
               "collected_at": now} for coin, start in (("abc", 0), ("xyz", 60))]
    with engine.begin() as conn:
        conn.execute(sa.insert(Trade.__table__), trades)
        conn.execute(sa.insert(CatalystEvent.__table__), events)
        if with_snapshots:
            conn.execute(sa.insert(PriceSnapshot.__table__), [
                {"coin": "abc", "market": "aud", "bid": 0.99, "ask": 1.01 + 0.01 * n, "last": 1.0,
                 "observed_at": at(-100 + n), "collected_at": now} for n in range(3)])


def test_the_price_history_takes_the_spread_from_snapshots_or_config_or_one_percent(engine):
    add_ledger(engine, with_snapshots=True)
    book = PriceBook(engine, at(-120), at(400))
    h, coins = research.price_history(book, ["abc", "xyz"], None)
    by_coin = {c.coin: c for c in coins}
    # abc's snapshots: spreads (1.01 - 0.99) / 1.00 = 2 %, 3.0 %, 3.98...: the median is 2.9850... %
    assert abs(float(by_coin["abc"].spread_pct) - 0.03 / 1.005 * 100) < 1e-9
    assert by_coin["xyz"].spread_pct == Decimal("1") and by_coin["xyz"].spread_from.startswith("default")
    quote = h.quote_at("xyz", at(60))  # the trade at 11:00:20, price 1.0: 1 % spread around it
    assert (quote.bid, quote.ask, quote.at) == (Decimal("0.9950"), Decimal("1.0050"), at(60) + timedelta(seconds=20))
    snapshot = h.quote_at("abc", at(-100))  # a snapshot: its own bid and ask
    assert (snapshot.bid, snapshot.ask) == (Decimal("0.99"), Decimal("1.01"))
    h, coins = research.price_history(book, ["xyz"], Decimal("0.5"))
    assert h.quote_at("xyz", at(60)).bid == Decimal("0.99750") and coins[0].spread_from == "run config spread_pct"


def resources(database_url: str) -> dict:
    return {"ledger_db": LedgerDatabase(url=database_url, auto_migrate=False), "trading": TradingResource()}


def run_config(**values) -> dict:
    return {"ops": {"research_backtest": {"config": values}}}


def test_the_asset_stores_each_variant_and_replaces_them_on_a_rerun(database_url):
    engine = get_engine(database_url)
    add_ledger(engine)
    sweep = run_config(take_profit_pct=[10, 20], max_holding_hours=[2], baseline_seed=3)
    result = materialize([research_assets.research_backtest], resources=resources(database_url), run_config=sweep)
    assert result.success
    metadata = result.asset_materializations_for_node("research_backtest")[0].metadata
    assert metadata["dagster/row_count"].value == 4 and metadata["dagster/table_name"].value == "research_backtests"
    assert "| aud=100 tp=10 sl=10 hold=2h | strategy | 2 |" in metadata["comparison"].value
    assert "data:image/png;base64," in metadata["equity_curves"].value
    assert metadata["latency"].value == "6.00 s" and metadata["latency_from"].value.startswith("default")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Backtest.variant, Backtest.kind, Backtest.trades, Backtest.pnl_aud)
                            .order_by(Backtest.variant, Backtest.kind)).all()
        trades = conn.execute(sa.select(BacktestTrade).where(BacktestTrade.kind == "strategy",
                                                             BacktestTrade.variant == "aud=100 tp=10 sl=10 hold=2h")
                              .order_by(BacktestTrade.entry_at)).all()
        stored = conn.execute(sa.select(sa.func.count()).select_from(BacktestTrade)).scalar_one()
    assert [(r.variant, r.kind) for r in rows] == [
        ("aud=100 tp=10 sl=10 hold=2h", "baseline"), ("aud=100 tp=10 sl=10 hold=2h", "strategy"),
        ("aud=100 tp=20 sl=10 hold=2h", "baseline"), ("aud=100 tp=20 sl=10 hold=2h", "strategy")]
    # abc rises to a take profit; xyz falls to its stop loss.
    assert [t.coin for t in trades] == ["abc", "xyz"]
    assert trades[0].exit_reason.startswith("take profit") and trades[0].pnl_aud > 0
    assert trades[1].exit_reason.startswith("stop loss") and trades[1].pnl_aud < 0
    assert trades[0].entry_at == at(0) + timedelta(seconds=6)
    # Orders placed for events now give the measured latency; a re-run replaces its rows.
    with engine.begin() as conn:
        conn.execute(sa.insert(orders).values(
            idempotency_key="k", mode="paper", coin="abc", side="buy", state="filled", aud_total=Decimal("100"),
            event_source="coinspot_announcements", event_external_id="a-abc", requested_at=at(0) + timedelta(seconds=9)))
    again = materialize([research_assets.research_backtest], resources=resources(database_url), run_config=sweep)
    assert again.asset_materializations_for_node("research_backtest")[0].metadata["latency"].value == "9.00 s"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Backtest)).scalar_one() == 4
        assert conn.execute(sa.select(sa.func.count()).select_from(BacktestTrade)).scalar_one() == stored
        entry = conn.execute(sa.select(sa.func.min(BacktestTrade.entry_at)).where(
            BacktestTrade.kind == "strategy")).scalar_one()
    assert entry == at(0) + timedelta(seconds=9)


def test_the_asset_succeeds_with_nothing_to_replay(database_url):
    result = materialize([research_assets.research_backtest], resources=resources(database_url))
    assert result.success
    metadata = result.asset_materializations_for_node("research_backtest")[0].metadata
    assert metadata["note"].value == "no catalyst events stored"
    assert "| aud=100 tp=20 sl=10 hold=168h | strategy | 0 |" in metadata["comparison"].value
    with get_engine(database_url).connect() as conn:
        assert conn.execute(sa.select(Backtest.trades)).scalars().all() == [0, 0]


def test_replays_in_worker_processes_give_the_same_results(tmp_path):
    from omc_pipelines.db import upgrade

    engine = get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade(engine)
    add_ledger(engine)
    alone = research.run_backtest(engine, CONFIG, take_profit_pct=[10, 20], workers=1)
    side_by_side = research.run_backtest(engine, CONFIG, take_profit_pct=[10, 20], workers=2)
    for a, b in zip(alone.variants, side_by_side.variants, strict=True):
        assert a.name == b.name
        assert (a.strategy.trades, a.strategy.end_aud) == (b.strategy.trades, b.strategy.end_aud)
        assert (a.baseline.trades, a.baseline.equity) == (b.baseline.trades, b.baseline.equity)
    assert alone.variants[0].strategy.trades
