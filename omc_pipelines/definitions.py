"""The one Definitions of the project; nothing else builds one."""

from dagster import Definitions, EnvVar, in_process_executor

from omc_pipelines import checks, schedules, sensors, settings
from omc_pipelines.ledgers import catalyst, exchange, glass, human
from omc_pipelines.resources import (
    AnnouncementsResource, CoinSpotResource, CryptoPanicResource, DefiLlamaResource, LedgerDatabase, NewsFeedsResource,
    RedditResource, SecResource,
)


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
        "news": NewsFeedsResource(feeds=config.news_feeds, timeout=config.http_timeout),
        "cryptopanic": CryptoPanicResource(
            base_url=config.cryptopanic_url,
            token=EnvVar(settings.CRYPTOPANIC_TOKEN) if config.cryptopanic_token else None,
            timeout=config.http_timeout,
        ),
        "reddit": RedditResource(
            base_url=config.reddit_url,
            auth_url=config.reddit_auth_url,
            client_id=EnvVar(settings.REDDIT_CLIENT_ID) if config.reddit_client_id else None,
            client_secret=EnvVar(settings.REDDIT_CLIENT_SECRET) if config.reddit_client_secret else None,
            username=config.reddit_username,
            subreddits=list(config.reddit_subreddits),
            timeout=config.http_timeout,
        ),
    }


defs = Definitions(
    assets=[
        exchange.coinspot_price_snapshots, exchange.coinspot_trades, exchange.coinspot_hourly_candles,
        catalyst.coinspot_announcements, catalyst.sec_filings,
        *glass.ASSETS,
        *human.ASSETS,
    ],
    asset_checks=checks.ALL,
    jobs=schedules.ALL_JOBS + sensors.ALL_JOBS,
    schedules=schedules.ALL_SCHEDULES,
    sensors=sensors.ALL_SENSORS,
    resources=build_resources(settings.load()),
    # The steps are small and I/O-bound: a process per step would cost ~2 s each
    # (a minutely run took 18 s that way) for no parallelism worth having.
    executor=in_process_executor,
)
