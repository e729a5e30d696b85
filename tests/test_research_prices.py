"""Prices around an event as the ledger observed them: the first observation at or after a
moment within the tolerance, from one series, never interpolated, never across markets."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from omc_pipelines.db.models import Candle, ImportedCandle, PriceSnapshot, Trade
from omc_pipelines.research.prices import HOUR, MINUTE, Measured, PriceBook

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
MIN, HR = timedelta(minutes=1), timedelta(hours=1)


def trades(coin, start, prices, step=MIN, market="aud"):
    return [dict(coin=coin, market=market, side="buy", amount=1.0, rate=p, total=p, sold_at=start + n * step,
                 collected_at=start) for n, p in enumerate(prices)]


def candles(coin, start, opens, market="aud"):
    return [dict(coin=coin, market=market, hour_start=start + n * HR, open=p, high=p, low=p, close=p, volume=1.0,
                 quote_volume=p, trade_count=1, source="trades", computed_at=start) for n, p in enumerate(opens)]


def imported(coin, start, opens, seconds, market="usdt", source="freqtrade:binance"):
    return [dict(source=source, coin=coin, market=market, interval_seconds=seconds,
                 open_time=start + n * timedelta(seconds=seconds), open=p, high=p, low=p, close=p, volume=1.0,
                 file_name="f.json", imported_at=start) for n, p in enumerate(opens)]


def book(engine, **rows) -> PriceBook:
    tables = {"trades": Trade, "candles": Candle, "imported": ImportedCandle, "snapshots": PriceSnapshot}
    with engine.begin() as conn:
        for name, values in rows.items():
            conn.execute(sa.insert(tables[name].__table__), values)
    return PriceBook(engine, T0 - timedelta(days=1), T0 + timedelta(days=3))


def test_a_move_is_read_from_the_first_observations_at_or_after_each_end(engine):
    prices = book(engine, trades=trades("FOO", T0, [1.0 + n / 100 for n in range(30)]))
    moved = prices.measure("foo", T0 + timedelta(seconds=30), 5 * MIN)
    assert isinstance(moved, Measured)
    # 00:00:30 -> the trade at 00:01 (1.01); +5 min = 00:05:30 -> the trade at 00:06 (1.06).
    assert (moved.start.at, moved.start.price) == (T0 + MIN, 1.01)
    assert (moved.end.at, moved.end.price) == (T0 + 6 * MIN, 1.06)
    assert moved.start.resolution == MINUTE and moved.start.source == "exchange_trades aud"
    assert moved.change == pytest.approx(1.06 / 1.01 - 1)


def test_a_gap_longer_than_the_tolerance_is_not_measurable_never_interpolated(engine):
    # Trades at 00:00-00:04, then nothing until 00:20: the end of a 5-minute move from 00:02 falls in the gap.
    rows = trades("foo", T0, [1.0] * 5) + trades("foo", T0 + 20 * MIN, [2.0])
    reason = book(engine, trades=rows).measure("foo", T0 + 2 * MIN, 5 * MIN)
    assert reason == "no price within tolerance after the end (2026-03-02 00:07 UTC)"


def test_hourly_candles_serve_hours_but_never_minutes(engine):
    prices = book(engine, candles=candles("foo", T0, [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]))
    assert prices.measure("foo", T0 + 10 * MIN, 5 * MIN) == (
        "no prices at the resolution a 5 min horizon needs (have: hour)")
    moved = prices.measure("foo", T0 + 10 * MIN, 4 * HR)
    # 00:10 -> the candle opening at 01:00 (11); 04:10 -> the one opening at 05:00 (15).
    assert (moved.start.price, moved.end.price, moved.start.resolution) == (11.0, 15.0, HOUR)


def test_minute_data_is_preferred_and_markets_are_never_mixed(engine):
    # AUD trades for the first 10 minutes; USDT 1m candles (another price level) for the whole hour.
    prices = book(engine, trades=trades("foo", T0, [100.0] * 10),
                  imported=imported("foo", T0, [60.0 + n for n in range(60)], 60))
    series = prices.series("FOO")
    assert [s.source for s in series] == ["exchange_trades aud", "imported freqtrade:binance usdt 1m"]
    # Inside the AUD trades' span: measured on AUD.
    assert prices.measure("foo", T0, 5 * MIN).start.source == "exchange_trades aud"
    # The end past the AUD trades: both ends from the USDT series, never AUD start with a USDT end.
    moved = prices.measure("foo", T0, 30 * MIN)
    assert moved.start.source == moved.end.source == "imported freqtrade:binance usdt 1m"
    assert (moved.start.price, moved.end.price) == (60.0, 90.0)


def test_bad_prices_are_left_out_and_snapshots_keep_both_sides(engine):
    snaps = [dict(coin="foo", market="aud", bid=b, ask=a, last=l, observed_at=T0 + n * MIN, collected_at=T0)
             for n, (b, a, l) in enumerate([(0.9, 1.1, 1.0), (None, None, 0.0), (1.9, 2.1, 2.0)])]
    series = book(engine, snapshots=snaps).series("foo")
    assert len(series) == 1 and len(series[0]) == 2  # the 0.0 price is no price
    second = series[0].observation(1)
    assert (second.at, second.price, second.bid, second.ask) == (T0 + 2 * MIN, 2.0, 1.9, 2.1)


def test_a_coin_without_prices_says_so(engine):
    assert book(engine).measure("bar", T0, HR) == "no prices at the resolution a 1 h horizon needs (have: none)"
