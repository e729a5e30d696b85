"""Jobs and the schedules that run them."""

from __future__ import annotations

from datetime import timedelta, timezone

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

from omc_pipelines.ledgers import exchange, glass, human, trading

# Whole-run retries (the daemon re-executes a failed run from its failure, after the instance's
# run_retries settings) for the hourly and daily ingestion jobs: a transient outage of a source
# should not leave an hour or a day missing until someone looks. Not for the minutely jobs: the
# next minute's run does the same work (and the trading job handles money: a run that sent an
# order gives up retries anyway, see ledgers/trading.py).
INGESTION_RETRIES = {"dagster/max_retries": "2", "dagster/retry_on_asset_or_op_failure": "true"}

exchange_market_data_job = define_asset_job(
    "exchange_market_data",
    selection=AssetSelection.assets(exchange.coinspot_price_snapshots, exchange.coinspot_trades),
    description="CoinSpot price snapshots and recent trades.",
)

exchange_candles_job = define_asset_job(
    "exchange_hourly_candles",
    tags=INGESTION_RETRIES,
    selection=AssetSelection.assets(exchange.coinspot_hourly_candles),
    description="Hourly OHLCV candles, partitioned by day; backfill a range of days from the Backfills page as one run.",
)


UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED]


def _still_running(context: ScheduleEvaluationContext, job_name: str) -> SkipReason | None:
    """A slow source must not pile minutely runs up behind each other: while one is queued or
    running, the next minutes are skipped (and say so), not queued."""
    unfinished = context.instance.get_runs(RunsFilter(job_name=job_name, statuses=UNFINISHED), limit=1)
    if not unfinished:
        return None
    run = unfinished[0]
    return SkipReason(f"skipped: run {run.run_id} of {job_name} is still {run.status.value.lower()}; "
                      "the next tick after it finishes launches again")


@schedule(
    job=exchange_market_data_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every minute: a price snapshot and the recent trades.",
)
def exchange_every_minute(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    busy = _still_running(context, exchange_market_data_job.name)
    if busy:
        return busy
    tick = context.scheduled_execution_time.isoformat()
    # The tick names the run and the observation: a tick run twice writes one snapshot.
    return RunRequest(run_key=tick, tags={exchange.OBSERVED_AT_TAG: tick})


@schedule(
    job=exchange_candles_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Five past each hour (late trades have arrived by then): the day of the hour just ended, "
    "rebuilt up to that hour from its stored trades and prices.",
)
def exchange_hourly_candles_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    ended = context.scheduled_execution_time.astimezone(timezone.utc).replace(minute=0) - timedelta(hours=1)
    # One run per hour (its run key), for the day partition that hour belongs to.
    return RunRequest(run_key=ended.strftime("%Y-%m-%d-%H:00"), partition_key=ended.strftime("%Y-%m-%d"))


glass_chain_tvl_job = define_asset_job(
    "glass_chain_tvl",
    tags=INGESTION_RETRIES,
    selection=AssetSelection.assets(glass.defillama_chain_tvl),
    description="Daily chain TVL; backfill any range of days as one run.",
)
glass_snapshots_job = define_asset_job(
    "glass_snapshots",
    tags=INGESTION_RETRIES,
    selection=AssetSelection.assets(glass.defillama_protocols, glass.defillama_fees, glass.defillama_stablecoins),
    description="Today's protocols, fees and revenue, stablecoin supply.",
)

# DeFiLlama's data moves hourly to daily: once an hour at most. A day's TVL is
# final some time after UTC midnight; one o'clock leaves it that time.
glass_chain_tvl_schedule = build_schedule_from_partitioned_job(
    glass_chain_tvl_job, description="Daily at 01:00 UTC: the chains' TVL of the day just ended.",
    hour_of_day=1, minute_of_hour=0, default_status=DefaultScheduleStatus.RUNNING,
)
glass_hourly_snapshots = ScheduleDefinition(
    name="glass_hourly_snapshots", job=glass_snapshots_job, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING, description="Hourly: today's protocols, fees and stablecoins.",
)

human_items_job = define_asset_job(
    "human_items",
    tags=INGESTION_RETRIES,
    selection=AssetSelection.assets(human.news_items, human.cryptopanic_posts, human.reddit_posts),
    description="News feeds, CryptoPanic and Reddit, scored for sentiment.",
)
human_sentiment_job = define_asset_job(
    "human_coin_sentiment",
    tags=INGESTION_RETRIES,
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
    human_sentiment_job, description="Daily at 00:20 UTC: the per-coin sentiment of the day just ended.",
    hour_of_day=0, minute_of_hour=20, default_status=DefaultScheduleStatus.RUNNING,
)

trading_job = define_asset_job(
    "trading",
    selection=AssetSelection.assets(*trading.ASSETS),
    description="The trading assets alone: reconcile orders of unknown outcome, exits (take-profit, stop-loss, "
    "max holding), positions and today's P&L. Launch it by hand with a day's partition to recompute that day.",
)


@schedule(
    job=trading_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every minute: reconciliation, exits against the newest prices, positions, today's P&L.",
)
def trading_every_minute(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    busy = _still_running(context, trading_job.name)
    if busy:
        return busy
    tick = context.scheduled_execution_time
    return RunRequest(run_key=f"trading-{tick.isoformat()}", partition_key=f"{tick:%Y-%m-%d}")


ALL_JOBS = [exchange_market_data_job, exchange_candles_job, glass_chain_tvl_job, glass_snapshots_job,
            human_items_job, human_sentiment_job, trading_job]
ALL_SCHEDULES = [exchange_every_minute, exchange_hourly_candles_schedule, glass_chain_tvl_schedule,
                 glass_hourly_snapshots, human_every_15_minutes, human_daily_sentiment_schedule, trading_every_minute]
