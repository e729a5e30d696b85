"""The catalyst event study: a planted effect is found and an absent one is not; the market's
move is removed; prices are read at the resolution a horizon needs, never across a gap and
never across markets; a re-run changes nothing; the asset shows the summary and the chart."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa
from dagster import materialize

from omc_pipelines.db import get_engine, upgrade
from omc_pipelines.db.models import Candle, CatalystEvent, EventReturn, EventStudySummary, ImportedCandle
from omc_pipelines.ledgers.research.assets import research_event_study
from omc_pipelines.research.event_study import StudyError, bootstrap_interval, run_study, store
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)
ALTS = ["eth", "sol", "ada", "dot", "link"]
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


@pytest.fixture
def sqlite_engine(tmp_path) -> sa.Engine:
    engine = get_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def event(external_id: str, detected_at: datetime, currencies=("FOO",), event_type="listing",
          source="coinspot_announcements", published_at: datetime | None = None, impact=8) -> dict:
    return {"source": source, "external_id": external_id, "event_type": event_type, "title": f"event {external_id}",
            "description": None, "currencies": list(currencies), "impact_score": impact,
            "published_at": published_at or detected_at, "detected_at": detected_at, "url": None,
            "collected_at": detected_at}


def minutes(coin: str, start: datetime, prices, market="aud", source="test", step=timedelta(minutes=1)) -> list[dict]:
    """1m imported candles, the first opening at ``start``; a None price is a missing minute."""
    return [{"source": source, "coin": coin, "market": market, "interval_seconds": 60, "open_time": start + n * step,
             "open": p, "high": p, "low": p, "close": p, "volume": 1.0, "file_name": "test.json", "imported_at": NOW}
            for n, p in enumerate(prices) if p is not None]


def hours(coin: str, start: datetime, prices, market="aud") -> list[dict]:
    return [{"coin": coin, "market": market, "hour_start": start + timedelta(hours=n), "open": p, "high": p, "low": p,
             "close": p, "volume": 1.0, "quote_volume": p, "trade_count": 1, "source": "trades", "computed_at": NOW}
            for n, p in enumerate(prices)]


def write(engine: sa.Engine, events=(), minute_rows=(), hour_rows=()) -> None:
    with engine.begin() as conn:
        for table, rows in ((CatalystEvent, events), (ImportedCandle, minute_rows), (Candle, hour_rows)):
            if rows:
                conn.execute(sa.insert(table.__table__), list(rows))


def stored(engine: sa.Engine, model) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(model.__table__).order_by(model.id)).mappings()]


def summary_of(study, horizon: str, measure: str = "return", anchor: str = "detected") -> dict:
    [row] = [s for s in study.summary if (s["horizon"], s["measure"], s["anchor"]) == (horizon, measure, anchor)]
    return row


# --- a synthetic history with a known effect --------------------------------------------------


def synthetic(engine: sa.Engine, coin_jump: float, market_jump: float, seed: int = 3, events: int = 40,
              days: int = 60) -> None:
    """``events`` listings at random times over ``days``; every coin a random walk (1m candles
    around each event for its coin and BTC, hourly candles everywhere); 10 minutes after each
    detection the event's coin jumps by ``coin_jump`` and every coin by ``market_jump``."""
    rng = np.random.default_rng(seed)
    coins = ["btc", *ALTS]
    n_minutes = (days + 2) * 24 * 60
    log = np.cumsum(rng.normal(0, 0.0005, (len(coins), n_minutes)), axis=1)
    at = np.sort(rng.choice(np.arange(60, days * 24 * 60), size=events, replace=False))
    which = rng.integers(1, len(coins), size=events)
    for c, m in zip(which, at):
        log[c, m + 10:] += np.log1p(coin_jump)
        log[:, m + 10:] += np.log1p(market_jump)
    price = 100 * np.exp(log)
    rows_events = []
    covered = np.zeros(price.shape, dtype=bool)
    for n, (c, m) in enumerate(zip(which, at)):
        detected = T0 + timedelta(minutes=int(m), seconds=int(rng.integers(0, 60)))
        published = detected - timedelta(seconds=int(rng.integers(0, 300)))
        rows_events.append(event(f"e{n}", detected, [coins[c].upper()], published_at=published))
        # Minute data of the coin and BTC from 10 min before to 90 min after: the 1h move is read
        # from minutes, the 4h and 24h ones from hourly candles.
        covered[[int(c), 0], m - 10 : m + 90] = True
    rows_minutes = [row for k, coin in enumerate(coins)
                    for row in minutes(coin, T0, np.where(covered[k], price[k], None).tolist())]
    rows_hours = [row for k, coin in enumerate(coins) for row in hours(coin, T0, price[k, ::60].tolist())]
    write(engine, rows_events, rows_minutes, rows_hours)


