"""Every environment variable the project reads: one typed declaration each, with its bounds.

Nothing else in the project calls ``os.environ``. A variable is ``OMC_`` plus its field's
name in capitals (``http_timeout`` is ``OMC_HTTP_TIMEOUT``); ``settings.HTTP_TIMEOUT``
spells that name for code that must point at a variable (errors, ``EnvVar``, the sandbox).
A value out of bounds, NaN or infinite is refused with the variable's name: no setting can
switch a safety limit off. :func:`current` reads the environment once per process, when
first asked, never at import.
"""

from __future__ import annotations

import contextvars
import functools
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from decimal import Decimal
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

PREFIX = "OMC_"

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

# Comma-separated in the environment (not JSON, pydantic-settings' default for collections).
Items = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use."""


def _finite(default: float, low: float, high: float) -> Any:
    return Field(default, ge=low, le=high, allow_inf_nan=False)


def _money(default: int, high: int, low_inclusive: bool = False) -> Any:
    """An AUD amount: exact (Decimal), finite, above zero (or zero allowed), to the cent."""
    bound = {"ge": 0} if low_inclusive else {"gt": 0}
    return Field(Decimal(default), le=high, decimal_places=2, allow_inf_nan=False, **bound)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore", env_ignore_empty=True)

    home: Path = Path(".omc")
    # None: the folder `history` under `home` (see `history_folder`).
    history_dir: Path | None = None
    # None: the embedded SQLite file under `home` (see `database_url_or_default`).
    database_url: SecretStr | None = None

    coinspot_url: str = "https://www.coinspot.com.au"
    zendesk_url: str = "https://coinspot.zendesk.com"
    sec_data_url: str = "https://data.sec.gov"
    sec_archives_url: str = "https://www.sec.gov"
    defillama_url: str = "https://api.llama.fi"
    defillama_stablecoins_url: str = "https://stablecoins.llama.fi"
    cryptopanic_url: str = "https://cryptopanic.com"
    reddit_url: str = "https://oauth.reddit.com"
    reddit_auth_url: str = "https://www.reddit.com"

    coinspot_watchlist: Items = DEFAULT_WATCHLIST
    # CoinSpot allows 1000 requests a minute per key (16.7 a second); stay under it.
    coinspot_rate_limit: float = _finite(10.0, 0.1, 16.0)
    http_timeout: float = _finite(10.0, 0.1, 300.0)
    http_retries: int = Field(4, ge=0, le=10)
    candles_start: str = "2025-01-01"
    daily_start: str = "2025-01-01"
    freshness_minutes: int = Field(10, ge=1, le=24 * 60)

    sec_user_agent: str | None = None
    # The SEC's fair-access rule: at most 10 requests a second per user.
    sec_rate_limit: float = _finite(10.0, 0.1, 10.0)
    sec_ciks: Items = DEFAULT_SEC_CIKS
    sec_forms: Items = DEFAULT_SEC_FORMS
    zendesk_category: str = Field(DEFAULT_ZENDESK_CATEGORY, pattern=r"^\d+$")
    browser_path: str = "/usr/bin/chromium"
    # Dagster's daemon evaluates sensors no faster than about every 5 s.
    listing_sensor_seconds: int = Field(10, ge=5, le=3600)
    filing_sensor_seconds: int = Field(60, ge=5, le=24 * 3600)
    catalyst_history_days: int = Field(30, ge=0, le=365)

    defillama_chains: Items = DEFAULT_CHAINS
    defillama_protocols: Items = DEFAULT_PROTOCOLS
    defillama_top_protocols: int = Field(20, ge=0, le=500)

    news_feeds: Annotated[dict[str, str], NoDecode] = Field(default_factory=lambda: _feeds(DEFAULT_NEWS_FEEDS))
    cryptopanic_token: SecretStr | None = None
    reddit_client_id: SecretStr | None = None
    reddit_client_secret: SecretStr | None = None
    reddit_username: str | None = None
    reddit_subreddits: Items = DEFAULT_SUBREDDITS

    # --- trading (README: "Trading") ---------------------------------------------------
    # Live trading needs all three: trading_mode=live, trading_live_confirm=yes, both key pairs.
    trading_mode: Literal["paper", "live"] = "paper"
    trading_live_confirm: str | None = None
    coinspot_api_key: SecretStr | None = None
    coinspot_api_secret: SecretStr | None = None
    coinspot_readonly_key: SecretStr | None = None
    coinspot_readonly_secret: SecretStr | None = None
    # "on" refuses every order, sells included, whatever `omc trading resume` said.
    kill_switch: Literal["on", "off"] = "off"
    trade_aud: Decimal = _money(100, high=100_000)
    paper_start_aud: Decimal = _money(10_000, high=10_000_000)
    # CoinSpot's instant-order fee, in percent of the AUD total.
    trading_fee_pct: Decimal = Field(Decimal("1"), ge=0, le=10, allow_inf_nan=False)
    max_quote_age_seconds: int = Field(120, ge=5, le=3600)
    max_event_age_minutes: int = Field(10, ge=1, le=24 * 60)
    trade_btc_purchases: bool = False
    take_profit_pct: Decimal = Field(Decimal("20"), gt=0, le=10_000, allow_inf_nan=False)
    stop_loss_pct: Decimal = Field(Decimal("10"), gt=0, lt=100, allow_inf_nan=False)
    max_holding_hours: int = Field(7 * 24, ge=1, le=365 * 24)
    slippage_pct: Decimal = Field(Decimal("2"), ge=0, le=1000, allow_inf_nan=False)
    risk_max_order_aud: Decimal = _money(250, high=1_000_000)
    risk_daily_spend_aud: Decimal = _money(1000, high=10_000_000)
    risk_max_coin_exposure_aud: Decimal = _money(500, high=10_000_000)
    risk_max_total_exposure_aud: Decimal = _money(2000, high=100_000_000)
    risk_max_open_positions: int = Field(10, ge=0, le=1000)
    risk_daily_loss_aud: Decimal = _money(200, high=10_000_000, low_inclusive=True)
    risk_cooldown_minutes: int = Field(60, ge=0, le=7 * 24 * 60)
    # Coins the strategy may buy (empty: any) and may never buy (stablecoins by default).
    trading_allow: Items = ()
    trading_deny: Items = ("usdt", "usdc", "dai")

    @field_validator("coinspot_url", "zendesk_url", "sec_data_url", "sec_archives_url", "defillama_url",
                     "defillama_stablecoins_url", "cryptopanic_url", "reddit_url", "reddit_auth_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("coinspot_watchlist", "sec_ciks", "sec_forms", "defillama_chains", "defillama_protocols",
                     "reddit_subreddits", "trading_allow", "trading_deny", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _items(value) if isinstance(value, str) else value

    @field_validator("coinspot_watchlist", "trading_allow", "trading_deny")
    @classmethod
    def _coins(cls, coins: tuple[str, ...], info) -> tuple[str, ...]:
        coins = tuple(dict.fromkeys(c.lower() for c in coins))
        if (info.field_name == "coinspot_watchlist" and not coins) or not all(c.isalnum() for c in coins):
            raise ValueError("must be a comma-separated list of coin symbols")
        return coins

    @field_validator("sec_ciks")
    @classmethod
    def _ciks(cls, ciks: tuple[str, ...]) -> tuple[str, ...]:
        if not ciks or not all(c.isdigit() and len(c) <= 10 for c in ciks):
            raise ValueError("must be a comma-separated list of CIK numbers")
        return tuple(c.zfill(10) for c in ciks)

    @field_validator("sec_forms", "defillama_chains", "reddit_subreddits")
    @classmethod
    def _not_empty(cls, items: tuple[str, ...]) -> tuple[str, ...]:
        if not items:
            raise ValueError("must name at least one")
        return items

    @field_validator("news_feeds", mode="before")
    @classmethod
    def _news_feeds(cls, value: Any) -> Any:
        return parse_feeds(value) if isinstance(value, str) else value

    @field_validator("candles_start")
    @classmethod
    def _candles_day(cls, value: str) -> str:
        # Candles were partitioned by hour before: an hour given the old way means its day. The
        # partitions are weeks: they start on the Monday of this day's week.
        if len(value.strip()) == len("2025-01-01-00:00"):
            return _past_time(value, "%Y-%m-%d-%H:%M", "a day like 2025-01-01")[:10]
        return _past_time(value, "%Y-%m-%d", "a day like 2025-01-01")

    @field_validator("daily_start")
    @classmethod
    def _day(cls, value: str) -> str:
        return _past_time(value, "%Y-%m-%d", "a day like 2025-01-01")

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:
            url = sa.make_url(value.get_secret_value())
        except sa.exc.ArgumentError:
            raise ValueError("is not a database URL (e.g. postgresql+psycopg://user:password@host:5432/db)") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"names the {url.get_backend_name()} backend: only sqlite and postgresql are supported")
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            folder = Path(url.database).parent
            if not folder.is_dir():
                raise ValueError(f"puts the SQLite file in {folder}, which does not exist")
        return value

    # --- what the rest of the project reads -------------------------------------------

    @property
    def database_url_from_env(self) -> bool:
        return self.database_url is not None

    @property
    def ledger_database_url(self) -> str:
        """The ledger database: ``OMC_DATABASE_URL``, else the SQLite file under ``home``."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return default_database_url(self.home)

    @property
    def history_folder(self) -> Path:
        """Where OHLCV files wait for an import that names none: ``OMC_HISTORY_DIR``, else ``home``/history."""
        return (self.history_dir or self.home / "history").resolve()

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # Only the environment (or the mapping `load` was given): no .env file, no secrets dir.
        return (_Environment(settings_cls),)


