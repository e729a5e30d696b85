"""The Exchange ledger's assets against the sandbox, on both databases."""

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from dagster import AssetKey, materialize

from omc_pipelines.db import upsert
from omc_pipelines.db.models import Candle, PriceSnapshot, Trade
from omc_pipelines.ledgers.exchange import assets as exchange, checks
from omc_pipelines.resources import CoinSpotResource
from omc_pipelines.sandbox import Fault


pytestmark = pytest.mark.integration
MARKET_DATA = [exchange.coinspot_price_snapshots, exchange.coinspot_trades]
MARKET_DATA_CHECKS = [c for c in checks.ALL if {k.asset_key for k in c.check_keys} <= {a.key for a in MARKET_DATA}]
OBSERVED = "2026-11-26T10:15:00+00:00"


def count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def rows(engine, *columns, order_by=None):
    with engine.connect() as conn:
        return conn.execute(sa.select(*columns).order_by(*(order_by or columns))).all()


def run_market_data(resources, tags=None, **kwargs):
    return materialize(MARKET_DATA + MARKET_DATA_CHECKS, resources=resources, tags=tags or {exchange.OBSERVED_AT_TAG: OBSERVED}, **kwargs)


def test_snapshots_cover_the_summary_and_the_watched_coins_it_omits(resources, engine, sandbox):
    result = run_market_data(resources)
    assert result.success
    stored = {(r.coin, r.market): r for r in rows(engine, PriceSnapshot.coin, PriceSnapshot.market, PriceSnapshot.bid,
                                                  PriceSnapshot.ask, PriceSnapshot.last, PriceSnapshot.observed_at)}
    summary = sandbox.coinspot.summary
    assert len(stored) == len(summary) + 1  # + pepe, from /latest/pepe
    assert stored[("btc", "aud")].last == float(summary["btc"]["last"])
    assert stored[("doge", "aud")].last == summary["doge"]["last"]  # sent as a number
    assert stored[("btc", "usdt")].last == float(summary["btc_usdt"]["last"])
    assert stored[("ape", "usdt")].last is None  # sent as "NaN"
    assert stored[("pepe", "aud")].last == float(sandbox.coinspot.listed["pepe"]["last"])
    assert {r.observed_at for r in stored.values()} == {datetime.fromisoformat(OBSERVED)}
    served = [r["path"] for r in sandbox.server.requests]
    assert "/pubapi/v2/latest/pepe" in served and "/pubapi/v2/latest/btc" not in served
    metadata = result.asset_materializations_for_node("coinspot_price_snapshots")[0].metadata
    assert metadata["rows"].value == len(stored) and metadata["without_price"].value == 1
    assert metadata["dagster/table_name"].value == "exchange_price_snapshots"
    assert metadata["dagster/row_count"].value == len(stored)
    assert [c.name for c in metadata["preview"].schema.columns][:2] == ["coin", "market"]


def test_trades_are_stored_once_however_often_they_are_fetched(resources, engine, sandbox):
    assert run_market_data(resources).success
    served = sum(len(sandbox.coinspot.trades[c][side]) for c in ("btc", "eth", "sol", "pepe")
                 for side in ("buyorders", "sellorders"))
    assert count(engine, Trade) == served
    first = rows(engine, Trade.coin, Trade.side, Trade.sold_at, Trade.amount, Trade.rate)

    sandbox.coinspot.add_trade("btc", side="sell", amount=0.5, rate=131000.0)
    result = run_market_data(resources)
    assert result.success
    assert count(engine, Trade) == served + 1
    assert result.asset_materializations_for_node("coinspot_trades")[0].metadata["new"].value == 1
    assert set(first) < set(rows(engine, Trade.coin, Trade.side, Trade.sold_at, Trade.amount, Trade.rate))


def test_a_rerun_of_the_same_tick_rewrites_one_observation(resources, engine, sandbox):
    assert run_market_data(resources).success
    before = count(engine, PriceSnapshot)
    sandbox.coinspot.set_price("btc", last="140000.5")
    assert run_market_data(resources).success
    assert count(engine, PriceSnapshot) == before
    with engine.connect() as conn:
        last = conn.execute(sa.select(PriceSnapshot.last).where(PriceSnapshot.coin == "btc", PriceSnapshot.market == "aud")).scalar_one()
    assert last == 140000.5
    assert run_market_data(resources, tags={exchange.OBSERVED_AT_TAG: "2026-11-26T10:16:00+00:00"}).success
    assert count(engine, PriceSnapshot) == 2 * before