def test_a_planted_jump_is_found_with_an_interval_that_excludes_zero(sqlite_engine):
    synthetic(sqlite_engine, coin_jump=0.05, market_jump=0.0)
    study = run_study(sqlite_engine, watchlist=["btc", *ALTS], now=NOW)
    assert study.events == 40 and len(study.rows) == 40 * 2 * 4
    hour = summary_of(study, "1h")
    assert hour["count"] == 40
    assert hour["ci_low"] < 0.05 < hour["ci_high"]
    assert hour["ci_low"] > 0.04  # far from zero
    assert hour["hit_rate"] == 1.0
    # The jump comes 10 minutes after detection: five minutes see none of it.
    five = summary_of(study, "5m")
    assert five["ci_low"] < 0 < five["ci_high"]
    # Published before detection: the published anchor sees the jump too.
    assert summary_of(study, "1h", anchor="published")["ci_low"] > 0.04
    # The 1h move is read from minute candles, the 4h and 24h ones from hourly candles.
    resolutions = {(r["horizon"], r["resolution"]) for r in study.rows if r["anchor"] == "detected"}
    assert resolutions == {("5m", "minute"), ("1h", "minute"), ("4h", "hour"), ("24h", "hour")}
    # Abnormal against BTC, which did not move: the same effect.
    assert summary_of(study, "1h", "abnormal")["ci_low"] > 0.04


def test_without_an_effect_the_interval_covers_zero(sqlite_engine):
    synthetic(sqlite_engine, coin_jump=0.0, market_jump=0.0)
    study = run_study(sqlite_engine, now=NOW)
    for horizon in ("5m", "1h", "4h", "24h"):
        s = summary_of(study, horizon)
        assert s["count"] == 40
        assert s["ci_low"] < 0 < s["ci_high"], horizon


def test_the_abnormal_return_removes_a_market_wide_move(sqlite_engine):
    synthetic(sqlite_engine, coin_jump=0.0, market_jump=0.03)
    study = run_study(sqlite_engine, now=NOW)
    raw, abnormal = summary_of(study, "1h"), summary_of(study, "1h", "abnormal")
    assert raw["ci_low"] > 0.02  # every coin rose 3 %, the event's too ...
    assert abnormal["count"] == 40 and abnormal["ci_low"] < 0 < abnormal["ci_high"]  # ... and BTC with it
    row = next(r for r in study.rows if r["horizon"] == "1h")
    assert row["market"] == "btc"
    assert row["abnormal_return"] == pytest.approx(row["coin_return"] - row["market_return"])


# --- the market -------------------------------------------------------------------------------


