"""The Trading ledger's own job, the schedule that runs it, and how old its tables may get.
(The catalyst jobs that carry the trading assets after an event are in ``ledgers/catalyst/sensors.py``.)"""

from __future__ import annotations

from datetime import datetime

from dagster import (
    AssetKey,
    AssetSelection,
    FreshnessPolicy,
    RunRequest,
    define_asset_job,
)

from omc_pipelines.freshness import minutely
from omc_pipelines.ledgers.trading import assets as trading
from omc_pipelines.schedules import every_minute

trading_job = define_asset_job(
    "trading",
    tags=trading.MONEY_RUN_LIMIT,
    selection=AssetSelection.assets(*trading.ASSETS),
    description="The trading assets alone: reconcile orders of unknown outcome, exits (take-profit, stop-loss, "
    "max holding), positions and today's P&L. Launch it by hand with a day's partition to recompute that day.",
)


def _trading_day(tick: datetime) -> RunRequest:
    return RunRequest(run_key=f"trading-{tick.isoformat()}", partition_key=f"{tick:%Y-%m-%d}")


trading_every_minute = every_minute(
    "trading_every_minute", trading_job,
    "Every minute: reconciliation, exits against the newest prices, positions, today's P&L.", _trading_day)


ALL_JOBS = [trading_job]
ALL_SCHEDULES = [trading_every_minute]


def freshness(freshness_minutes: int) -> dict[AssetKey, FreshnessPolicy]:
    """The trading job runs every minute: stopped, no exit is checked and no order settled."""
    return {asset.key: minutely(freshness_minutes) for asset in trading.ASSETS}
