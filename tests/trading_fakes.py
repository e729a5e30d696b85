"""What the trading tests share: a clock they move, quotes they set, brokers that misbehave on cue.

The brokers here wrap the real paper broker (real wallet, real fills in the real database);
they only add what the outside world does to a live broker: answers that never come back,
a process that dies half way, and a count of every order placed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from omc_trading.broker import Fill, OrderOutcomeUnknown, OrderRequest, Quote
from omc_trading.config import TradingConfig
from omc_trading.paper import PaperBroker
from omc_trading.strategy import Catalyst
from omc_trading.tables import metadata
from omc_trading.trader import Trader

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
ANNOUNCEMENTS = "coinspot_announcements"


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span) -> None:
        self.now += timedelta(**span)


class Quotes:
    """A QuoteSource whose prices the test sets; a quote is observed 'now' unless told otherwise."""

    def __init__(self, clock: Clock):
        self.clock, self.prices = clock, {}

    def set(self, coin: str, bid: str, ask: str, at: datetime | None = None) -> None:
        self.prices[coin] = Quote(coin, Decimal(bid), Decimal(ask), at or self.clock(), "test quotes")

    def drop(self, coin: str) -> None:
        self.prices.pop(coin, None)

    def quote(self, coin: str) -> Quote | None:
        return self.prices.get(coin)


class CountingBroker:
    """The paper broker, counting every ``place`` per idempotency key (thread-safe)."""

    def __init__(self, inner: PaperBroker, place_delay: float = 0.0):
        self.inner, self.mode, self.place_delay = inner, inner.mode, place_delay
        self.placed: Counter[str] = Counter()
        self.quoted: Counter[str] = Counter()
        self._lock = threading.Lock()

    def quote(self, coin: str) -> Quote | None:
        with self._lock:
            self.quoted[coin] += 1
        return self.inner.quote(coin)

    def balances(self) -> dict[str, Decimal]:
        return self.inner.balances()

    def completed_orders(self, since: datetime) -> list[Fill]:
        return self.inner.completed_orders(since)

    def place(self, order: OrderRequest) -> Fill:
        with self._lock:
            self.placed[order.idempotency_key] += 1
        time.sleep(self.place_delay)  # widens the window in which a second sender could slip in
        return self.inner.place(order)


class TimesOutAfterFilling(CountingBroker):
    """Fills the order, then the answer is lost: what a read timeout after CoinSpot accepted looks like."""

    def place(self, order: OrderRequest) -> Fill:
        super().place(order)
        raise OrderOutcomeUnknown(f"{order.side} {order.coin}: read timeout after the order was sent")


def listing(external_id: str, *currencies: str, published: datetime = T0, detected: datetime | None = None,
            event_type: str = "listing") -> Catalyst:
    return Catalyst(source=ANNOUNCEMENTS, external_id=external_id, event_type=event_type, currencies=currencies,
                    published_at=published, detected_at=detected or published,
                    title=f"{event_type}: {', '.join(currencies) or 'nothing'}")


def paper_trader(engine: sa.Engine, clock: Clock, quotes: Quotes, config: TradingConfig | None = None,
                 broker_class=CountingBroker, **broker_options) -> tuple[Trader, CountingBroker]:
    config = config or TradingConfig()
    broker = broker_class(PaperBroker(engine, quotes, config, clock), **broker_options)
    return Trader(engine, broker, config, clock), broker


def run(trader: Trader, events=(), prices=None) -> dict:
    """One trading run, in the order the pipelines call the steps."""
    prices = prices or {}
    return {
        "reconciled": trader.reconcile(),
        "signals": trader.record_signals(events, prices),
        "exits": trader.record_exits(prices),
        "sent": trader.send_pending(),
        "positions": trader.refresh_positions(prices),
    }


def rows(engine: sa.Engine, table: str, **where) -> list[dict]:
    t = metadata.tables[table]
    with engine.connect() as conn:
        query = sa.select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(t.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def wipe(engine: sa.Engine) -> None:
    """Empty every trading table (a property test's examples share one database)."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
