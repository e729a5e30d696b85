"""The Human ledger's jobs, the schedules that run them, and how old its tables may get."""

from __future__ import annotations

from datetime import timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    FreshnessPolicy,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
)

from omc_pipelines.schedules import INGESTION_RETRIES
from omc_pipelines.freshness import DAILY
from omc_pipelines.ledgers.human import assets as human

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

ALL_JOBS = [human_items_job, human_sentiment_job]
ALL_SCHEDULES = [human_every_15_minutes, human_daily_sentiment_schedule]

# The sources run every 15 minutes.
_QUARTER_HOURLY = FreshnessPolicy.time_window(fail_window=timedelta(hours=1), warn_window=timedelta(minutes=30))
FRESHNESS = {
    human.coin_sentiment_daily.key: DAILY,
    human.news_items.key: _QUARTER_HOURLY,
    human.cryptopanic_posts.key: _QUARTER_HOURLY,
    human.reddit_posts.key: _QUARTER_HOURLY,
}