def test_an_unknown_watched_coin_is_skipped_and_named(resources, engine, sandbox):
    resources = {**resources, "coinspot": CoinSpotResource(base_url=sandbox.url, watchlist=["btc", "nosuchcoin"])}
    result = run_market_data(resources)
    assert result.success
    for node in ("coinspot_price_snapshots", "coinspot_trades"):
        failed = result.asset_materializations_for_node(node)[0].metadata["failed"].value
        assert list(failed) == ["nosuchcoin"] and "Coin not found" in failed["nosuchcoin"]


def stored_trade_coins(engine) -> set[str]:
    return {r.coin for r in rows(engine, Trade.coin)}


@pytest.mark.parametrize("fault", ["500", "stall", "malformed", "truncated", "error_in_200"])
def test_one_failing_coin_skips_that_coin_and_keeps_the_others(resources, engine, sandbox, fault):
    """CoinSpot serves only recent trades: a coin that fails must not cost the others theirs."""
    if fault == "error_in_200":
        sandbox.coinspot.error_in_200.add("sol")  # CoinSpot's "Coin not found" with HTTP 200
    else:
        sandbox.inject(Fault("/pubapi/v2/orders/completed/sol", fault, times=0, seconds=5))
    quick = {**resources, "coinspot": CoinSpotResource(base_url=sandbox.url, watchlist=["btc", "eth", "sol", "pepe"],
                                                         timeout=1.0, retries=1, backoff=0.01)}
    result = materialize([exchange.coinspot_trades], resources=quick)
    assert result.success
    assert stored_trade_coins(engine) == {"btc", "eth", "pepe"}
    failed = result.asset_materializations_for_node("coinspot_trades")[0].metadata["failed"].value
    assert list(failed) == ["sol"] and "orders/completed/sol" in failed["sol"]


def test_only_when_every_coin_fails_does_the_run_fail_and_it_writes_nothing(resources, engine, sandbox):
    sandbox.inject(Fault("/pubapi/v2/orders/completed", "503", times=0))
    with pytest.raises(exchange.AllCoinsFailed, match=r"no trades for any coin: btc: .*HTTP 503.*; pepe: "):
        materialize([exchange.coinspot_trades], resources=resources)
    assert count(engine, Trade) == 0
    sandbox.server.clear_faults()
    assert materialize([exchange.coinspot_trades], resources=resources).success
    assert stored_trade_coins(engine) == {"btc", "eth", "sol", "pepe"}


def test_a_bad_trade_is_rejected_with_its_reason_and_never_blocks_later_runs(resources, engine, sandbox):
    """An amount of zero, once stored, failed the blocking check of every later run."""
    sandbox.coinspot.add_trade("btc", side="buy", amount=0.0, rate=130000.0)
    sandbox.coinspot.add_trade("eth", side="sell", amount=1.5, rate=0.0)
    first = run_market_data(resources)
    assert first.success and all(e.passed for e in first.get_asset_check_evaluations())
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(sa.or_(Trade.amount <= 0, Trade.rate <= 0))).scalar_one() == 0
    rejected = first.asset_materializations_for_node("coinspot_trades")[0].metadata["rejected"].value
    assert len(rejected) == 2 and any("btc/aud buy" in r and "amount=0.0" in r for r in rejected)
    assert any("eth/aud sell" in r and "rate=0.0" in r for r in rejected)
    # A run after it is judged on what it wrote.
    sandbox.coinspot.add_trade("btc", side="sell", amount=0.25, rate=131000.0)
    second = run_market_data(resources, tags={exchange.OBSERVED_AT_TAG: "2026-11-26T10:16:00+00:00"})
    assert second.success and all(e.passed for e in second.get_asset_check_evaluations())