def test_the_basket_is_the_mean_of_the_other_watched_coins_and_btc_events_use_it(sqlite_engine):
    start = T0
    write(sqlite_engine, events=[event("sol-listing", start, ["SOL"]), event("btc-buy", start, ["BTC"],
                                                                             event_type="bitcoin_purchase", source="sec")],
          minute_rows=[*minutes("sol", start, [10.0] * 5 + [11.0]), *minutes("btc", start, [100.0] * 5 + [102.0]),
                       *minutes("eth", start, [50.0] * 5 + [53.0]),
                       # pepe has no price at the end of the window: the basket is who is measurable
                       *minutes("pepe", start, [1.0, 1.0])])
    basket = run_study(sqlite_engine, market="basket", watchlist=["btc", "eth", "sol", "pepe"], now=NOW)
    sol = next(r for r in basket.rows if r["coin"] == "sol" and r["horizon"] == "5m" and r["anchor"] == "detected")
    assert sol["coin_return"] == pytest.approx(0.10)
    assert (sol["market"], sol["market_return"]) == ("basket", pytest.approx((0.02 + 0.06) / 2))  # btc and eth
    assert sol["abnormal_return"] == pytest.approx(0.10 - 0.04)
    btc = next(r for r in basket.rows if r["coin"] == "btc" and r["horizon"] == "5m")
    assert (btc["market"], btc["market_return"]) == ("basket", pytest.approx((0.06 + 0.10) / 2))  # eth and sol

    by_btc = run_study(sqlite_engine, market="btc", watchlist=["btc", "eth", "sol"], now=NOW)
    sol = next(r for r in by_btc.rows if r["coin"] == "sol" and r["horizon"] == "5m")
    assert (sol["market"], sol["market_return"]) == ("btc", pytest.approx(0.02))
    # BTC against itself would always be zero: a BTC event is measured against the basket, and says so.
    btc = next(r for r in by_btc.rows if r["coin"] == "btc" and r["horizon"] == "5m")
    assert (btc["market"], btc["market_return"]) == ("basket", pytest.approx((0.06 + 0.10) / 2))
    # The 1h horizon has no price at all: not measurable, and no market figure is made up.
    late = next(r for r in by_btc.rows if r["coin"] == "sol" and r["horizon"] == "1h")
    assert not late["measurable"] and late["market_return"] is None and late["abnormal_return"] is None


def test_a_coin_measured_without_a_market_has_no_abnormal_return_and_says_why(sqlite_engine):
    write(sqlite_engine, events=[event("foo", T0, ["FOO"])], minute_rows=minutes("foo", T0, [1.0] * 5 + [1.5]))
    study = run_study(sqlite_engine, now=NOW)
    row = next(r for r in study.rows if r["horizon"] == "5m" and r["anchor"] == "detected")
    assert row["measurable"] and row["coin_return"] == pytest.approx(0.5)
    assert row["abnormal_return"] is None and row["market_return"] is None
    assert row["reason"].startswith("abnormal return not measured: btc: no price")
    assert summary_of(study, "5m", "abnormal")["count"] == 0
    assert summary_of(study, "5m", "abnormal")["mean"] is None


# --- resolution, gaps, markets ----------------------------------------------------------------


def test_hourly_data_serves_hours_only(sqlite_engine):
    at = T0 + timedelta(minutes=20)
    write(sqlite_engine, events=[event("foo", at, ["FOO"])],
          hour_rows=[*hours("foo", T0, [1.0, 1.1, 1.2, 1.3, 1.4, 1.5] + [2.0] * 20),
                     *hours("btc", T0, [100.0] * 30)])
    study = run_study(sqlite_engine, now=NOW)
    rows = {r["horizon"]: r for r in study.rows if r["anchor"] == "detected"}
    assert not rows["5m"]["measurable"]
    assert rows["5m"]["reason"] == "no prices at the resolution a 5 min horizon needs (have: hour)"
    for horizon in ("1h", "4h", "24h"):
        assert rows[horizon]["measurable"] and rows[horizon]["resolution"] == "hour"
    # From 00:20: the first candle at or after is 01:00's (1.1), an hour later 02:00's (1.2).
    assert rows["1h"]["start_at"] == T0 + timedelta(hours=1) and rows["1h"]["price_start"] == 1.1
    assert rows["1h"]["coin_return"] == pytest.approx(1.2 / 1.1 - 1)
    assert rows["4h"]["price_end"] == 1.5
    assert rows["24h"]["abnormal_return"] == pytest.approx(2.0 / 1.1 - 1)
    assert [r for r, _ in study.reasons()] == ["no prices at the resolution a 5 min horizon needs"]


def test_a_gap_is_not_measurable_and_never_interpolated(sqlite_engine):
    # Minute prices for 70 minutes with a hole from minute 55 to 65 (the 1h end falls in it).
    prices = [1.0 + n / 100 if not 55 <= n <= 65 else None for n in range(70)]
    write(sqlite_engine, events=[event("foo", T0, ["FOO"])], minute_rows=minutes("foo", T0, prices))
    study = run_study(sqlite_engine, now=NOW)
    row = next(r for r in study.rows if r["horizon"] == "1h" and r["anchor"] == "detected")
    assert not row["measurable"]
    assert row["reason"] == "no price within tolerance after the end (2025-03-01 01:00 UTC)"
    assert row["coin_return"] is None and row["price_end"] is None
    # Within the 2-minute tolerance the next observation is used as it was, not a blend.
    write(sqlite_engine, minute_rows=minutes("foo", T0 + timedelta(minutes=61), [7.0]))
    again = run_study(sqlite_engine, now=NOW)
    row = next(r for r in again.rows if r["horizon"] == "1h" and r["anchor"] == "detected")
    assert row["measurable"] and row["price_end"] == 7.0 and row["end_at"] == T0 + timedelta(minutes=61)


