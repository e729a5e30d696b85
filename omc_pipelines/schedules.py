"""Jobs and the schedules that run them."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    define_asset_job,
    schedule,
)

from omc_pipelines.ledgers import exchange

exchange_market_data_job = define_asset_job(
    "exchange_market_data",
    selection=AssetSelection.assets(exchange.coinspot_price_snapshots, exchange.coinspot_trades),
    description="CoinSpot price snapshots and recent trades.",
)

exchange_candles_job = define_asset_job(
    "exchange_hourly_candles",
    selection=AssetSelection.assets(exchange.coinspot_hourly_candles),
    description="Hourly OHLCV candles; backfill a range from the Backfills page as one run.",
)


@schedule(
    job=exchange_market_data_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every minute: a price snapshot and the recent trades.",
)
def exchange_every_minute(context: ScheduleEvaluationContext) -> RunRequest:
    tick = context.scheduled_execution_time.isoformat()
    # The tick names the run and the observation: a tick run twice writes one snapshot.
    return RunRequest(run_key=tick, tags={exchange.OBSERVED_AT_TAG: tick})


# Five minutes past each hour, the hour just ended (late trades have arrived by then).
exchange_hourly_candles_schedule = build_schedule_from_partitioned_job(
    exchange_candles_job,
    minute_of_hour=5,
    default_status=DefaultScheduleStatus.RUNNING,
)

ALL_JOBS = [exchange_market_data_job, exchange_candles_job]
ALL_SCHEDULES = [exchange_every_minute, exchange_hourly_candles_schedule]