def test_the_trade_check_judges_the_rows_of_its_run_not_an_old_bad_row(resources, engine, sandbox):
    """A bad row stored before the fix (or by hand) must not fail every later run."""
    old = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        upsert(conn, Trade.__table__, [dict(coin="btc", market="aud", side="buy", amount=-1.0, rate=1.0, total=-1.0,
                                            sold_at=old, collected_at=old)], exchange.TRADE_KEY)
    result = run_market_data(resources)
    assert result.success
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "trades_positive")
    assert evaluation.passed and evaluation.metadata["written"].value > 0


def test_a_bad_price_is_rejected_and_the_other_prices_stored(resources, engine, sandbox):
    sandbox.coinspot.set_price("btc", last="0", bid="-1")
    result = run_market_data(resources)
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    coins = {(r.coin, r.market) for r in rows(engine, PriceSnapshot.coin, PriceSnapshot.market)}
    assert ("btc", "aud") not in coins and ("eth", "aud") in coins
    rejected = result.asset_materializations_for_node("coinspot_price_snapshots")[0].metadata["rejected"].value
    assert rejected == ["btc/aud: non-positive price (bid=-1.0, last=0.0)"]


def test_when_the_summary_is_down_the_watched_coins_are_asked_one_by_one(resources, engine, sandbox):
    sandbox.inject(Fault("/pubapi/v2/latest", "503", times=0))  # the summary and every coin
    with pytest.raises(exchange.AllCoinsFailed, match="no price for any coin"):
        materialize([exchange.coinspot_price_snapshots], resources=resources, tags={exchange.OBSERVED_AT_TAG: OBSERVED})
    assert count(engine, PriceSnapshot) == 0
    sandbox.server.clear_faults()
    # Only the summary down: each watched coin from /latest/{coin}.
    sandbox.inject(Fault("/pubapi/v2/latest", "503", times=4))
    result = materialize([exchange.coinspot_price_snapshots], resources=resources, tags={exchange.OBSERVED_AT_TAG: OBSERVED})
    assert result.success
    assert {r.coin for r in rows(engine, PriceSnapshot.coin)} == {"btc", "eth", "sol", "pepe"}
    assert "/latest" in result.asset_materializations_for_node("coinspot_price_snapshots")[0].metadata["failed"].value


def test_transient_faults_inside_the_retry_budget_do_not_fail_the_run(resources, engine, sandbox):
    sandbox.inject(Fault("/pubapi/v2/latest", "429", times=2, retry_after=0))
    sandbox.inject(Fault("/pubapi/v2/latest/pepe", "500", times=1))
    assert materialize([exchange.coinspot_price_snapshots], resources=resources, tags={exchange.OBSERVED_AT_TAG: OBSERVED}).success
    assert count(engine, PriceSnapshot) == len(sandbox.coinspot.summary) + 1


def monday(when: datetime) -> str:
    """The candles' partition key of the week that holds ``when``."""
    return f"{when.date() - timedelta(days=when.weekday())}"


def materialize_candles(resources, first: datetime, last: datetime, instance=None):
    """One run over the week partitions from ``first``'s week to ``last``'s."""
    return materialize(
        [exchange.coinspot_hourly_candles, checks.candles_consistent],
        resources=resources, instance=instance,
        tags={"dagster/asset_partition_range_start": monday(first), "dagster/asset_partition_range_end": monday(last)},
    )


