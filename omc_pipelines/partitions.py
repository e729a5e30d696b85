"""Partitions shared by the ledgers.

Assets are declared with the default start dates (``CANDLE_DAYS``, ``DAILY``, ``DAILY_OPEN``), so
that importing a ledger never reads the environment; ``definitions.py`` re-dates them to the
configured ``OMC_CANDLES_START`` / ``OMC_DAILY_START`` with :func:`configured`.
"""

from collections.abc import Sequence

from dagster import AssetsDefinition, DailyPartitionsDefinition

from omc_pipelines.settings import Settings


def daily(start: str, *, today: bool = False) -> DailyPartitionsDefinition:
    """UTC days from ``start``: chain TVL, daily sentiment; with ``today`` the day under way
    is a partition too (the daily P&L, refreshed while the day runs)."""
    return DailyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1 if today else 0)


# Hourly candles are partitioned by day, the day under way included (the hourly schedule
# rebuilds it as its hours end): Dagster records one event per partition and run, and 8,760
# hourly partitions cost a year's backfill minutes of bookkeeping for seconds of SQL. Each
# day's materialization lists its hours (see ledgers/exchange.py).
CANDLE_DAYS = daily(Settings.model_fields["candles_start"].default, today=True)
DAILY = daily(Settings.model_fields["daily_start"].default)
DAILY_OPEN = daily(Settings.model_fields["daily_start"].default, today=True)


def configured(assets: Sequence[AssetsDefinition], config: Settings) -> list[AssetsDefinition]:
    """``assets`` with the default partitions replaced by the configured ones."""
    # By identity: CANDLE_DAYS and DAILY_OPEN are equal while their settings keep their defaults.
    replacements = {id(CANDLE_DAYS): daily(config.candles_start, today=True), id(DAILY): daily(config.daily_start),
                    id(DAILY_OPEN): daily(config.daily_start, today=True)}

    def redate(spec):
        if id(spec.partitions_def) in replacements:
            return spec.replace_attributes(partitions_def=replacements[id(spec.partitions_def)])
        return spec

    return [a.map_asset_specs(redate) if id(a.partitions_def) in replacements else a for a in assets]