def test_aud_and_usdt_prices_are_never_mixed(sqlite_engine):
    # AUD prices at the start only, USDT prices at the end only: no one series covers the window.
    write(sqlite_engine, events=[event("foo", T0, ["FOO"]), event("bar", T0, ["BAR"])],
          minute_rows=[*minutes("foo", T0, [1.0, 1.0], market="aud"),
                       *minutes("foo", T0 + timedelta(minutes=5), [0.7, 0.7], market="usdt", source="binance"),
                       # bar has both markets over the whole window, at different prices
                       *minutes("bar", T0, [2.0] * 5 + [2.2], market="aud"),
                       *minutes("bar", T0, [1.3] * 5 + [1.3], market="usdt", source="binance")])
    study = run_study(sqlite_engine, now=NOW)
    foo = next(r for r in study.rows if r["coin"] == "foo" and r["horizon"] == "5m" and r["anchor"] == "detected")
    assert not foo["measurable"] and foo["reason"].startswith("no price within tolerance after the end")
    bar = next(r for r in study.rows if r["coin"] == "bar" and r["horizon"] == "5m" and r["anchor"] == "detected")
    assert bar["measurable"] and bar["price_source"] == "imported test aud 1m"  # AUD first, both ends from it
    assert (bar["price_start"], bar["price_end"]) == (2.0, 2.2)


# --- the rules, re-runs, empty ledgers ---------------------------------------------------------


def test_events_failing_the_catalyst_rules_or_naming_no_coin_are_not_studied(sqlite_engine):
    write(sqlite_engine, events=[
        event("good", T0, ["FOO"]),
        event("future", T0, ["FOO"], published_at=T0 + timedelta(hours=1)),  # published after it was detected
        event("lower", T0, ["foo!"]),  # not a coin symbol
        event("filing", T0, [], event_type="filing", source="sec"),  # about no coin
    ], minute_rows=minutes("foo", T0, [1.0] * 6))
    study = run_study(sqlite_engine, now=NOW)
    assert {r["event_external_id"] for r in study.rows} == {"good"}
    assert study.events == 1
    assert len(study.skipped_rules) == 2 and any("future" in s and "after it was detected" in s
                                                 for s in study.skipped_rules)
    assert study.skipped_no_coin == ["sec filing: names no coin (filing)"]


def test_a_rerun_gives_the_same_rows(sqlite_engine):
    synthetic(sqlite_engine, coin_jump=0.05, market_jump=0.0, events=10, days=10)
    run_study(sqlite_engine, now=NOW)
    first = (stored(sqlite_engine, EventReturn), stored(sqlite_engine, EventStudySummary))
    run_study(sqlite_engine, now=NOW)
    second = (stored(sqlite_engine, EventReturn), stored(sqlite_engine, EventStudySummary))

    def without_ids(rows):
        return [{k: v for k, v in r.items() if k != "id"} for r in rows]

    assert len(first[0]) == 10 * 8 and len(first[1]) == 2 * 4 * 2
    assert without_ids(second[0]) == without_ids(first[0])
    assert without_ids(second[1]) == without_ids(first[1])


def test_an_empty_catalyst_ledger_empties_the_study_but_missing_prices_keep_it(sqlite_engine):
    synthetic(sqlite_engine, coin_jump=0.05, market_jump=0.0, events=5, days=5)
    run_study(sqlite_engine, now=NOW)
    kept = stored(sqlite_engine, EventReturn)
    assert len(kept) == 40
    # Events but no price at all: most likely the wrong database. The run fails; the study stays.
    with sqlite_engine.begin() as conn:
        conn.execute(sa.delete(ImportedCandle.__table__))
        conn.execute(sa.delete(Candle.__table__))
    with pytest.raises(StudyError, match="no prices at all"):
        run_study(sqlite_engine, now=NOW)
    assert stored(sqlite_engine, EventReturn) == kept
    # No events: the truth is empty.
    with sqlite_engine.begin() as conn:
        conn.execute(sa.delete(CatalystEvent.__table__))
    study = run_study(sqlite_engine, now=NOW)
    assert study.note == "no catalyst events in the ledger" and study.rows == []
    assert stored(sqlite_engine, EventReturn) == [] and stored(sqlite_engine, EventStudySummary) == []