def test_candles_match_the_trades_and_a_backfill_twice_changes_nothing(resources, engine, sandbox, instance):
    assert run_market_data(resources).success
    now = datetime.now(timezone.utc)
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=8)
    result = materialize_candles(resources, first, now, instance)
    assert result.success
    # One run materialized every week partition of the range (one, or two across a Monday).
    materializations = result.asset_materializations_for_node("coinspot_hourly_candles")
    assert sorted(m.partition for m in materializations) == sorted({monday(first), monday(now)})
    candles = rows(engine, Candle.coin, Candle.market, Candle.hour_start, Candle.open, Candle.high, Candle.low,
                   Candle.close, Candle.volume, Candle.trade_count, Candle.source)
    assert candles
    # The hour under way has no candle yet, though the sandbox served trades in it.
    assert max(c.hour_start for c in candles) < now.replace(minute=0, second=0, microsecond=0)

    # Recompute one trade-built candle by hand from what the sandbox served.
    btc = sorted(
        (datetime.fromisoformat(o["solddate"].replace("Z", "+00:00")), o["rate"], o["amount"])
        for side in ("buyorders", "sellorders") for o in sandbox.coinspot.trades["btc"][side]
    )
    hour = max(t for t, _, _ in btc if t < first + timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
    in_hour = [(t, r, a) for t, r, a in btc if hour <= t < hour + timedelta(hours=1)]
    expected = ("btc", "aud", hour, in_hour[0][1], max(r for _, r, _ in in_hour), min(r for _, r, _ in in_hour),
                in_hour[-1][1], pytest.approx(sum(a for _, _, a in in_hour)), len(in_hour), "trades")
    assert [c for c in candles if c.coin == "btc" and c.hour_start == hour] == [expected]

    assert materialize_candles(resources, first, now, instance).success
    assert rows(engine, Candle.coin, Candle.market, Candle.hour_start, Candle.open, Candle.high, Candle.low,
                Candle.close, Candle.volume, Candle.trade_count, Candle.source) == candles


def test_each_week_lists_the_status_of_its_hours(resources, engine):
    t0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)  # a Sunday: its week began on 23 February
    trades = [dict(coin="eth", market="aud", side="buy", amount=1.0, rate=4000.0, total=4000.0,
                   sold_at=t0 + timedelta(days=d, minutes=5), collected_at=t0) for d in (0, 1)]
    snapshot = dict(coin="btc", market="aud", bid=None, ask=None, last=100.0, observed_at=t0 + timedelta(hours=3),
                    collected_at=t0)
    with engine.begin() as conn:
        upsert(conn, Trade.__table__, trades, exchange.TRADE_KEY)
        upsert(conn, PriceSnapshot.__table__, [snapshot], exchange.SNAPSHOT_KEY)
    result = materialize_candles(resources, t0, t0 + timedelta(days=1))
    by_week = {m.partition: m.metadata for m in result.asset_materializations_for_node("coinspot_hourly_candles")}
    # Per week, not the run's total: 2 candles on Sunday the 1st (a trade at 10:00, a price at 13:00),
    # 1 on Monday the 2nd, the next week.
    assert {week: m["dagster/row_count"].value for week, m in by_week.items()} == {"2026-02-23": 2, "2026-03-02": 1}
    hours = {r.data["hour"]: r.data for r in by_week["2026-02-23"]["hours"].value.records}
    assert len(hours) == 7 * 24
    assert (hours["Sun 2026-03-01 10:00"]["from trades"], hours["Sun 2026-03-01 10:00"]["status"]) == ("1", "built")
    assert (hours["Sun 2026-03-01 13:00"]["from snapshots"], hours["Sun 2026-03-01 13:00"]["status"]) == ("1", "built")
    assert hours["Sun 2026-03-01 11:00"]["status"] == "no trades or prices"


def test_rematerializing_a_week_replaces_exactly_its_hours(resources, engine):
    t0 = datetime(2026, 3, 1, 22, tzinfo=timezone.utc)  # Sunday night: the week turns at midnight
    trades = [dict(coin="eth", market="aud", side="buy", amount=1.0, rate=4000.0 + i, total=4000.0 + i,
                   sold_at=t0 + timedelta(minutes=20 * i), collected_at=t0) for i in range(9)]  # 22:00 .. 00:40
    with engine.begin() as conn:
        upsert(conn, Trade.__table__, trades, exchange.TRADE_KEY)
    assert materialize_candles(resources, t0, t0 + timedelta(days=1)).success
    before = {c.hour_start: c for c in rows(engine, Candle.hour_start, Candle.close, Candle.trade_count, Candle.computed_at)}
    assert [c.trade_count for c in before.values()] == [3, 3, 3]

    with engine.begin() as conn:  # a late trade lands in 23:00
        upsert(conn, Trade.__table__, [{**trades[0], "rate": 9999.0, "sold_at": t0 + timedelta(minutes=119)}], exchange.TRADE_KEY)
    assert materialize([exchange.coinspot_hourly_candles], resources=resources, partition_key="2026-02-23").success
    after = {c.hour_start: c for c in rows(engine, Candle.hour_start, Candle.close, Candle.trade_count, Candle.computed_at)}
    eleven = t0 + timedelta(hours=1)
    assert (after[eleven].close, after[eleven].trade_count) == (9999.0, 4)
    assert after[t0].computed_at == after[eleven].computed_at != before[t0].computed_at  # the whole week, again
    midnight = t0 + timedelta(hours=2)
    assert after[midnight] == before[midnight]  # the next week: untouched, computed_at included


