"""The one Definitions of the project; nothing else builds one.

Dagster calls ``defs`` when it loads the code location: the settings are read then, once,
never at import. ``build_defs(config)`` builds the same from given settings (tests, tools).
"""

import dagster as dg
from dagster import Definitions, EnvVar, in_process_executor

from omc_pipelines import freshness, partitions, settings
from omc_pipelines.ledgers.catalyst import assets as catalyst, checks as catalyst_checks, sensors as catalyst_sensors
from omc_pipelines.ledgers.exchange import assets as exchange, checks as exchange_checks, history as exchange_history
from omc_pipelines.ledgers.exchange import schedules as exchange_schedules
from omc_pipelines.ledgers.glass import assets as glass, checks as glass_checks, schedules as glass_schedules
from omc_pipelines.ledgers.human import assets as human, checks as human_checks, schedules as human_schedules
from omc_pipelines.ledgers.research import assets as research
from omc_pipelines.ledgers.trading import assets as trading, schedules as trading_schedules
from omc_pipelines.resources import (
    AnnouncementsResource, CoinSpotResource, CryptoPanicResource, DefiLlamaResource, HistoryFilesResource,
    LedgerDatabase, NewsFeedsResource, RedditResource, SecResource, TradingResource,
)
from omc_pipelines.trading_bridge import TRADING_RULES


def build_resources(config: settings.Settings) -> dict:
    # A value that may hold a secret (a password in the database URL, a token) reaches
    # Dagster as an EnvVar: the UI and run config show the variable's name only.
    def secret(field: str):
        return EnvVar(settings.env_name(field)) if field in config.model_fields_set else None

    return {
        "ledger_db": LedgerDatabase(
            url=secret("database_url") or config.ledger_database_url,
            auto_migrate=not config.database_url_from_env,
        ),
        "history_files": HistoryFilesResource(folder=str(config.history_folder)),
        "coinspot": CoinSpotResource(
            base_url=config.coinspot_url,
            watchlist=list(config.coinspot_watchlist),
            rate_limit=config.coinspot_rate_limit,
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
        "sec": SecResource(
            data_url=config.sec_data_url,
            archives_url=config.sec_archives_url,
            user_agent=config.sec_user_agent,
            rate_limit=config.sec_rate_limit,
            timeout=config.http_timeout,
            retries=config.http_retries,
            ciks=list(config.sec_ciks),
            forms=list(config.sec_forms),
            history_days=config.catalyst_history_days,
        ),
        "announcements": AnnouncementsResource(
            base_url=config.zendesk_url,
            category=config.zendesk_category,
            browser_path=config.browser_path,
            timeout=config.http_timeout,
            retries=config.http_retries,
            history_days=config.catalyst_history_days,
        ),
        "defillama": DefiLlamaResource(
            api_url=config.defillama_url,
            stablecoins_url=config.defillama_stablecoins_url,
            chains=list(config.defillama_chains),
            protocols=list(config.defillama_protocols),
            top_protocols=config.defillama_top_protocols,
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
        "news": NewsFeedsResource(
            feeds=secret("news_feeds") or ",".join(f"{name}={url}" for name, url in config.news_feeds.items()),
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
        "cryptopanic": CryptoPanicResource(
            base_url=config.cryptopanic_url,
            token=secret("cryptopanic_token"),
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
        "reddit": RedditResource(
            base_url=config.reddit_url,
            auth_url=config.reddit_auth_url,
            client_id=secret("reddit_client_id"),
            client_secret=secret("reddit_client_secret"),
            username=config.reddit_username,
            subreddits=list(config.reddit_subreddits),
            timeout=config.http_timeout,
            retries=config.http_retries,
        ),
        "trading": TradingResource(
            rules={settings.env_name(name): _as_setting(getattr(config, name)) for name in TRADING_RULES
                   if getattr(config, name) is not None},
            coinspot_url=config.coinspot_url,
            api_key=secret("coinspot_api_key"),
            api_secret=secret("coinspot_api_secret"),
            readonly_key=secret("coinspot_readonly_key"),
            readonly_secret=secret("coinspot_readonly_secret"),
            timeout=config.http_timeout,
        ),
    }


def _as_setting(value) -> str:
    """A setting's value as its variable would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


# Each ledger's parts, from its package under ledgers/: a new source adds its own there and a line here.
ASSETS = [
    *exchange.ASSETS, exchange_history.exchange_imported_candles,
    *catalyst.ASSETS,
    *glass.ASSETS,
    *human.ASSETS,
    *trading.ASSETS,
    *research.ASSETS,
]
CHECKS = [*exchange_checks.ALL, *catalyst_checks.ALL, *glass_checks.ALL, *human_checks.ALL]
SCHEDULED = [exchange_schedules, glass_schedules, human_schedules, trading_schedules]
JOBS = [job for ledger in SCHEDULED for job in ledger.ALL_JOBS] + catalyst_sensors.ALL_JOBS
SCHEDULES = [s for ledger in SCHEDULED for s in ledger.ALL_SCHEDULES]


def freshness_policies(freshness_minutes: int) -> dict:
    """Every ledger's freshness policies; ``freshness_minutes`` (OMC_FRESHNESS_MINUTES) for what
    runs every minute. The catalysts and research have none (see freshness.py)."""
    return {**exchange_schedules.freshness(freshness_minutes), **glass_schedules.FRESHNESS,
            **human_schedules.FRESHNESS, **trading_schedules.freshness(freshness_minutes)}


def build_defs(config: settings.Settings) -> Definitions:
    return Definitions(
        # Each asset's page links to the file and line that defines it (local paths: the
        # repository has no remote for link_code_references_to_git to point at).
        assets=dg.with_source_code_references(
            freshness.with_policies(partitions.configured(ASSETS, config), freshness_policies(config.freshness_minutes))),
        asset_checks=CHECKS,
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=catalyst_sensors.build_sensors(config.listing_sensor_seconds, config.filing_sensor_seconds),
        resources=build_resources(config),
        # The steps are small and I/O-bound: a process per step would cost ~2 s each
        # (a minutely run took 18 s that way) for no parallelism worth having.
        executor=in_process_executor,
    )


@dg.definitions
def defs() -> Definitions:
    return build_defs(settings.current())