def default_database_url(home: Path) -> str:
    return f"sqlite:///{(home / 'omc.db').resolve()}"


def parse_feeds(raw: str) -> dict[str, str]:
    """``OMC_NEWS_FEEDS``'s ``name=url,...`` as {name: url} (the news resource reads it so)."""
    return _feeds(_items(raw))


def _items(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))


def _feeds(items: tuple[str, ...]) -> dict[str, str]:
    feeds = {}
    for item in items:
        name, _, url = item.partition("=")
        if not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"takes name=url pairs separated by commas, got {item!r}")
        feeds[name.strip().lower()] = url.strip()
    if not feeds:
        raise ValueError("must name at least one feed")
    return feeds


def _past_time(value: str, form: str, example: str) -> str:
    try:
        when = datetime.strptime(value.strip(), form).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"must be {example}") from None
    if when > datetime.now(timezone.utc):
        raise ValueError("is in the future: partitions would start after today")
    return value.strip()


# --- reading the environment --------------------------------------------------------------

_given_environment: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("omc_environment",
                                                                                             default=None)


class _Environment(EnvSettingsSource):
    """The process environment, or the mapping :func:`load` was handed (tests, `omc config`)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        given = _given_environment.get()
        if given is None:
            return super()._load_env_vars()
        return parse_env_vars(given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


# What may hold a secret: never shown (errors, `omc config`); definitions.build_resources passes
# each to Dagster as an EnvVar. OMC_NEWS_FEEDS is one: a feed URL may carry a key.
SECRETS = frozenset({"database_url", "news_feeds", "cryptopanic_token", "reddit_client_id", "reddit_client_secret",
                     "coinspot_api_key", "coinspot_api_secret", "coinspot_readonly_key", "coinspot_readonly_secret"})


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process environment); ``SettingsError`` names
    every variable that is wrong, and never shows a secret's value."""
    token = _given_environment.set(dict(os.environ if env is None else env))
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(error) for error in exc.errors())) from None
    finally:
        _given_environment.reset(token)


