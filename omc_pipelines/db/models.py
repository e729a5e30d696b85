"""The ledgers' tables. Every row has a natural key with a unique constraint on it,
so every write can be an upsert and re-runs converge."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from omc_pipelines.db.types import BigId, NameList, StringList, UtcDateTime
from omc_trading.columns import Money
# One naming convention for the ledgers' and the trading tables' constraints.
from omc_trading.tables import NAMING


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class PriceSnapshot(Base):
    """One coin's price on one market at one observation (CoinSpot /latest)."""

    __tablename__ = "exchange_price_snapshots"
    __table_args__ = (sa.UniqueConstraint("coin", "market", "observed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(sa.String(32))
    market: Mapped[str] = mapped_column(sa.String(16))
    # None where CoinSpot sent "NaN" or nothing (illiquid pairs).
    bid: Mapped[float | None] = mapped_column(sa.Float)
    ask: Mapped[float | None] = mapped_column(sa.Float)
    last: Mapped[float | None] = mapped_column(sa.Float)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Trade(Base):
    """A completed trade from CoinSpot's public history.

    CoinSpot gives trades no id, so the key is everything that describes one; two
    trades identical to the millisecond in every field count as one.
    """

    __tablename__ = "exchange_trades"
    __table_args__ = (sa.UniqueConstraint("coin", "market", "sold_at", "side", "amount", "rate"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(sa.String(32))
    market: Mapped[str] = mapped_column(sa.String(16))
    side: Mapped[str] = mapped_column(sa.String(4))
    amount: Mapped[float] = mapped_column(sa.Float)
    rate: Mapped[float] = mapped_column(sa.Float)
    total: Mapped[float] = mapped_column(sa.Float)
    sold_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Candle(Base):
    """Hourly OHLCV for one coin and market, from trades (or snapshots when none)."""

    __tablename__ = "exchange_candles"
    __table_args__ = (sa.UniqueConstraint("coin", "market", "hour_start"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(sa.String(32))
    market: Mapped[str] = mapped_column(sa.String(16))
    hour_start: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    open: Mapped[float] = mapped_column(sa.Float)
    high: Mapped[float] = mapped_column(sa.Float)
    low: Mapped[float] = mapped_column(sa.Float)
    close: Mapped[float] = mapped_column(sa.Float)
    volume: Mapped[float] = mapped_column(sa.Float)
    quote_volume: Mapped[float] = mapped_column(sa.Float)
    trade_count: Mapped[int] = mapped_column(sa.Integer)
    # "trades" or "snapshots": where the hour's prices came from.
    source: Mapped[str] = mapped_column(sa.String(16))
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CatalystEvent(Base):
    """An event that may move prices: a filing, a listing announcement."""

    __tablename__ = "catalyst_events"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id"),
        sa.CheckConstraint("impact_score BETWEEN 1 AND 10", name="impact_score_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(32))
    external_id: Mapped[str] = mapped_column(sa.String(128))
    event_type: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    currencies: Mapped[list[str]] = mapped_column(StringList)
    impact_score: Mapped[int] = mapped_column(sa.SmallInteger)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    url: Mapped[str | None] = mapped_column(sa.Text)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


# What a catalyst event must be before anything trades on it. The Catalyst ledger's blocking
# checks judge its rows by these rules, and the trading side judges each event it reads by the
# same ones: an event its validation rejects is never traded.

# Published after we saw it, beyond this much clock skew, means a wrong time zone.
CLOCK_SKEW = timedelta(minutes=5)
SYMBOL = re.compile(r"^[A-Z0-9]{2,10}$")


def _without_id(event) -> str | None:
    return None if (event.external_id or "").strip() else "it has no source id"


def _from_the_future(event) -> str | None:
    if event.published_at > event.detected_at + CLOCK_SKEW:
        return f"published {event.published_at:%Y-%m-%d %H:%M:%S} after it was detected ({event.detected_at:%H:%M:%S})"
    return None


def _not_symbols(event) -> str | None:
    bad = [c for c in event.currencies if not SYMBOL.match(c)]
    return f"currencies {bad} are not coin symbols" if bad else None


def _impact_out_of_range(event) -> str | None:
    return None if 1 <= event.impact_score <= 10 else f"impact {event.impact_score} is outside 1-10"


EVENT_RULES = {
    "events_have_source_ids": _without_id,
    "no_events_from_the_future": _from_the_future,
    "currencies_are_symbols": _not_symbols,
    "impact_in_range": _impact_out_of_range,
}


def event_problems(event) -> list[str]:
    """Why ``event`` (a catalyst_events row) must not be acted on; empty when it is sound."""
    return [problem for rule in EVENT_RULES.values() if (problem := rule(event))]


class ChainTvl(Base):
    """A chain's total value locked on one UTC day (DeFiLlama's daily history)."""

    __tablename__ = "glass_chain_tvl"
    __table_args__ = (sa.UniqueConstraint("chain", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chain: Mapped[str] = mapped_column(sa.String(64))
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    tvl_usd: Mapped[float] = mapped_column(sa.Float)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProtocolSnapshot(Base):
    """A protocol's TVL, category and chains as DeFiLlama showed them on ``as_of``."""

    __tablename__ = "glass_protocols"
    __table_args__ = (sa.UniqueConstraint("slug", "as_of"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(sa.String(128))
    as_of: Mapped[date] = mapped_column(sa.Date, index=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    symbol: Mapped[str | None] = mapped_column(sa.String(32))
    category: Mapped[str | None] = mapped_column(sa.String(64))
    chains: Mapped[list[str]] = mapped_column(NameList)
    tvl_usd: Mapped[float | None] = mapped_column(sa.Float)
    change_1d: Mapped[float | None] = mapped_column(sa.Float)
    mcap: Mapped[float | None] = mapped_column(sa.Float)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProtocolFees(Base):
    """A protocol's fees or revenue (``data_type``) as DeFiLlama showed them on ``as_of``."""

    __tablename__ = "glass_protocol_fees"
    __table_args__ = (sa.UniqueConstraint("slug", "data_type", "as_of"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(sa.String(128))
    data_type: Mapped[str] = mapped_column(sa.String(16))
    as_of: Mapped[date] = mapped_column(sa.Date, index=True)
    name: Mapped[str] = mapped_column(sa.String(256))
    category: Mapped[str | None] = mapped_column(sa.String(64))
    total_24h: Mapped[float | None] = mapped_column(sa.Float)
    total_7d: Mapped[float | None] = mapped_column(sa.Float)
    total_30d: Mapped[float | None] = mapped_column(sa.Float)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class StablecoinSupply(Base):
    """A stablecoin's circulating supply (in its peg's unit) on ``as_of``."""

    __tablename__ = "glass_stablecoin_supply"
    __table_args__ = (sa.UniqueConstraint("stablecoin_id", "as_of"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stablecoin_id: Mapped[str] = mapped_column(sa.String(32))
    as_of: Mapped[date] = mapped_column(sa.Date, index=True)
    symbol: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[str] = mapped_column(sa.String(128))
    peg_type: Mapped[str | None] = mapped_column(sa.String(32))
    circulating: Mapped[float | None] = mapped_column(sa.Float)
    price: Mapped[float | None] = mapped_column(sa.Float)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class HumanItem(Base):
    """Something people said: a news entry, a CryptoPanic post, a Reddit post, scored."""

    __tablename__ = "human_items"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    external_id: Mapped[str] = mapped_column(sa.String(1024))
    title: Mapped[str] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str | None] = mapped_column(sa.Text)
    author: Mapped[str | None] = mapped_column(sa.String(256))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    currencies: Mapped[list[str]] = mapped_column(StringList)
    engagement: Mapped[dict] = mapped_column(sa.JSON)
    # In [-1, 1]: the model's score, adjusted where the votes say more.
    sentiment: Mapped[float] = mapped_column(sa.Float)
    # At least 1: how much this item counts in the daily aggregate.
    weight: Mapped[float] = mapped_column(sa.Float)
    collected_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CoinSentimentDaily(Base):
    """What people said about one coin on one UTC day: the aggregate trading reads."""

    __tablename__ = "human_coin_sentiment_daily"
    __table_args__ = (sa.UniqueConstraint("coin", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(sa.String(16))
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    items: Mapped[int] = mapped_column(sa.Integer)
    mean_sentiment: Mapped[float] = mapped_column(sa.Float)
    weighted_sentiment: Mapped[float] = mapped_column(sa.Float)
    share_positive: Mapped[float] = mapped_column(sa.Float)
    share_negative: Mapped[float] = mapped_column(sa.Float)
    total_weight: Mapped[float] = mapped_column(sa.Float)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImportedCandle(Base):
    """OHLCV history imported from a file (freqtrade's or ccxt's), marked with where it came from.

    Kept apart from ``exchange_candles``: those are rebuilt from CoinSpot's trades hour by hour
    and a backfill replaces its hours, which would erase an import sharing the table."""

    __tablename__ = "exchange_imported_candles"
    __table_args__ = (sa.UniqueConstraint("source", "coin", "market", "interval_seconds", "open_time"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Who made the history, as the user named it on import, e.g. "freqtrade:binance".
    source: Mapped[str] = mapped_column(sa.String(64))
    coin: Mapped[str] = mapped_column(sa.String(32))
    market: Mapped[str] = mapped_column(sa.String(16))  # the quote currency, e.g. "aud", "usdt"
    interval_seconds: Mapped[int] = mapped_column(sa.Integer)  # 60 for 1m candles, 3600 for 1h
    open_time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    open: Mapped[float] = mapped_column(sa.Float)
    high: Mapped[float] = mapped_column(sa.Float)
    low: Mapped[float] = mapped_column(sa.Float)
    close: Mapped[float] = mapped_column(sa.Float)
    volume: Mapped[float] = mapped_column(sa.Float)
    file_name: Mapped[str] = mapped_column(sa.String(256))  # the file's name, not its folder
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EventReturn(Base):
    """One catalyst event's coin over one horizon from one anchor (detection or publication).

    ``measurable`` is false, with ``reason``, when no price at the needed resolution covers
    the horizon's start or end: never an interpolated guess."""

    __tablename__ = "research_event_returns"
    __table_args__ = (sa.UniqueConstraint("event_source", "event_external_id", "coin", "anchor", "horizon"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_source: Mapped[str] = mapped_column(sa.String(32))
    event_external_id: Mapped[str] = mapped_column(sa.String(128))
    event_type: Mapped[str] = mapped_column(sa.String(32))
    coin: Mapped[str] = mapped_column(sa.String(32))
    anchor: Mapped[str] = mapped_column(sa.String(16))  # "detected" or "published"
    anchor_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    horizon: Mapped[str] = mapped_column(sa.String(8))  # "5m", "1h", "4h", "24h"
    horizon_seconds: Mapped[int] = mapped_column(sa.Integer)
    measurable: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    resolution: Mapped[str | None] = mapped_column(sa.String(8))  # "minute" or "hour"
    price_source: Mapped[str | None] = mapped_column(sa.String(64))
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the observations used
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    price_start: Mapped[float | None] = mapped_column(sa.Float)
    price_end: Mapped[float | None] = mapped_column(sa.Float)
    coin_return: Mapped[float | None] = mapped_column(sa.Float)  # a ratio: 0.05 is +5 %
    market: Mapped[str | None] = mapped_column(sa.String(16))  # "btc" or "basket"
    market_return: Mapped[float | None] = mapped_column(sa.Float)
    abnormal_return: Mapped[float | None] = mapped_column(sa.Float)  # coin_return - market_return
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EventStudySummary(Base):
    """The event study per event type, source, anchor, horizon and measure (raw or abnormal)."""

    __tablename__ = "research_event_study"
    __table_args__ = (sa.UniqueConstraint("event_type", "event_source", "anchor", "horizon", "measure"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(sa.String(32))
    event_source: Mapped[str] = mapped_column(sa.String(32))
    anchor: Mapped[str] = mapped_column(sa.String(16))
    horizon: Mapped[str] = mapped_column(sa.String(8))
    measure: Mapped[str] = mapped_column(sa.String(16))  # "return" or "abnormal"
    count: Mapped[int] = mapped_column(sa.Integer)
    mean: Mapped[float | None] = mapped_column(sa.Float)
    median: Mapped[float | None] = mapped_column(sa.Float)
    hit_rate: Mapped[float | None] = mapped_column(sa.Float)  # share above zero
    ci_low: Mapped[float | None] = mapped_column(sa.Float)  # bootstrap interval of the mean
    ci_high: Mapped[float | None] = mapped_column(sa.Float)
    confidence: Mapped[float] = mapped_column(sa.Float)  # 0.95
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Backtest(Base):
    """One backtest of one variant (its settings) or of its random-entry baseline."""

    __tablename__ = "research_backtests"
    __table_args__ = (sa.UniqueConstraint("variant", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant: Mapped[str] = mapped_column(sa.String(128))  # e.g. "aud=100 tp=20 sl=10 hold=24h"
    kind: Mapped[str] = mapped_column(sa.String(16))  # "strategy" or "baseline"
    settings: Mapped[dict] = mapped_column(sa.JSON)  # every setting the replay used, as text
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    events: Mapped[int] = mapped_column(sa.Integer)
    trades: Mapped[int] = mapped_column(sa.Integer)
    start_aud: Mapped[Decimal] = mapped_column(Money)
    end_aud: Mapped[Decimal] = mapped_column(Money)
    pnl_aud: Mapped[Decimal] = mapped_column(Money)
    fees_aud: Mapped[Decimal] = mapped_column(Money)
    total_return_pct: Mapped[Decimal] = mapped_column(Money)
    hit_rate: Mapped[float | None] = mapped_column(sa.Float)
    max_drawdown_pct: Mapped[Decimal] = mapped_column(Money)
    exposure_pct: Mapped[float] = mapped_column(sa.Float)  # share of the period with a position open
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BacktestTrade(Base):
    """One round trip of a backtest: entry, exit, and what it made after fees."""

    __tablename__ = "research_backtest_trades"
    __table_args__ = (sa.UniqueConstraint("variant", "kind", "coin", "entry_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(16))
    coin: Mapped[str] = mapped_column(sa.String(32))
    event_source: Mapped[str | None] = mapped_column(sa.String(32))
    event_external_id: Mapped[str | None] = mapped_column(sa.String(128))
    entry_at: Mapped[datetime] = mapped_column(UtcDateTime)
    entry_rate: Mapped[Decimal] = mapped_column(Money)
    coin_amount: Mapped[Decimal] = mapped_column(Money)
    aud_in: Mapped[Decimal] = mapped_column(Money)  # paid, fee included
    exit_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None: still open at the end
    exit_rate: Mapped[Decimal | None] = mapped_column(Money)
    aud_out: Mapped[Decimal | None] = mapped_column(Money)  # received, fee deducted
    fees_aud: Mapped[Decimal] = mapped_column(Money)
    pnl_aud: Mapped[Decimal | None] = mapped_column(Money)
    exit_reason: Mapped[str | None] = mapped_column(sa.Text)
