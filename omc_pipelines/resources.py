"""Dagster resources: how assets reach the ledger database and the sources.

Their fields are the configuration (see ``settings.py``); secrets arrive as
``EnvVar`` so that the UI shows the variable's name, never its value.
"""

from __future__ import annotations

import sqlalchemy as sa
from dagster import ConfigurableResource

from omc_pipelines import settings
from omc_pipelines.db import ready_engine
from omc_pipelines.settings import parse_feeds
from omc_pipelines.sources.announcements import CoinSpotAnnouncements
from omc_pipelines.sources.coinspot import CoinSpotPublic
from omc_pipelines.sources.cryptopanic import CryptoPanicClient
from omc_pipelines.sources.defillama import DefiLlama
from omc_pipelines.sources.http import HttpSource
from omc_pipelines.sources.news import NewsFeeds
from omc_pipelines.sources.reddit import RedditClient
from omc_pipelines.sources.sec import SecEdgar
from omc_pipelines.trading_bridge import trading_config
from omc_trading.broker import Broker, QuoteSource
from omc_trading.coinspot import CoinSpotClient, CoinSpotLiveBroker
from omc_trading.config import ModeDecision, TradingConfig, effective_mode
from omc_trading.paper import PaperBroker


class LedgerDatabase(ConfigurableResource):
    """The ledgers' database (``OMC_DATABASE_URL``)."""

    url: str
    # Migrate on first use: on for the embedded SQLite default, off for a
    # production database, whose schema changes when `omc db upgrade` says so.
    auto_migrate: bool = True

    def engine(self) -> sa.Engine:
        return ready_engine(self.url, self.auto_migrate)


class HistoryFilesResource(ConfigurableResource):
    """Where OHLCV history files wait to be imported (``OMC_HISTORY_DIR``) when a run names none."""

    folder: str


class CoinSpotResource(ConfigurableResource):
    """CoinSpot's public API (``OMC_COINSPOT_URL``) and the coins we watch."""

    base_url: str = "https://www.coinspot.com.au"
    watchlist: list[str] = []
    rate_limit: float = 10.0
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    # Everything one run asks of CoinSpot: a hanging CoinSpot ends the minutely run inside its
    # minute instead of piling runs up behind it.
    budget: float = 40.0

    def client(self) -> CoinSpotPublic:
        return CoinSpotPublic(
            HttpSource(
                "coinspot", self.base_url, timeout=self.timeout, retries=self.retries,
                backoff=self.backoff, rate_limit=self.rate_limit, budget=self.budget,
            )
        )


class SecResource(ConfigurableResource):
    """SEC EDGAR (``OMC_SEC_DATA_URL``, ``OMC_SEC_ARCHIVES_URL``) and what we track there.

    The SEC requires a User-Agent with a name and a contact email
    (``OMC_SEC_USER_AGENT``); without one no request is sent at all.
    """

    data_url: str = "https://data.sec.gov"
    archives_url: str = "https://www.sec.gov"
    user_agent: str | None = None
    rate_limit: float = 10.0
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    ciks: list[str] = []
    forms: list[str] = []
    history_days: int = 30
    # After a 403/429 nothing goes to the SEC for this long: its block lasts about ten minutes.
    cooldown: float = 600.0

    def client(self, timeout: float | None = None, retries: int | None = None, budget: float | None = None) -> SecEdgar:
        return SecEdgar.create(
            self.data_url, self.archives_url, self.user_agent, rate_limit=self.rate_limit,
            timeout=timeout or self.timeout, retries=self.retries if retries is None else retries, backoff=self.backoff,
            cooldown=self.cooldown, budget=budget,
        )


class AnnouncementsResource(ConfigurableResource):
    """CoinSpot's help centre (``OMC_ZENDESK_URL``): its Announcements category."""

    base_url: str = "https://coinspot.zendesk.com"
    category: str = "115000579994"
    browser_path: str = "/usr/bin/chromium"
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    history_days: int = 30

    def client(self, timeout: float | None = None, retries: int | None = None,
               budget: float | None = None) -> CoinSpotAnnouncements:
        http = HttpSource(
            "coinspot_announcements", self.base_url, timeout=timeout or self.timeout,
            retries=self.retries if retries is None else retries, backoff=self.backoff, budget=budget,
        )
        # The browser is the last resort and the slowest: it gets twice the HTTP timeout.
        return CoinSpotAnnouncements(http, self.category, self.browser_path, browser_timeout=2 * (timeout or self.timeout))


