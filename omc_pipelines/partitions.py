"""Partitions shared by the ledgers."""

from dagster import DailyPartitionsDefinition, HourlyPartitionsDefinition

from omc_pipelines import settings

# Hours are UTC. The first hour is configurable (OMC_CANDLES_START) so that a
# deployment backfills only as far back as its trade history goes.
_config = settings.load()
HOURLY = HourlyPartitionsDefinition(start_date=_config.candles_start, timezone="UTC")
# Chain TVL and daily sentiment: UTC days from OMC_DAILY_START.
DAILY = DailyPartitionsDefinition(start_date=_config.daily_start, timezone="UTC")
