"""The Exchange ledger's jobs, the schedules that run them, and how old its tables may get."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    FreshnessPolicy,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from omc_pipelines.freshness import minutely
from omc_pipelines.ledgers.exchange import assets as exchange
from omc_pipelines.schedules import INGESTION_RETRIES, every_minute

exchange_market_data_job = define_asset_job(
    "exchange_market_data",
    selection=AssetSelection.assets(exchange.coinspot_price_snapshots, exchange.coinspot_trades),
    description="CoinSpot price snapshots and recent trades.",
)

exchange_candles_job = define_asset_job(
    "exchange_hourly_candles",
    tags=INGESTION_RETRIES,
    selection=AssetSelection.assets(exchange.coinspot_hourly_candles),
    description="Hourly OHLCV candles, partitioned by week (Mondays, UTC); backfill a range of weeks as one run.",
)


def _observation(tick: datetime) -> RunRequest:
    # The tick names the run and the observation: a tick run twice writes one snapshot.
    return RunRequest(run_key=tick.isoformat(), tags={exchange.OBSERVED_AT_TAG: tick.isoformat()})


exchange_every_minute = every_minute("exchange_every_minute", exchange_market_data_job,
                                     "Every minute: a price snapshot and the recent trades.", _observation)

@schedule(
    job=exchange_candles_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Five past each hour (late trades have arrived by then): the week of the hour just ended, "
    "rebuilt up to that hour from its stored trades and prices.",
)
def exchange_hourly_candles_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    ended = context.scheduled_execution_time.astimezone(timezone.utc).replace(minute=0) - timedelta(hours=1)
    # One run per hour (its run key), for the week partition (its Monday) that hour belongs to: a
    # tick caught up after an outage rebuilds every hour of its week that the outage missed.
    monday = ended.date() - timedelta(days=ended.weekday())
    return RunRequest(run_key=ended.strftime("%Y-%m-%d-%H:00"), partition_key=monday.isoformat())

ALL_JOBS = [exchange_market_data_job, exchange_candles_job]
ALL_SCHEDULES = [exchange_every_minute, exchange_hourly_candles_schedule]


def freshness(freshness_minutes: int) -> dict[AssetKey, FreshnessPolicy]:
    """Prices and trades run every minute; candles at :05 for the hour just ended, so by :30
    the last hour must be there. None for ``exchange_imported_candles``: files imported when a
    person runs it, on no schedule, so its age means nothing."""
    hourly_candles = FreshnessPolicy.cron(deadline_cron="30 * * * *", lower_bound_delta=timedelta(minutes=30))
    return {
        exchange.coinspot_price_snapshots.key: minutely(freshness_minutes),
        exchange.coinspot_trades.key: minutely(freshness_minutes),
        exchange.coinspot_hourly_candles.key: hourly_candles,
    }
