"""Partitions shared by the ledgers.

Assets are declared with the default start dates (``CANDLE_WEEKS``, ``DAILY``, ``DAILY_OPEN``), so
that importing a ledger never reads the environment; ``definitions.py`` re-dates them to the
configured ``OMC_CANDLES_START`` / ``OMC_DAILY_START`` with :func:`configured`.
"""

from collections.abc import Sequence

from datetime import date, timedelta

from dagster import AssetsDefinition, DailyPartitionsDefinition, WeeklyPartitionsDefinition

from omc_pipelines.settings import Settings


def daily(start: str, *, today: bool = False) -> DailyPartitionsDefinition:
    """UTC days from ``start``: chain TVL, daily sentiment; with ``today`` the day under way
    is a partition too (the daily P&L, refreshed while the day runs)."""
    return DailyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1 if today else 0)


def weekly(start: str) -> WeeklyPartitionsDefinition:
    """UTC weeks, Monday to Monday, from the week that holds the day ``start``; the week under way
    is a partition too (the hourly candles' schedule rebuilds it as its hours end)."""
    day = date.fromisoformat(start)
    monday = day - timedelta(days=day.weekday())
    return WeeklyPartitionsDefinition(start_date=monday.isoformat(), day_offset=1, timezone="UTC", end_offset=1)


# Hourly candles are partitioned by week: Dagster records two events per partition of a run
# (planned, materialized), one database write each (~25 ms on SQLite). 8,760 hourly partitions
# cost a year's backfill minutes of bookkeeping for seconds of SQL, 365 days still ~17 s;
# 53 weeks, ~2 s. Each week's materialization lists its hours (see ledgers/exchange/assets.py).
CANDLE_WEEKS = weekly(Settings.model_fields["candles_start"].default)
DAILY = daily(Settings.model_fields["daily_start"].default)
DAILY_OPEN = daily(Settings.model_fields["daily_start"].default, today=True)


def configured(assets: Sequence[AssetsDefinition], config: Settings) -> list[AssetsDefinition]:
    """``assets`` with the default partitions replaced by the configured ones."""
    # By identity: each definition re-dated by its own setting, even one equal to another by value.
    replacements = {id(CANDLE_WEEKS): weekly(config.candles_start), id(DAILY): daily(config.daily_start),
                    id(DAILY_OPEN): daily(config.daily_start, today=True)}

    def redate(spec):
        if id(spec.partitions_def) in replacements:
            return spec.replace_attributes(partitions_def=replacements[id(spec.partitions_def)])
        return spec

    return [a.map_asset_specs(redate) if id(a.partitions_def) in replacements else a for a in assets]
