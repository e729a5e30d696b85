"""Every environment variable the project reads, in one place.

Nothing else in the project calls ``os.environ``: code asks :func:`load` for a
:class:`Settings` and Dagster sees the values as resource fields.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Names that are part of the interface; README's configuration table lists them.
DATABASE_URL = "OMC_DATABASE_URL"
HOME = "OMC_HOME"
COINSPOT_URL = "OMC_COINSPOT_URL"
ZENDESK_URL = "OMC_ZENDESK_URL"
SEC_DATA_URL = "OMC_SEC_DATA_URL"
SEC_ARCHIVES_URL = "OMC_SEC_ARCHIVES_URL"
DEFILLAMA_URL = "OMC_DEFILLAMA_URL"
CRYPTOPANIC_URL = "OMC_CRYPTOPANIC_URL"
REDDIT_URL = "OMC_REDDIT_URL"
COINSPOT_WATCHLIST = "OMC_COINSPOT_WATCHLIST"
COINSPOT_RATE_LIMIT = "OMC_COINSPOT_RATE_LIMIT"
HTTP_TIMEOUT = "OMC_HTTP_TIMEOUT"
HTTP_RETRIES = "OMC_HTTP_RETRIES"
CANDLES_START = "OMC_CANDLES_START"
DAILY_START = "OMC_DAILY_START"
FRESHNESS_MINUTES = "OMC_FRESHNESS_MINUTES"
SEC_USER_AGENT = "OMC_SEC_USER_AGENT"
SEC_RATE_LIMIT = "OMC_SEC_RATE_LIMIT"
SEC_CIKS = "OMC_SEC_CIKS"
SEC_FORMS = "OMC_SEC_FORMS"
ZENDESK_CATEGORY = "OMC_ZENDESK_CATEGORY"
BROWSER_PATH = "OMC_BROWSER_PATH"
LISTING_SENSOR_SECONDS = "OMC_LISTING_SENSOR_SECONDS"
FILING_SENSOR_SECONDS = "OMC_FILING_SENSOR_SECONDS"
CATALYST_HISTORY_DAYS = "OMC_CATALYST_HISTORY_DAYS"
DEFILLAMA_STABLECOINS_URL = "OMC_DEFILLAMA_STABLECOINS_URL"
DEFILLAMA_CHAINS = "OMC_DEFILLAMA_CHAINS"
DEFILLAMA_PROTOCOLS = "OMC_DEFILLAMA_PROTOCOLS"
DEFILLAMA_TOP_PROTOCOLS = "OMC_DEFILLAMA_TOP_PROTOCOLS"
NEWS_FEEDS = "OMC_NEWS_FEEDS"
CRYPTOPANIC_TOKEN = "OMC_CRYPTOPANIC_TOKEN"
REDDIT_AUTH_URL = "OMC_REDDIT_AUTH_URL"
REDDIT_CLIENT_ID = "OMC_REDDIT_CLIENT_ID"
REDDIT_CLIENT_SECRET = "OMC_REDDIT_CLIENT_SECRET"
REDDIT_USERNAME = "OMC_REDDIT_USERNAME"
REDDIT_SUBREDDITS = "OMC_REDDIT_SUBREDDITS"

DEFAULT_WATCHLIST = ("btc", "eth", "sol", "xrp", "doge", "ada", "pepe")
# Strategy (formerly MicroStrategy, MSTR) and Coinbase Global (COIN).
DEFAULT_SEC_CIKS = ("0001050446", "0001679788")
DEFAULT_SEC_FORMS = ("4", "8-K")
# CoinSpot's "Announcements" category in its Zendesk help centre.
DEFAULT_ZENDESK_CATEGORY = "115000579994"
DEFAULT_CHAINS = ("Ethereum", "Solana", "Tron", "BSC", "Base", "Arbitrum", "Bitcoin")
DEFAULT_PROTOCOLS = ("aave", "lido", "uniswap", "makerdao", "eigenlayer")
# The news sites' own feeds, name=url; no key needed.
DEFAULT_NEWS_FEEDS = (
    "coindesk=https://www.coindesk.com/arc/outboundfeeds/rss/",
    "cointelegraph=https://cointelegraph.com/rss",
    "cryptoslate=https://cryptoslate.com/feed/",
    "decrypt=https://decrypt.co/feed",
    "newsbtc=https://www.newsbtc.com/feed/",
)
DEFAULT_SUBREDDITS = ("CryptoCurrency", "Bitcoin", "ethereum", "solana")


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use."""


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    database_url_from_env: bool
    coinspot_url: str
    zendesk_url: str
    sec_data_url: str
    sec_archives_url: str
    defillama_url: str
    cryptopanic_url: str
    reddit_url: str
    coinspot_watchlist: tuple[str, ...]
    coinspot_rate_limit: float
    http_timeout: float
    http_retries: int
    candles_start: str
    daily_start: str
    freshness_minutes: int
    sec_user_agent: str | None
    sec_rate_limit: float
    sec_ciks: tuple[str, ...]
    sec_forms: tuple[str, ...]
    zendesk_category: str
    browser_path: str
    listing_sensor_seconds: int
    filing_sensor_seconds: int
    catalyst_history_days: int
    defillama_stablecoins_url: str
    defillama_chains: tuple[str, ...]
    defillama_protocols: tuple[str, ...]
    defillama_top_protocols: int
    news_feeds: dict[str, str]
    cryptopanic_token: str | None
    reddit_auth_url: str
    reddit_client_id: str | None
    reddit_client_secret: str | None
    reddit_username: str | None
    reddit_subreddits: tuple[str, ...]

    @property
    def default_database_url(self) -> str:
        return default_database_url(self.home)


