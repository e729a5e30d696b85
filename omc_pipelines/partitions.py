"""Partitions shared by the ledgers.

Assets are declared with the default start dates (``HOURLY``, ``DAILY``), so that importing a
ledger never reads the environment; ``definitions.py`` re-dates them to the configured
``OMC_CANDLES_START`` / ``OMC_DAILY_START`` with :func:`configured`.
"""

from collections.abc import Sequence

from dagster import AssetsDefinition, DailyPartitionsDefinition, HourlyPartitionsDefinition

from omc_pipelines.settings import Settings


def hourly(start: str) -> HourlyPartitionsDefinition:
    """UTC hours from ``start`` (``YYYY-MM-DD-HH:MM``): a deployment backfills only as far
    back as its trade history goes."""
    return HourlyPartitionsDefinition(start_date=start, timezone="UTC")


def daily(start: str, *, today: bool = False) -> DailyPartitionsDefinition:
    """UTC days from ``start``: chain TVL, daily sentiment; with ``today`` the day under way
    is a partition too (the daily P&L, refreshed while the day runs)."""
    return DailyPartitionsDefinition(start_date=start, timezone="UTC", end_offset=1 if today else 0)


HOURLY = hourly(Settings.model_fields["candles_start"].default)
DAILY = daily(Settings.model_fields["daily_start"].default)
DAILY_OPEN = daily(Settings.model_fields["daily_start"].default, today=True)


def configured(assets: Sequence[AssetsDefinition], config: Settings) -> list[AssetsDefinition]:
    """``assets`` with the default partitions replaced by the configured ones."""
    replacements = {HOURLY: hourly(config.candles_start), DAILY: daily(config.daily_start),
                    DAILY_OPEN: daily(config.daily_start, today=True)}

    def redate(spec):
        if spec.partitions_def in replacements:
            return spec.replace_attributes(partitions_def=replacements[spec.partitions_def])
        return spec

    return [a.map_asset_specs(redate) if a.partitions_def in replacements else a for a in assets]
