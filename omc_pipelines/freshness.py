"""Freshness: how old each ledger may get before Dagster shows it failing in the UI.

A check that runs right after the write it measures cannot see a schedule that stopped.
These are Dagster's freshness policies: the daemon's freshness loop evaluates them between
runs, so a ledger that stops moving turns red on its own. The catalyst assets have none on
purpose: they move when the world publishes, and days without a filing are normal; their
sensors' ticks turn red when a source fails. Nor have the research assets (the backtest): they
run when a person asks, not on a schedule.
"""

from collections.abc import Sequence
from datetime import timedelta

from dagster import AssetKey, AssetsDefinition, FreshnessPolicy

from omc_pipelines.ledgers import exchange, glass, human, trading


def policies(freshness_minutes: int) -> dict[AssetKey, FreshnessPolicy]:
    """``freshness_minutes`` (OMC_FRESHNESS_MINUTES) for what runs every minute (prices, trades,
    trading); the others follow their schedules, with room for a late or failed run."""
    minutely = FreshnessPolicy.time_window(fail_window=timedelta(minutes=freshness_minutes),
                                           warn_window=timedelta(minutes=max(1, freshness_minutes // 2)))
    # Candles at :05 for the hour just ended: by :30 the last hour must be there.
    hourly_candles = FreshnessPolicy.cron(deadline_cron="30 * * * *", lower_bound_delta=timedelta(minutes=30))
    # Hourly glass snapshots (at :17): three hours leave two missed runs of slack.
    hourly = FreshnessPolicy.time_window(fail_window=timedelta(hours=3), warn_window=timedelta(hours=2))
    # Daily partitions run at 01:00 (chain TVL) and 00:20 (sentiment): done by 03:00.
    daily = FreshnessPolicy.cron(deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=3))
    # The human sources run every 15 minutes.
    quarter_hourly = FreshnessPolicy.time_window(fail_window=timedelta(hours=1), warn_window=timedelta(minutes=30))
    return {
        exchange.coinspot_price_snapshots.key: minutely,
        exchange.coinspot_trades.key: minutely,
        exchange.coinspot_hourly_candles.key: hourly_candles,
        glass.defillama_protocols.key: hourly,
        glass.defillama_fees.key: hourly,
        glass.defillama_stablecoins.key: hourly,
        glass.defillama_chain_tvl.key: daily,
        human.coin_sentiment_daily.key: daily,
        human.news_items.key: quarter_hourly,
        human.cryptopanic_posts.key: quarter_hourly,
        human.reddit_posts.key: quarter_hourly,
        # The trading job runs every minute: stopped, no exit is checked and no order settled.
        **{asset.key: minutely for asset in trading.ASSETS},
    }


def with_policies(assets: Sequence[AssetsDefinition], freshness_minutes: int) -> list[AssetsDefinition]:
    chosen = policies(freshness_minutes)

    def attach(spec):
        return spec.replace_attributes(freshness_policy=chosen[spec.key]) if spec.key in chosen else spec

    return [a.map_asset_specs(attach) if set(a.keys) & set(chosen) else a for a in assets]