class DefiLlamaResource(ConfigurableResource):
    """DeFiLlama (``OMC_DEFILLAMA_URL``, ``OMC_DEFILLAMA_STABLECOINS_URL``) and what we follow there."""

    api_url: str = "https://api.llama.fi"
    stablecoins_url: str = "https://stablecoins.llama.fi"
    chains: list[str] = []
    protocols: list[str] = []
    top_protocols: int = 20
    timeout: float = 10.0
    retries: int = 4
    backoff: float = 0.5
    # DeFiLlama's fair-use limit is undocumented; 2 a second has not been throttled.
    rate_limit: float = 2.0

    def client(self) -> DefiLlama:
        return DefiLlama.create(self.api_url, self.stablecoins_url, timeout=self.timeout, retries=self.retries,
                                backoff=self.backoff, rate_limit=self.rate_limit)


class NewsFeedsResource(ConfigurableResource):
    """The news sites' RSS feeds: ``OMC_NEWS_FEEDS``'s name=url pairs, as the variable holds
    them. Set in the environment, it reaches Dagster as an EnvVar: a feed URL may carry a key."""

    feeds: str
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5

    def client(self) -> NewsFeeds:
        return NewsFeeds(parse_feeds(self.feeds), timeout=self.timeout, retries=self.retries, backoff=self.backoff)


class CryptoPanicResource(ConfigurableResource):
    """CryptoPanic (``OMC_CRYPTOPANIC_URL``); its token comes from ``OMC_CRYPTOPANIC_TOKEN``
    as an EnvVar, so the UI shows the variable's name, never the token."""

    base_url: str = "https://cryptopanic.com"
    token: str | None = None
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5

    def client(self) -> CryptoPanicClient:
        return CryptoPanicClient.create(self.base_url, self.token, timeout=self.timeout, retries=self.retries,
                                       backoff=self.backoff)


class RedditResource(ConfigurableResource):
    """Reddit's API (``OMC_REDDIT_URL``, token from ``OMC_REDDIT_AUTH_URL``) with OAuth
    client credentials from ``OMC_REDDIT_CLIENT_ID`` and ``OMC_REDDIT_CLIENT_SECRET``."""

    base_url: str = "https://oauth.reddit.com"
    auth_url: str = "https://www.reddit.com"
    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    subreddits: list[str] = []
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5

    def client(self) -> RedditClient:
        return RedditClient.create(self.base_url, self.auth_url, self.client_id, self.client_secret, self.username,
                                   timeout=self.timeout, retries=self.retries, backoff=self.backoff)


class TradingResource(ConfigurableResource):
    """The trading side: its rules (the OMC_* trading settings, shown here by name) and
    CoinSpot's private keys (EnvVars: the UI shows the variables' names, never the keys).

    Live trading needs OMC_TRADING_MODE=live AND OMC_TRADING_LIVE_CONFIRM=yes AND both key
    pairs; anything less trades on paper, and the mode's reason says what is missing."""

    rules: dict[str, str] = {}
    coinspot_url: str = "https://www.coinspot.com.au"
    api_key: str | None = None
    api_secret: str | None = None
    readonly_key: str | None = None
    readonly_secret: str | None = None
    # An order is sent once and never retried; this bounds how long its answer is awaited.
    timeout: float = 10.0

    def config(self) -> TradingConfig:
        return trading_config(settings.load(self.rules))

    def mode(self, config: TradingConfig) -> ModeDecision:
        return effective_mode(config, trading_keys=bool(self.api_key and self.api_secret),
                              read_only_keys=bool(self.readonly_key and self.readonly_secret))

    def broker(self, engine: sa.Engine, quotes: QuoteSource, config: TradingConfig) -> tuple[Broker, ModeDecision]:
        """The broker of the effective mode, and why that mode."""
        decision = self.mode(config)
        if decision.mode != "live":
            return PaperBroker(engine, quotes, config), decision
        trading = CoinSpotClient(self.coinspot_url, self.api_key, self.api_secret, engine, timeout=self.timeout)
        read_only = CoinSpotClient(self.coinspot_url, self.readonly_key, self.readonly_secret, engine,
                                   timeout=self.timeout)
        return CoinSpotLiveBroker(trading, read_only, quotes, fee_rate=config.fee_rate), decision
