"""The Glass ledger's jobs, the schedules that run them, and how old its tables may get."""

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
from omc_pipelines.ledgers.glass import assets as glass

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

ALL_JOBS = [glass_chain_tvl_job, glass_snapshots_job]
ALL_SCHEDULES = [glass_chain_tvl_schedule, glass_hourly_snapshots]

# Hourly snapshots (at :17): three hours leave two missed runs of slack.
_HOURLY = FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))
FRESHNESS = {
    glass.defillama_protocols.key: _HOURLY,
    glass.defillama_fees.key: _HOURLY,
    glass.defillama_stablecoins.key: _HOURLY,
    glass.defillama_chain_tvl.key: DAILY,
}