def test_a_failed_write_leaves_the_stored_study(sqlite_engine):
    write(sqlite_engine, events=[event("foo", T0, ["FOO"])], minute_rows=minutes("foo", T0, [1.0] * 6))
    study = run_study(sqlite_engine, now=NOW)
    before = stored(sqlite_engine, EventReturn)
    broken = [{**study.summary[0], "measure": None}]  # violates NOT NULL after the deletes ran
    with pytest.raises(sa.exc.IntegrityError):
        store(sqlite_engine, study.rows, broken)
    assert stored(sqlite_engine, EventReturn) == before and len(stored(sqlite_engine, EventStudySummary)) == 16


def test_the_bootstrap_is_seeded_and_needs_two_values():
    values = np.random.default_rng(1).normal(0.01, 0.02, 300)
    a = bootstrap_interval(values, 0.95, 2000, np.random.default_rng(5))
    assert a == bootstrap_interval(values, 0.95, 2000, np.random.default_rng(5))
    assert a[0] < values.mean() < a[1]
    # Standard error 0.02 / sqrt(300): a 95 % interval about 2 x 1.96 x that wide.
    assert (a[1] - a[0]) == pytest.approx(2 * 1.96 * 0.02 / np.sqrt(300), rel=0.15)
    assert bootstrap_interval(values[:1], 0.95, 2000, np.random.default_rng(5)) is None
    assert bootstrap_interval(values[:2], 0.95, 100, np.random.default_rng(5)) is not None


# --- the asset --------------------------------------------------------------------------------


def asset_resources(url: str) -> dict:
    return {"ledger_db": LedgerDatabase(url=url, auto_migrate=False),
            "coinspot": CoinSpotResource(watchlist=["btc", "eth", "sol"])}


@pytest.mark.integration
def test_the_asset_stores_the_study_and_shows_the_summary_and_the_chart(database_url):
    engine = get_engine(database_url)
    write(engine, events=[event(f"e{n}", T0 + timedelta(hours=n), ["SOL"]) for n in range(3)],
          minute_rows=[*minutes("sol", T0, [10.0 + n % 7 for n in range(200)]),
                       *minutes("btc", T0, [100.0 + n % 3 for n in range(200)])])
    result = materialize([research_event_study], resources=asset_resources(database_url),
                         run_config={"ops": {"research_event_study": {"config": {"resamples": 200}}}})
    assert result.success
    [materialization] = result.asset_materializations_for_node("research_event_study")
    meta = materialization.metadata
    assert meta["events_studied"].value == 3
    assert meta["dagster/row_count"].value == 3 * 8 == len(stored(engine, EventReturn))
    assert meta["dagster/table_name"].value == "research_event_returns"
    assert meta["rows_measurable"].value + meta["rows_not_measurable"].value == 24
    summary = meta["summary"].value
    assert "| listing | coinspot_announcements | detected | 5m | abnormal |" in summary
    assert "e-0" not in summary and " %" in summary  # percentages, never scientific notation
    assert meta["chart"].value.startswith("![mean abnormal return per horizon and event type](data:image/png;base64,")
    assert "no prices at the resolution" not in meta["not_measurable_reasons"].value
    assert len(stored(engine, EventStudySummary)) == 2 * 4 * 2


def test_the_asset_on_an_empty_ledger_succeeds_and_on_a_ledger_without_prices_fails(sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    result = materialize([research_event_study], resources=asset_resources(url))
    assert result.success
    [materialization] = result.asset_materializations_for_node("research_event_study")
    assert materialization.metadata["dagster/row_count"].value == 0
    assert materialization.metadata["note"].value == "no catalyst events in the ledger"
    write(sqlite_engine, events=[event("foo", T0, ["FOO"])])
    failed = materialize([research_event_study], resources=asset_resources(url), raise_on_error=False)
    assert not failed.success
    [failure] = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no prices at all" in failure.event_specific_data.error.message
