"""What the trading core needs from the pipelines: its configuration, prices, events, a broker.

``omc_trading`` never imports the pipelines; this module hands it what it asks for: a
``TradingConfig`` from the settings, quotes from CoinSpot's public API and the Exchange
ledger, catalyst events from the Catalyst ledger (only those that pass its rules), and the
broker of the effective mode: paper unless live is asked for, confirmed, and keyed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from omc_pipelines.db.models import CatalystEvent, PriceSnapshot, event_problems
from omc_pipelines.settings import Settings
from omc_pipelines.sources.coinspot import CoinSpotPublic
from omc_pipelines.sources.http import SourceError
from omc_trading.broker import Quote
from omc_trading.config import TradingConfig
from omc_trading.strategy import Catalyst
from omc_trading.tables import signals

# The trading settings that are rules, not secrets: the UI shows them on the trading resource.
TRADING_RULES = (
    "trading_mode", "trading_live_confirm", "kill_switch", "trade_aud", "paper_start_aud", "trading_fee_pct",
    "max_quote_age_seconds", "max_event_age_minutes", "trade_btc_purchases", "take_profit_pct", "stop_loss_pct",
    "max_holding_hours", "slippage_pct", "risk_max_order_aud", "risk_daily_spend_aud", "risk_max_coin_exposure_aud",
    "risk_max_total_exposure_aud", "risk_max_open_positions", "risk_daily_loss_aud", "risk_cooldown_minutes",
    "trading_allow", "trading_deny",
)
# A snapshot this recent is as good as asking CoinSpot again (and costs no request).
SNAPSHOT_AS_QUOTE = timedelta(seconds=30)
# A quote asked for this recently is given again: sizing an order and filling it on paper ask
# one after the other, and should see one price (CoinSpot's rate limit thanks us too).
QUOTE_REUSE = timedelta(seconds=2)


def trading_config(config: Settings) -> TradingConfig:
    return TradingConfig(
        mode=config.trading_mode,
        live_confirmed=(config.trading_live_confirm or "").strip().lower() == "yes",
        trade_aud=config.trade_aud,
        fee_rate=config.trading_fee_pct / 100,
        paper_start_aud=config.paper_start_aud,
        max_quote_age=timedelta(seconds=config.max_quote_age_seconds),
        max_event_age=timedelta(minutes=config.max_event_age_minutes),
        btc_purchase_enabled=config.trade_btc_purchases,
        take_profit_pct=config.take_profit_pct,
        stop_loss_pct=config.stop_loss_pct,
        max_holding=timedelta(hours=config.max_holding_hours),
        max_order_aud=config.risk_max_order_aud,
        max_daily_spend_aud=config.risk_daily_spend_aud,
        max_coin_exposure_aud=config.risk_max_coin_exposure_aud,
        max_total_exposure_aud=config.risk_max_total_exposure_aud,
        max_open_positions=config.risk_max_open_positions,
        daily_loss_limit_aud=config.risk_daily_loss_aud,
        cooldown=timedelta(minutes=config.risk_cooldown_minutes),
        allow_coins=frozenset(config.trading_allow),
        deny_coins=frozenset(config.trading_deny),
        slippage_pct=config.slippage_pct,
        kill_switch_forced=config.kill_switch == "on",
    )


def _exact(value: float | None) -> Decimal | None:
    # The Exchange ledger keeps prices as floats; their shortest repr is the decimal CoinSpot sent.
    return None if value is None else Decimal(repr(value))


def latest_prices(conn: sa.Connection) -> dict[str, Quote]:
    """The newest AUD price of every coin the Exchange ledger has seen."""
    s = PriceSnapshot
    newest = (sa.select(s.coin, sa.func.max(s.observed_at).label("at")).where(s.market == "aud")
              .group_by(s.coin).subquery())
    rows = conn.execute(sa.select(s.coin, s.bid, s.ask, s.observed_at).join(
        newest, sa.and_(s.coin == newest.c.coin, s.observed_at == newest.c.at)).where(s.market == "aud")).all()
    return {r.coin: Quote(r.coin, _exact(r.bid), _exact(r.ask), r.observed_at, "exchange_price_snapshots")
            for r in rows if r.bid is not None and r.ask is not None}


class LedgerQuotes:
    """CoinSpot's live quote for a coin (``/buyprice`` and ``/sellprice``), or the Exchange
    ledger's newest snapshot when it is a few seconds old; the snapshot also stands in when
    the public API fails. None when neither has a price: a paper order then misses its fill."""

    def __init__(self, engine: sa.Engine, public: CoinSpotPublic,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.engine, self.public, self.clock = engine, public, clock
        self._asked: dict[str, Quote] = {}

    def quote(self, coin: str) -> Quote | None:
        coin, now = coin.lower(), self.clock()
        asked = self._asked.get(coin)
        if asked is not None and now - asked.at <= QUOTE_REUSE:
            return asked
        with self.engine.connect() as conn:
            stored = latest_prices(conn).get(coin)
        if stored is not None and now - stored.at <= SNAPSHOT_AS_QUOTE:
            return stored
        try:
            ask, bid = self.public.rate("buy", coin), self.public.rate("sell", coin)
        except SourceError:
            return stored  # older, and the paper broker judges its age
        self._asked[coin] = Quote(coin, bid, ask, now, "coinspot /pubapi/v2/buyprice and /sellprice")
        return self._asked[coin]


def recent_catalysts(conn: sa.Connection, since: datetime, mode: str) -> tuple[list[Catalyst], list[str]]:
    """Catalyst events recorded since ``since`` that the ``mode`` book has no signal of yet,
    oldest first, as the strategy reads them; and why each event that fails the Catalyst
    ledger's rules was left out. (An event's signals are recorded in one transaction: one
    signal means all of them.)"""
    judged = sa.select(signals.c.id).where(signals.c.mode == mode, signals.c.event_source == CatalystEvent.source,
                                           signals.c.event_external_id == CatalystEvent.external_id)
    rows = conn.execute(sa.select(CatalystEvent).where(CatalystEvent.collected_at >= since, ~judged.exists())
                        .order_by(CatalystEvent.published_at, CatalystEvent.id)).all()
    return as_catalysts(rows)


def stored_catalysts(conn: sa.Connection, start: datetime | None = None,
                     end: datetime | None = None) -> tuple[list[Catalyst], list[str]]:
    """Every catalyst event detected in [start, end] (all when not given), in the order they were
    detected, as the strategy reads them; and why each left out fails the Catalyst ledger's rules.
    The research replays these: the same events, judged by the same rules, as trading reads."""
    query = sa.select(CatalystEvent).order_by(CatalystEvent.detected_at, CatalystEvent.id)
    if start is not None:
        query = query.where(CatalystEvent.detected_at >= start)
    if end is not None:
        query = query.where(CatalystEvent.detected_at <= end)
    return as_catalysts(conn.execute(query).all())


def as_catalysts(rows) -> tuple[list[Catalyst], list[str]]:
    """``catalyst_events`` rows as the strategy reads them, leaving out (with the reason) each
    that fails the Catalyst ledger's rules."""
    events, rejected = [], []
    for row in rows:
        problems = event_problems(row)
        if problems:
            rejected.append(f"{row.source} {row.external_id}: not traded, {'; '.join(problems)}")
            continue
        events.append(Catalyst(source=row.source, external_id=row.external_id, event_type=row.event_type,
                               currencies=list(row.currencies), published_at=row.published_at,
                               detected_at=row.detected_at, title=row.title))
    return events, rejected