def default_database_url(home: Path) -> str:
    return f"sqlite:///{(home / 'omc.db').resolve()}"


def _float(env: dict[str, str], name: str, default: float, minimum: float, maximum: float = float("inf")) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    if value > maximum:
        raise SettingsError(f"{name}={raw!r} must be at most {maximum}")
    return value


def _url(env: dict[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL")
    return value


def _coins(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if not raw:
        return default
    coins = tuple(dict.fromkeys(c.strip().lower() for c in raw.split(",") if c.strip()))
    bad = [c for c in coins if not c.isalnum()]
    if bad or not coins:
        raise SettingsError(f"{name} must be a comma-separated list of coin symbols, got {raw!r}")
    return coins


def _list(env: dict[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if not raw:
        return default
    return tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip())) or default


def _ciks(env: dict[str, str]) -> tuple[str, ...]:
    ciks = _list(env, SEC_CIKS, DEFAULT_SEC_CIKS)
    if not all(c.isdigit() and len(c) <= 10 for c in ciks):
        raise SettingsError(f"{SEC_CIKS} must be a comma-separated list of CIK numbers, got {env.get(SEC_CIKS)!r}")
    return tuple(c.zfill(10) for c in ciks)


def _feeds(env: dict[str, str]) -> dict[str, str]:
    feeds = {}
    for item in _list(env, NEWS_FEEDS, DEFAULT_NEWS_FEEDS):
        name, _, url = item.partition("=")
        if not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise SettingsError(f"{NEWS_FEEDS} takes name=url pairs separated by commas, got {item!r}")
        feeds[name.strip().lower()] = url.strip()
    return feeds


def load(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get(HOME) or ".omc")
    db_from_env = bool(env.get(DATABASE_URL))
    return Settings(
        home=home,
        database_url=env[DATABASE_URL] if db_from_env else default_database_url(home),
        database_url_from_env=db_from_env,
        coinspot_url=_url(env, COINSPOT_URL, "https://www.coinspot.com.au"),
        zendesk_url=_url(env, ZENDESK_URL, "https://coinspot.zendesk.com"),
        sec_data_url=_url(env, SEC_DATA_URL, "https://data.sec.gov"),
        sec_archives_url=_url(env, SEC_ARCHIVES_URL, "https://www.sec.gov"),
        defillama_url=_url(env, DEFILLAMA_URL, "https://api.llama.fi"),
        cryptopanic_url=_url(env, CRYPTOPANIC_URL, "https://cryptopanic.com"),
        reddit_url=_url(env, REDDIT_URL, "https://oauth.reddit.com"),
        coinspot_watchlist=_coins(env, COINSPOT_WATCHLIST, DEFAULT_WATCHLIST),
        # CoinSpot allows 1000 requests a minute per key; stay well under it.
        coinspot_rate_limit=_float(env, COINSPOT_RATE_LIMIT, 10.0, 0.1),
        http_timeout=_float(env, HTTP_TIMEOUT, 10.0, 0.1),
        http_retries=int(_float(env, HTTP_RETRIES, 4, 0)),
        candles_start=env.get(CANDLES_START) or "2025-01-01-00:00",
        daily_start=env.get(DAILY_START) or "2025-01-01",
        freshness_minutes=int(_float(env, FRESHNESS_MINUTES, 10, 1)),
        sec_user_agent=env.get(SEC_USER_AGENT) or None,
        # The SEC's fair-access rule: at most 10 requests a second per user.
        sec_rate_limit=_float(env, SEC_RATE_LIMIT, 10.0, 0.1, maximum=10.0),
        sec_ciks=_ciks(env),
        sec_forms=_list(env, SEC_FORMS, DEFAULT_SEC_FORMS),
        zendesk_category=env.get(ZENDESK_CATEGORY) or DEFAULT_ZENDESK_CATEGORY,
        browser_path=env.get(BROWSER_PATH) or "/usr/bin/chromium",
        # Dagster's daemon evaluates sensors no faster than about every 5 s.
        listing_sensor_seconds=int(_float(env, LISTING_SENSOR_SECONDS, 10, 5)),
        filing_sensor_seconds=int(_float(env, FILING_SENSOR_SECONDS, 60, 5)),
        catalyst_history_days=int(_float(env, CATALYST_HISTORY_DAYS, 30, 0)),
        defillama_stablecoins_url=_url(env, DEFILLAMA_STABLECOINS_URL, "https://stablecoins.llama.fi"),
        defillama_chains=_list(env, DEFILLAMA_CHAINS, DEFAULT_CHAINS),
        defillama_protocols=_list(env, DEFILLAMA_PROTOCOLS, DEFAULT_PROTOCOLS),
        defillama_top_protocols=int(_float(env, DEFILLAMA_TOP_PROTOCOLS, 20, 0)),
        news_feeds=_feeds(env),
        cryptopanic_token=env.get(CRYPTOPANIC_TOKEN) or None,
        reddit_auth_url=_url(env, REDDIT_AUTH_URL, "https://www.reddit.com"),
        reddit_client_id=env.get(REDDIT_CLIENT_ID) or None,
        reddit_client_secret=env.get(REDDIT_CLIENT_SECRET) or None,
        reddit_username=env.get(REDDIT_USERNAME) or None,
        reddit_subreddits=_list(env, REDDIT_SUBREDDITS, DEFAULT_SUBREDDITS),
    )