def _describe(error: dict) -> str:
    field = str(error["loc"][0]) if error["loc"] else "?"
    raw = error.get("input")
    shown = "" if field in SECRETS or isinstance(raw, (dict, list)) else f"={raw!r}"
    return f"{env_name(field)}{shown}: {_plainly(error, raw)}"


def _plainly(error: dict, raw: Any) -> str:
    """Pydantic's complaint in the project's words."""
    kind, bounds = error["type"], error.get("ctx") or {}
    if kind == "finite_number" or (isinstance(raw, str) and raw.strip().lower() in ("nan", "inf", "-inf", "infinity")):
        return "must be a finite number"
    if kind == "greater_than_equal":
        return f"must be at least {bounds['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {bounds['le']}"
    if kind in ("int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_parsing", "decimal_parsing"):
        return "must be a number"
    if kind == "decimal_max_places":
        return "must be to the cent (2 decimal places at most)"
    if kind == "greater_than":
        return f"must be above {bounds['gt']}"
    if kind == "less_than":
        return f"must be below {bounds['lt']}"
    if kind == "literal_error":
        return f"must be one of {bounds.get('expected', '')}"
    if kind == "bool_parsing":
        return "must be true or false"
    return error["msg"].removeprefix("Value error, ")


@functools.cache
def current() -> Settings:
    """The process's settings, read from the environment once, on first use."""
    return load()


def __getattr__(name: str) -> str:
    """``settings.HTTP_TIMEOUT`` -> ``"OMC_HTTP_TIMEOUT"``: variable names come from the fields."""
    if name.isupper() and name.lower() in Settings.model_fields:
        return env_name(name.lower())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
