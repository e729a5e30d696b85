"""Freshness: how old each ledger may get before Dagster shows it failing in the UI.

A check that runs right after the write it measures cannot see a schedule that stopped.
These are Dagster's freshness policies: the daemon's freshness loop evaluates them between
runs, so a ledger that stops moving turns red on its own. Each ledger states its own in its
``schedules.py`` (they follow its schedules, with room for a late or failed run); the kinds
two ledgers share are here. The catalyst assets have none on purpose: they move when the
world publishes, and days without a filing are normal; their sensors' ticks turn red when a
source fails. Nor have the assets a person runs when they want them, on no schedule, whose
age therefore says nothing: ``exchange_imported_candles`` (history imported from files) and
the research assets (derived studies).
"""

from collections.abc import Mapping, Sequence
from datetime import timedelta

from dagster import AssetKey, AssetsDefinition, FreshnessPolicy


def minutely(freshness_minutes: int) -> FreshnessPolicy:
    """What runs every minute (prices, trades, trading): ``freshness_minutes`` (OMC_FRESHNESS_MINUTES)."""
    return FreshnessPolicy.time_window(fail_window=timedelta(minutes=freshness_minutes),
                                       warn_window=timedelta(minutes=max(1, freshness_minutes // 2)))


# Daily partitions run at 01:00 (chain TVL) and 00:20 (sentiment): done by 03:00.
DAILY = FreshnessPolicy.cron(deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=3))


def with_policies(assets: Sequence[AssetsDefinition],
                  chosen: Mapping[AssetKey, FreshnessPolicy]) -> list[AssetsDefinition]:
    def attach(spec):
        return spec.replace_attributes(freshness_policy=chosen[spec.key]) if spec.key in chosen else spec

    return [a.map_asset_specs(attach) if set(a.keys) & set(chosen) else a for a in assets]
