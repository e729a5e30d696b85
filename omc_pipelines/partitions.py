"""Partitions shared by the ledgers."""

from dagster import HourlyPartitionsDefinition

from omc_pipelines import settings

# Hours are UTC. The first hour is configurable (OMC_CANDLES_START) so that a
# deployment backfills only as far back as its trade history goes.
HOURLY = HourlyPartitionsDefinition(start_date=settings.load().candles_start, timezone="UTC")
