"""The one entry point the pipelines call, in this order within a run:

    trader = Trader(engine, broker, config)
    trader.reconcile()                   # settle orders left sent or unknown by earlier runs
    trader.record_signals(events, prices)  # catalyst events -> signals, decisions, order intents
    trader.record_exits(prices)          # take-profit, stop-loss, max holding -> sell intents
    trader.send_pending()                # every intent, sent once
    trader.refresh_positions(prices)
    trader.daily_pnl(day, prices)

Each returns plain dataclasses to show as run metadata. ``prices`` are quotes by lower-case
coin; a held coin missing from them is quoted through the broker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from omc_trading import controls, executor, positions
from omc_trading.broker import Broker, Mode, Quote
from omc_trading.clock import utc_now
from omc_trading.config import TradingConfig
from omc_trading.controls import KillSwitch, lock_book
from omc_trading.executor import OrderResult, RecordedSignal
from omc_trading.strategy import Catalyst, event_signals, exit_signals


@dataclass(frozen=True)
class SignalReport:
    mode: Mode
    kill_switch: str
    signals: list[RecordedSignal] = field(default_factory=list)

    def _having(self, decision: str) -> list[RecordedSignal]:
        return [s for s in self.signals if s.decision == decision]

    @property
    def taken(self) -> list[RecordedSignal]:
        return self._having("accepted")

    @property
    def refused(self) -> list[RecordedSignal]:
        return self._having("refused")

    @property
    def informational(self) -> list[RecordedSignal]:
        return self._having("informational")

    @property
    def already_recorded(self) -> list[RecordedSignal]:
        return self._having("already recorded")


class Trader:
    def __init__(self, engine: sa.Engine, broker: Broker, config: TradingConfig,
                 clock: Callable[[], datetime] = utc_now, quote_held: bool = True):
        self.engine, self.broker, self.config, self.clock = engine, broker, config, clock
        # Ask the broker for the held coins the given prices lack. A run that must be quick (a
        # catalyst's run: publication to order) leaves them out: unpriced holdings count at cost
        # and their exits wait for the next run that prices them.
        self.quote_held = quote_held

    @property
    def mode(self) -> Mode:
        return self.broker.mode

    def kill_switch(self) -> KillSwitch:
        return controls.status(self.engine, self.config)

    def reconcile(self) -> list[OrderResult]:
        return executor.reconcile(self.engine, self.broker, self.config, self.clock())

    def record_signals(self, events: Iterable[Catalyst], prices: Mapping[str, Quote]) -> SignalReport:
        events = list(events)
        recorded: list[RecordedSignal] = []
        if events:
            now = self.clock()
            prices = self._priced(prices)
            balance = self.broker.balances().get("AUD", Decimal(0))
            for event in events:
                recorded += executor.record(
                    self.engine, self.config, self.mode, now, prices, balance,
                    lambda book: event_signals(event, self.config, self.mode, now, book.holdings),
                )
        return SignalReport(self.mode, self.kill_switch().describe(), recorded)

    def record_exits(self, prices: Mapping[str, Quote]) -> SignalReport:
        now = self.clock()
        prices = self._priced(prices)

        def exits(book):
            # A coin already being sold (a delisting) needs no exit on top.
            unsold = {c: h for c, h in book.holdings.items() if c not in book.pending_sells}
            return exit_signals(unsold, prices, self.config, self.mode, now, book.exit_attempts)

        recorded = executor.record(self.engine, self.config, self.mode, now, prices, None, exits)
        return SignalReport(self.mode, self.kill_switch().describe(), recorded)

    def send_pending(self, before_send: Callable[[int], None] = lambda order_id: None) -> list[OrderResult]:
        return executor.send_pending(self.engine, self.broker, self.config, self.clock, before_send)

    def refresh_positions(self, prices: Mapping[str, Quote]) -> list[positions.Position]:
        prices, now = self._priced(prices), self.clock()
        with self.engine.begin() as conn:
            lock_book(conn, now)
            return positions.refresh_positions(conn, self.mode, prices, now)

    def daily_pnl(self, day: date, prices: Mapping[str, Quote]) -> positions.DailyPnl:
        prices, now = self._priced(prices), self.clock()
        with self.engine.begin() as conn:
            lock_book(conn, now)
            return positions.daily_pnl(conn, self.mode, day, prices, now)

    def _priced(self, prices: Mapping[str, Quote]) -> dict[str, Quote]:
        """``prices``, with a broker quote for each held coin they lack (when ``quote_held``)."""
        if not self.quote_held:
            return dict(prices)
        with self.engine.connect() as conn:
            held = positions.holdings(conn, self.mode)
        found = dict(prices)
        for coin in held:
            if coin not in found and (quote := self.broker.quote(coin)) is not None:
                found[coin] = quote
        return found