def test_hours_without_trades_get_candles_from_snapshots(resources, engine):
    t0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    snaps = [dict(coin="btc", market="usdt", bid=None, ask=None, last=last, observed_at=t0 + timedelta(minutes=m),
                  collected_at=t0) for m, last in ((1, 100.0), (20, 90.0), (40, None), (59, 95.0))]
    with engine.begin() as conn:
        upsert(conn, PriceSnapshot.__table__, snaps, exchange.SNAPSHOT_KEY)
    assert materialize_candles(resources, t0, t0).success
    assert rows(engine, Candle.coin, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume,
                Candle.trade_count, Candle.source) == [("btc", 100.0, 100.0, 90.0, 95.0, 0.0, 0, "snapshots")]


def test_inconsistent_candles_fail_the_blocking_check(resources, engine):
    t0 = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    bad = dict(coin="btc", market="aud", hour_start=t0, open=10.0, high=9.0, low=8.0, close=8.5, volume=1.0,
               quote_volume=9.0, trade_count=1, source="trades", computed_at=t0)
    with engine.begin() as conn:
        conn.execute(sa.insert(Candle), [bad])
    result = materialize([exchange.coinspot_hourly_candles, checks.candles_consistent], resources=resources,
                         partition_key="2026-03-02", raise_on_error=False)
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed and evaluation.metadata["inconsistent"].value == 1


def test_price_checks_flag_non_positive_and_crossed_prices(resources, engine, sandbox):
    sandbox.coinspot.set_price("eth", bid="5000", ask="4900")
    sandbox.coinspot.set_price("sol", last="-1")
    result = run_market_data(resources, raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()
                   if e.asset_key == AssetKey("coinspot_price_snapshots")}
    # The negative price never reached the table; the check still guards what did.
    assert evaluations["prices_positive"].passed
    assert result.asset_materializations_for_node("coinspot_price_snapshots")[0].metadata["rejected"].value == [
        "sol/aud: non-positive price (last=-1.0)"]
    later = datetime.fromisoformat(OBSERVED) + timedelta(minutes=1)
    with engine.begin() as conn:  # a row some other writer stored
        upsert(conn, PriceSnapshot.__table__, [dict(coin="sol", market="aud", bid=1.0, ask=1.0, last=0.0,
                                                    observed_at=later, collected_at=later)], exchange.SNAPSHOT_KEY)
    guarded = checks.prices_positive(ledger_db=resources["ledger_db"])
    assert not guarded.passed and guarded.metadata["non_positive"].value == 1
    assert not evaluations["bid_not_above_ask"].passed
    assert evaluations["bid_not_above_ask"].metadata["crossed"].value == 1
    assert evaluations["no_duplicate_keys"].passed


def test_coins_the_trading_books_hold_are_priced_every_minute(resources, engine, sandbox):
    """A freshly listed coin is in no watchlist, yet exits and valuation need its price."""
    from decimal import Decimal

    from omc_trading.tables import lots, orders

    now = datetime.now(timezone.utc)
    sandbox.coinspot.set_price("foo", bid="1.98", ask="2.00", last="2.00")
    with engine.begin() as conn:
        order_id = conn.execute(sa.insert(orders).values(
            idempotency_key="k", mode="paper", coin="foo", side="buy", state="filled", requested_at=now,
        )).inserted_primary_key[0]
        conn.execute(sa.insert(lots).values(mode="paper", coin="foo", order_id=order_id, coin_amount=Decimal("1"),
                                            remaining=Decimal("1"), cost_aud=Decimal("2"), opened_at=now))
    assert materialize([exchange.coinspot_price_snapshots], resources=resources,
                       tags={exchange.OBSERVED_AT_TAG: OBSERVED}).success
    assert ("foo", "aud") in {(r.coin, r.market) for r in rows(engine, PriceSnapshot.coin, PriceSnapshot.market)}
