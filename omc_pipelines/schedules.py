"""Jobs and the schedules that run them."""

from __future__ import annotations

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    build_schedule_from_partitioned_job,
    define_asset_job,
    schedule,
)

from omc_pipelines.ledgers import exchange, glass, human

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


UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED]


@schedule(
    job=exchange_market_data_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every minute: a price snapshot and the recent trades.",
)
def exchange_every_minute(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    # A slow CoinSpot must not pile minutely runs up behind each other: while one is
    # queued or running, the next minutes are skipped (and say so), not queued.
    unfinished = context.instance.get_runs(
        RunsFilter(job_name=exchange_market_data_job.name, statuses=UNFINISHED), limit=1)
    if unfinished:
        return SkipReason(f"run {unfinished[0].run_id} of {exchange_market_data_job.name} has not finished yet")
    tick = context.scheduled_execution_time.isoformat()
    # The tick names the run and the observation: a tick run twice writes one snapshot.
    return RunRequest(run_key=tick, tags={exchange.OBSERVED_AT_TAG: tick})


# Five minutes past each hour, the hour just ended (late trades have arrived by then).
exchange_hourly_candles_schedule = build_schedule_from_partitioned_job(
    exchange_candles_job,
    minute_of_hour=5,
    default_status=DefaultScheduleStatus.RUNNING,
)

glass_chain_tvl_job = define_asset_job(
    "glass_chain_tvl",
    selection=AssetSelection.assets(glass.defillama_chain_tvl),
    description="Daily chain TVL; backfill any range of days as one run.",
)
glass_snapshots_job = define_asset_job(
    "glass_snapshots",
    selection=AssetSelection.assets(glass.defillama_protocols, glass.defillama_fees, glass.defillama_stablecoins),
    description="Today's protocols, fees and revenue, stablecoin supply.",
)

# DeFiLlama's data moves hourly to daily: once an hour at most. A day's TVL is
# final some time after UTC midnight; one o'clock leaves it that time.
glass_chain_tvl_schedule = build_schedule_from_partitioned_job(
    glass_chain_tvl_job, hour_of_day=1, minute_of_hour=0, default_status=DefaultScheduleStatus.RUNNING,
)
glass_hourly_snapshots = ScheduleDefinition(
    name="glass_hourly_snapshots", job=glass_snapshots_job, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING, description="Hourly: today's protocols, fees and stablecoins.",
)

human_items_job = define_asset_job(
    "human_items",
    selection=AssetSelection.assets(human.news_items, human.cryptopanic_posts, human.reddit_posts),
    description="News feeds, CryptoPanic and Reddit, scored for sentiment.",
)
human_sentiment_job = define_asset_job(
    "human_coin_sentiment",
    selection=AssetSelection.assets(human.coin_sentiment_daily),
    description="The daily per-coin sentiment aggregate.",
)
# Feeds publish every few minutes; CryptoPanic's and Reddit's limits allow far more.
human_every_15_minutes = ScheduleDefinition(
    name="human_every_15_minutes", job=human_items_job, cron_schedule="*/15 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING, description="Every 15 minutes: news, CryptoPanic, Reddit.",
)
# The day just ended, once its last items have had twenty minutes to arrive.
human_daily_sentiment_schedule = build_schedule_from_partitioned_job(
    human_sentiment_job, hour_of_day=0, minute_of_hour=20, default_status=DefaultScheduleStatus.RUNNING,
)

ALL_JOBS = [exchange_market_data_job, exchange_candles_job, glass_chain_tvl_job, glass_snapshots_job,
            human_items_job, human_sentiment_job]
ALL_SCHEDULES = [exchange_every_minute, exchange_hourly_candles_schedule, glass_chain_tvl_schedule,
                 glass_hourly_snapshots, human_every_15_minutes, human_daily_sentiment_schedule]
