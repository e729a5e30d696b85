"""The one Definitions of the project; nothing else builds one."""

from dagster import Definitions, EnvVar, in_process_executor

from omc_pipelines import checks, schedules, settings
from omc_pipelines.ledgers import exchange
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase


def build_resources(config: settings.Settings) -> dict:
    return {
        # A database URL may hold a password: when it comes from the environment the
        # UI shows the variable's name only.
        "ledger_db": LedgerDatabase(
            url=EnvVar(settings.DATABASE_URL) if config.database_url_from_env else config.database_url,
            auto_migrate=not config.database_url_from_env,
        ),
        "coinspot": CoinSpotResource(
            base_url=config.coinspot_url,
            watchlist=list(config.coinspot_watchlist),
            rate_limit=config.coinspot_rate_limit,
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
    }


defs = Definitions(
    assets=[exchange.coinspot_price_snapshots, exchange.coinspot_trades, exchange.coinspot_hourly_candles],
    asset_checks=checks.ALL,
    jobs=schedules.ALL_JOBS,
    schedules=schedules.ALL_SCHEDULES,
    resources=build_resources(settings.load()),
    # The steps are small and I/O-bound: a process per step would cost ~2 s each
    # (a minutely run took 18 s that way) for no parallelism worth having.
    executor=in_process_executor,
)
