"""The backtest: catalyst events replayed through the live path, at the prices of a history.

Nothing here trades by its own rules. Each replay builds a scratch in-memory database with the
trading tables, a :class:`~omc_trading.paper.PaperBroker` whose quotes come from the history at
a simulated clock, and the real :class:`~omc_trading.trader.Trader` on that clock; the strategy
(``event_signals``, ``exit_signals``), the risk gate, the executor, the paper fills (spread and
fee) and the FIFO lots are the ones live trading uses.

- **Entry.** Events are replayed in detection order, each at ``detected_at + latency``: the
  clock is set there, ``record_signals`` and ``send_pending`` run, and the paper broker fills at
  the history's quote for that moment (:meth:`PriceHistory.quote_at`: the first observation at
  or after it). ``max_event_age`` is judged as live (from publication to that moment).
- **Quote age.** The price an order fills at is the first observation at or after its moment,
  within the history's tolerance (a few minutes on minute data; the next candle's open on
  hourly data): what the order would have got, observed no earlier than it was sent. The quote
  is as fresh as the moment for the paper broker; its source names when it was observed. No
  observation within the tolerance is no quote: the fill is missed, as live without a price.
- **Exits** are the trader's own (``record_exits``: take-profit, stop-loss, max holding). They are
  checked at the moments the history has a price for a held coin: a vectorised scan of the coin's
  bids finds the next moment an exit may fire (a loose threshold, or the holding deadline), and
  the trader decides at that moment; ``send_pending`` sells. An exit that did not sell is tried
  again after ``exit_retry_pause``, as live. Everything runs in time order: exits due before an
  event are taken before it, so the risk gate sees the book as it was.
- **The end.** Positions still open are valued at their last bid (no sell fee) and marked open.
- **The baseline**: the same coins bought at random (seeded) moments at which the history has a
  price, as synthetic listings from source ``baseline``, through the same path and exits.

Money is ``Decimal`` throughout; the equity curve's valuations between trades come from the
history's float scan (to the cent), the cash and every trade are exact.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from omc_trading.broker import Quote
from omc_trading.config import TradingConfig
from omc_trading.money import aud, dec
from omc_trading.paper import PaperBroker
from omc_trading.positions import holdings
from omc_trading.strategy import BITCOIN_PURCHASE, Catalyst, event_coins
from omc_trading.tables import lots, metadata, orders, realized, signals
from omc_trading.trader import Trader

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MODE = "paper"
BASELINE_SOURCE = "baseline"
# The equity curve is valued at least this often between trades (drawdowns while a position is open).
CURVE_STEP = timedelta(hours=1)


def to_ns(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1) * 1000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(ns) // 1000)


def delta_ns(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1) * 1000


# --- the history -------------------------------------------------------------------------------


class PriceHistory(Protocol):
    """What a replay reads prices from. Quotes carry Decimal bid and ask and their observation time."""

    def quote_at(self, coin: str, at: datetime) -> Quote | None:
        """The first observation at or after ``at`` within its tolerance, or None."""
        ...

    def quotes_between(self, coin: str, start: datetime, end: datetime) -> Iterable[Quote]:
        """Every observation in [start, end], in time order (what exits are checked against)."""
        ...

    def span(self, coin: str) -> tuple[datetime, datetime] | None:
        """The first and the last observation's time, or None when the coin has none."""
        ...

    def bids(self, coin: str) -> tuple[np.ndarray, np.ndarray]:
        """``quotes_between`` over the whole history as arrays, for vectorised scans: the times
        (int64 nanoseconds since the epoch, UTC, ascending) and the bids (float64)."""
        ...


@dataclass(frozen=True, eq=False)
class Track:
    """One coin's observations from one source at one resolution, in time order.

    ``bids``/``asks`` where the source saw both sides (NaN where not); elsewhere the price less or
    plus ``half_spread`` (a fraction) stands for them."""

    source: str
    tolerance: timedelta
    times: np.ndarray  # int64 ns since the epoch, ascending, unique
    prices: np.ndarray  # float64, positive
    bids: np.ndarray | None = None
    asks: np.ndarray | None = None
    half_spread: Decimal = Decimal(0)

    def __post_init__(self):
        object.__setattr__(self, "half_spread", dec(self.half_spread))
        # Float bids only for the vectorised scan that finds when an exit may fire (a loose
        # threshold) and for the equity curve; every fill and decision prices a Decimal quote.
        bid = self.prices * (1 - float(self.half_spread))
        if self.bids is not None:
            bid = np.where(np.isnan(self.bids), bid, self.bids)
        object.__setattr__(self, "_bid_floats", bid)

    @property
    def bid_floats(self) -> np.ndarray:
        return self._bid_floats  # type: ignore[attr-defined]

    def quote(self, coin: str, i: int) -> Quote:
        price = Decimal(repr(float(self.prices[i])))

        def side(values: np.ndarray | None, sign: int) -> Decimal:
            if values is not None and not np.isnan(values[i]):
                return Decimal(repr(float(values[i])))
            return price * (1 + sign * self.half_spread)

        return Quote(coin, side(self.bids, -1), side(self.asks, 1), from_ns(self.times[i]), self.source)


@dataclass(frozen=True, eq=False)
class _Merged:
    times: np.ndarray
    bids: np.ndarray
    track: np.ndarray  # which track each observation comes from
    index: np.ndarray  # its index there


class ArrayHistory:
    """A :class:`PriceHistory` over arrays: per coin, tracks best first.

    ``quote_at`` asks the tracks in order (a minute series before an hourly one). The scan
    (``quotes_between``, ``bids``) merges them: every observation of the best track, and those of
    a lesser track where no better one answers ``quote_at`` at that moment, so that a moment the
    scan finds is one at which ``quote_at`` returns that very observation."""

    def __init__(self, tracks: Mapping[str, Sequence[Track]]):
        self.tracks = {coin.lower(): [t for t in found if len(t.times)] for coin, found in tracks.items()}
        self._merged: dict[str, _Merged] = {}

    @classmethod
    def from_rows(cls, rows: Mapping[str, Iterable[tuple[datetime, Decimal | str, Decimal | str]]],
                  tolerance: timedelta = timedelta(minutes=2), source: str = "history") -> ArrayHistory:
        """From ``{coin: [(at, bid, ask), ...]}`` (one track a coin); for tests and scripts."""
        tracks = {}
        for coin, found in rows.items():
            found = sorted(found, key=lambda r: r[0])
            bids = np.array([float(dec(b)) for _, b, _ in found], dtype="float64")
            asks = np.array([float(dec(a)) for _, _, a in found], dtype="float64")
            tracks[coin] = [Track(source, tolerance, np.array([to_ns(r[0]) for r in found], dtype="int64"),
                                  (bids + asks) / 2, bids, asks)]
        return cls(tracks)

    def coins(self) -> list[str]:
        return sorted(self.tracks)

    def quote_at(self, coin: str, at: datetime) -> Quote | None:
        coin, t = coin.lower(), to_ns(at)
        for track in self.tracks.get(coin, ()):
            i = int(np.searchsorted(track.times, t, side="left"))
            if i < len(track.times) and track.times[i] - t <= delta_ns(track.tolerance):
                return track.quote(coin, i)
        return None

    def merged(self, coin: str) -> _Merged:
        coin = coin.lower()
        if coin not in self._merged:
            tracks = self.tracks.get(coin, [])
            parts = []
            for n, track in enumerate(tracks):
                keep = np.ones(len(track.times), dtype=bool)
                for better in tracks[:n]:
                    j = np.searchsorted(better.times, track.times, side="left")
                    inside = j < len(better.times)
                    gap = np.where(inside, better.times[np.minimum(j, len(better.times) - 1)] - track.times, 0)
                    keep &= ~(inside & (gap <= delta_ns(better.tolerance)))
                idx = np.flatnonzero(keep)
                parts.append((track.times[idx], track.bid_floats[idx], np.full(len(idx), n), idx))
            if parts:
                times = np.concatenate([p[0] for p in parts])
                order = np.argsort(times, kind="stable")
                merged = _Merged(times[order], np.concatenate([p[1] for p in parts])[order],
                                 np.concatenate([p[2] for p in parts])[order],
                                 np.concatenate([p[3] for p in parts])[order])
            else:
                empty = np.array([], dtype="int64")
                merged = _Merged(empty, np.array([], dtype="float64"), empty, empty)
            self._merged[coin] = merged
        return self._merged[coin]

    def quotes_between(self, coin: str, start: datetime, end: datetime) -> Iterator[Quote]:
        m, coin = self.merged(coin), coin.lower()
        lo = int(np.searchsorted(m.times, to_ns(start), side="left"))
        hi = int(np.searchsorted(m.times, to_ns(end), side="right"))
        tracks = self.tracks[coin] if hi > lo else []
        return (tracks[int(m.track[i])].quote(coin, int(m.index[i])) for i in range(lo, hi))

    def span(self, coin: str) -> tuple[datetime, datetime] | None:
        m = self.merged(coin)
        return (from_ns(m.times[0]), from_ns(m.times[-1])) if len(m.times) else None

    def bids(self, coin: str) -> tuple[np.ndarray, np.ndarray]:
        m = self.merged(coin)
        return m.times, m.bids


class _QuotesAtClock:
    """The paper broker's quote source: the history's quote for the simulated clock, the first
    observation at or after it, given as a quote of that moment."""

    def __init__(self, history: PriceHistory, clock: _Clock):
        self.history, self.clock = history, clock

    def quote(self, coin: str) -> Quote | None:
        now = self.clock()
        found = self.history.quote_at(coin, now)
        if found is None:
            return None
        # The first price at or after the moment is the one an order placed then gets.
        return dataclasses.replace(found, at=now,
                                   source=f"{found.source} observed {found.at:%Y-%m-%d %H:%M:%S}"[:128])


class _Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# --- the result --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTrip:
    coin: str
    event_source: str | None
    event_external_id: str | None
    entry_at: datetime
    entry_rate: Decimal  # the ask paid
    coin_amount: Decimal
    aud_in: Decimal  # paid, fee included
    exit_at: datetime | None  # None: open at the end
    exit_rate: Decimal | None  # the bid got (open: the last bid)
    aud_out: Decimal | None  # received, fee deducted (open: worth at the last bid, no fee)
    fees_aud: Decimal  # both sides' (open: the buy's)
    pnl_aud: Decimal | None
    exit_reason: str | None  # the exit signal's reason, or why it is still open

    @property
    def open(self) -> bool:
        return self.exit_at is None


@dataclass(frozen=True)
class Refusal:
    at: datetime
    stage: str  # "strategy", "risk gate", "missed fill", "rejected"
    action: str  # buy, sell
    coin: str | None
    event_source: str | None
    event_external_id: str | None
    reason: str


@dataclass(frozen=True)
class EquityPoint:
    at: datetime
    equity_aud: Decimal  # cash + open positions at the bid


@dataclass(frozen=True)
class BacktestResult:
    kind: str  # "strategy" or "baseline"
    config: TradingConfig
    latency: timedelta
    start: datetime | None
    end: datetime | None
    events: int
    start_aud: Decimal
    end_aud: Decimal
    trades: list[RoundTrip] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    equity: list[EquityPoint] = field(default_factory=list)
    exposure: float = 0.0  # share of [start, end] with a position open
    note: str | None = None  # why nothing was replayed, when nothing was

    @property
    def pnl_aud(self) -> Decimal:
        return self.end_aud - self.start_aud

    @property
    def total_return_pct(self) -> Decimal:
        return (self.pnl_aud / self.start_aud * 100).quantize(Decimal("0.0001"))

    @property
    def pnl_per_trade(self) -> Decimal | None:
        return aud(self.pnl_aud / len(self.trades)) if self.trades else None

    @property
    def hit_rate(self) -> float | None:
        closed = [t for t in self.trades if not t.open]
        return sum(t.pnl_aud > 0 for t in closed) / len(closed) if closed else None

    @property
    def fees_aud(self) -> Decimal:
        return sum((t.fees_aud for t in self.trades), Decimal(0))

    @property
    def max_drawdown_pct(self) -> Decimal:
        peak, worst = None, Decimal(0)
        for point in self.equity:
            peak = point.equity_aud if peak is None else max(peak, point.equity_aud)
            if peak > 0:
                worst = max(worst, (peak - point.equity_aud) / peak * 100)
        return worst.quantize(Decimal("0.0001"))

    def metrics(self) -> dict:
        return {
            "trades": len(self.trades), "open_at_end": sum(t.open for t in self.trades),
            "total_return_pct": self.total_return_pct, "pnl_aud": self.pnl_aud, "pnl_per_trade": self.pnl_per_trade,
            "hit_rate": self.hit_rate, "max_drawdown_pct": self.max_drawdown_pct, "exposure": self.exposure,
            "fees_aud": self.fees_aud,
        }


# --- the replay --------------------------------------------------------------------------------


def scratch_engine() -> sa.Engine:
    """An in-memory SQLite database with the trading tables, private to one replay."""
    # One connection, never shared between threads; nothing to roll back between uses (every
    # block of the trading core commits or is a read).
    engine = sa.create_engine("sqlite://", poolclass=StaticPool, pool_reset_on_return=None,
                              connect_args={"check_same_thread": False})
    metadata.create_all(engine)
    return engine


def _thresholds(amount: Decimal, cost: Decimal, config: TradingConfig) -> tuple[float, float]:
    """Bids at or beyond which a take-profit or a stop-loss may fire (a little loose: the trader's
    exact Decimal rule decides at the moment)."""
    n, c = float(amount), float(cost)
    take = (c * (1 + float(config.take_profit_pct) / 100) - 0.01) / n * (1 - 1e-9)
    stop = (c * (1 - float(config.stop_loss_pct) / 100) + 0.01) / n * (1 + 1e-9)
    return take, stop


class _Replay:
    def __init__(self, history: PriceHistory, config: TradingConfig, start_aud: Decimal, start: datetime,
                 end: datetime):
        self.history, self.start, self.end = history, start, end
        self.config = dataclasses.replace(config, mode=MODE, paper_start_aud=dec(start_aud), kill_switch_forced=False)
        self.engine = scratch_engine()
        self.clock = _Clock(start)
        self.quotes = _QuotesAtClock(history, self.clock)
        self.broker = PaperBroker(self.engine, self.quotes, self.config, clock=self.clock)
        self.trader = Trader(self.engine, self.broker, self.config, clock=self.clock)
        self.refusals: list[Refusal] = []
        self.last_exit_try: dict[str, datetime] = {}
        self.checks: dict[str, int | None] = {}  # coin -> ns of its next exit check
        self._held = None  # the book's holdings, read again after every fill

    def held(self):
        if self._held is None:
            with self.engine.connect() as conn:
                self._held = holdings(conn, MODE)
        return self._held

    def prices(self, coins: Iterable[str]) -> dict[str, Quote]:
        return {c: q for c in dict.fromkeys(coins) if (q := self.quotes.quote(c)) is not None}

    def enter(self, event: Catalyst, at: datetime) -> None:
        # The trader quotes the held coins itself (through the broker, at the clock).
        self.clock.now = at
        report = self.trader.record_signals([event], self.prices(event_coins(event)))
        self._note(report.signals, event)
        self._sent(self.trader.send_pending(), event)

    def exit(self, at: datetime) -> None:
        self.clock.now = at
        report = self.trader.record_exits({})
        for s in report.signals:
            if s.strategy == "exit" and s.decision in ("accepted", "refused") and s.coin:
                self.last_exit_try[s.coin] = at
        self._note(report.signals, None)
        self._sent(self.trader.send_pending(), None)

    def _note(self, recorded, event: Catalyst | None) -> None:
        for s in recorded:
            if s.decision == "refused":
                stage = "strategy" if s.decision_reason.startswith("event too old") else "risk gate"
                self.refusals.append(Refusal(self.clock.now, stage, s.action, s.coin, event and event.source,
                                             event and event.external_id, s.decision_reason))

    def _sent(self, results, event: Catalyst | None) -> None:
        for r in results:
            if r.state == "filled":
                self._held = None
            if r.state in ("missed", "rejected"):
                stage = "missed fill" if r.state == "missed" else "rejected"
                self.refusals.append(Refusal(self.clock.now, stage, r.side, r.coin, event and event.source,
                                             event and event.external_id, r.reason or r.state))

    def plan_exits(self) -> None:
        """The next moment each held coin's exit may fire, after the clock."""
        now_ns = to_ns(self.clock.now)
        end_ns = to_ns(self.end)
        self.checks = {}
        for coin, holding in self.held().items():
            times, bids = self.history.bids(coin)
            after = now_ns + 1
            tried = self.last_exit_try.get(coin)
            if tried is not None and tried >= holding.opened_at:
                after = max(after, to_ns(tried + self.config.exit_retry_pause))
            lo = int(np.searchsorted(times, after, side="left"))
            due = max(lo, int(np.searchsorted(times, to_ns(holding.opened_at + self.config.max_holding), side="left")))
            found = due
            if holding.cost_aud > 0 and holding.coin_amount > 0 and due > lo:
                take, stop = _thresholds(holding.coin_amount, holding.cost_aud, self.config)
                window = bids[lo:due]
                hits = np.flatnonzero((window >= take) | (window <= stop))
                if len(hits):
                    found = lo + int(hits[0])
            self.checks[coin] = int(times[found]) if found < len(times) and times[found] <= end_ns else None

    def next_check(self) -> int | None:
        due = [t for t in self.checks.values() if t is not None]
        return min(due) if due else None


def replay(events: Iterable[Catalyst], history: PriceHistory, config: TradingConfig, latency: timedelta,
           start_aud: Decimal | int | str, *, start: datetime | None = None, end: datetime | None = None,
           kind: str = "strategy") -> BacktestResult:
    """Replay ``events`` (in detection order, each at detection + ``latency``) through the live
    trading path at ``history``'s prices, from ``start_aud`` AUD; exits until ``end``."""
    events = sorted(events, key=lambda e: e.detected_at)
    start_aud = dec(start_aud)
    start, end = period(events, history, start, end)
    if start is None or end is None or end < start:
        return BacktestResult(kind, config, latency, start, end, len(events), start_aud, start_aud,
                              note="no events" if not events else "no prices for the events' coins")
    run = _Replay(history, config, start_aud, start, end)
    queue = [(e.detected_at + latency, n, e) for n, e in enumerate(events)]
    heapq.heapify(queue)
    while True:
        check = run.next_check()
        entry_at = queue[0][0] if queue else None
        if entry_at is not None and entry_at > end:
            for at, _, event in queue:
                run.refusals.append(Refusal(at, "strategy", "buy", ",".join(event_coins(event)) or None, event.source,
                                            event.external_id, f"replayed at {at:%Y-%m-%d %H:%M:%S}, after the "
                                            f"backtest's end {end:%Y-%m-%d %H:%M:%S}"))
            queue, entry_at = [], None
        if check is None and entry_at is None:
            break
        if check is not None and (entry_at is None or check <= to_ns(entry_at)):
            run.exit(from_ns(check))
        else:
            at, _, event = heapq.heappop(queue)
            run.enter(event, at)
        run.plan_exits()
    run.clock.now = end
    return _result(run, kind, latency, len(events), start_aud)


def period(events: Sequence[Catalyst], history: PriceHistory, start: datetime | None,
           end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The backtest's period: as given, else from the first event's detection to the last price
    of the events' coins."""
    if start is None and events:
        start = min(e.detected_at for e in events)
    if end is None:
        spans = [s for coin in {c for e in events for c in event_coins(e)} if (s := history.span(coin))]
        end = max((s[1] for s in spans), default=None)
    return start, end


def _result(run: _Replay, kind: str, latency: timedelta, events: int, start_aud: Decimal) -> BacktestResult:
    with run.engine.connect() as conn:
        lot_rows = conn.execute(sa.select(lots.c.id, lots.c.coin, lots.c.coin_amount, lots.c.cost_aud,
                                          lots.c.opened_at, lots.c.closed_at, orders.c.rate, orders.c.fee_aud,
                                          orders.c.event_source, orders.c.event_external_id)
                                .join(orders, orders.c.id == lots.c.order_id).order_by(lots.c.opened_at, lots.c.id)
                                ).all()
        sold = conn.execute(sa.select(realized.c.lot_id, realized.c.coin_amount, realized.c.proceeds_aud,
                                      realized.c.pnl_aud, realized.c.closed_at, orders.c.rate,
                                      orders.c.fee_aud, orders.c.coin_amount.label("sold"), signals.c.reason)
                            .join(orders, orders.c.id == realized.c.sell_order_id)
                            .join(signals, signals.c.id == orders.c.signal_id, isouter=True)
                            .order_by(realized.c.id)).all()
        wallet_aud = run.broker.balances()["AUD"]
    pieces: dict[int, list] = {}
    for row in sold:
        pieces.setdefault(row.lot_id, []).append(row)
    trades = []
    end_value = Decimal(0)
    for lot in lot_rows:
        got = pieces.get(lot.id, [])
        sell_fees = sum((aud(p.fee_aud * p.coin_amount / p.sold) for p in got), Decimal(0))
        if lot.closed_at is not None:
            last = got[-1]
            trades.append(RoundTrip(
                lot.coin, lot.event_source, lot.event_external_id, lot.opened_at, lot.rate, lot.coin_amount,
                lot.cost_aud, lot.closed_at, last.rate, sum((p.proceeds_aud for p in got), Decimal(0)),
                lot.fee_aud + sell_fees, sum((p.pnl_aud for p in got), Decimal(0)), last.reason))
            continue
        # Open at the end (a partly sold lot is not made by these rules, but is valued the same way).
        remaining = lot.coin_amount - sum((p.coin_amount for p in got), Decimal(0))
        cost_left = lot.cost_aud - sum((p.proceeds_aud - p.pnl_aud for p in got), Decimal(0))
        quote = _last_quote(run.history, lot.coin, run.end)
        if quote is None or quote.bid is None:
            value, rate, why = cost_left, None, "open at the end: no price, valued at cost"
        else:
            value, rate = aud(remaining * quote.bid), quote.bid
            why = f"open at the end: valued at the last bid {quote.bid} ({quote.at:%Y-%m-%d %H:%M} UTC)"
        end_value += value
        trades.append(RoundTrip(
            lot.coin, lot.event_source, lot.event_external_id, lot.opened_at, lot.rate, lot.coin_amount,
            lot.cost_aud, None, rate, value + sum((p.proceeds_aud for p in got), Decimal(0)), lot.fee_aud + sell_fees,
            value - cost_left + sum((p.pnl_aud for p in got), Decimal(0)), why))
    end_aud = wallet_aud + end_value
    equity = _equity_curve(run, trades, start_aud, end_aud)
    return BacktestResult(kind, run.config, latency, run.start, run.end, events, start_aud, end_aud, trades,
                          run.refusals, equity, _exposure(trades, run.start, run.end))


def _last_quote(history: PriceHistory, coin: str, at: datetime) -> Quote | None:
    times, _ = history.bids(coin)
    i = int(np.searchsorted(times, to_ns(at), side="right")) - 1
    if i < 0:
        return None
    when = from_ns(times[i])
    return next(iter(history.quotes_between(coin, when, when)), None)


def _exposure(trades: list[RoundTrip], start: datetime, end: datetime) -> float:
    if end <= start:
        return 0.0
    spans = sorted((max(t.entry_at, start), min(t.exit_at or end, end)) for t in trades)
    covered, reach = timedelta(0), start
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            covered += b - a
            reach = b
    return covered / (end - start)


def _equity_curve(run: _Replay, trades: list[RoundTrip], start_aud: Decimal, end_aud: Decimal) -> list[EquityPoint]:
    """Cash plus the open lots at the last bid seen, at every trade and at least every CURVE_STEP
    while a position is open; the last point is the exact end value."""
    start_ns, end_ns = to_ns(run.start), to_ns(run.end)
    flows = sorted([(to_ns(t.entry_at), -t.aud_in) for t in trades]
                   + [(to_ns(t.exit_at), t.aud_out) for t in trades if t.exit_at is not None])
    moments = {start_ns, end_ns, *(f[0] for f in flows)}
    step = delta_ns(CURVE_STEP)
    for t in trades:
        a, b = to_ns(t.entry_at), to_ns(t.exit_at) if t.exit_at else end_ns
        moments.update(range(a - a % step + step, b, step))
    grid = np.array(sorted(m for m in moments if start_ns <= m <= end_ns), dtype="int64")
    value = np.zeros(len(grid))
    for t in trades:
        a, b = to_ns(t.entry_at), to_ns(t.exit_at) if t.exit_at else end_ns + 1
        lo, hi = np.searchsorted(grid, a, side="left"), np.searchsorted(grid, b, side="left")
        if hi <= lo:
            continue
        times, bids = run.history.bids(t.coin)
        if not len(times):
            value[lo:hi] += float(t.aud_in)
            continue
        at = np.clip(np.searchsorted(times, grid[lo:hi], side="right") - 1, 0, len(times) - 1)
        value[lo:hi] += float(t.coin_amount) * bids[at]
    flow_times = np.array([f[0] for f in flows], dtype="int64")
    cash = [start_aud]
    for _, amount in flows:
        cash.append(cash[-1] + amount)
    paid = np.searchsorted(flow_times, grid, side="right")
    points = [EquityPoint(from_ns(g), cash[int(k)] + aud(Decimal(repr(round(float(v), 2)))))
              for g, k, v in zip(grid, paid, value)]
    if points:
        points[-1] = EquityPoint(run.end, end_aud)
    return points


# --- the baseline ------------------------------------------------------------------------------


def buys(event: Catalyst, config: TradingConfig) -> bool:
    """Whether the strategy buys on an event of this kind."""
    return event.event_type == "listing" or (event.event_type == BITCOIN_PURCHASE and config.btc_purchase_enabled)


def baseline_events(events: Iterable[Catalyst], history: PriceHistory, config: TradingConfig, latency: timedelta,
                    seed: int, start: datetime, end: datetime) -> list[Catalyst]:
    """For each coin each buying event names, a synthetic listing at a random (seeded) moment of
    [start, end] at which the history has a price: a moment is drawn uniformly from the coin's
    priced span and moved to its first observation, the entry then being exactly there."""
    rng = random.Random(seed)
    found = []
    for n, event in enumerate(sorted(events, key=lambda e: e.detected_at)):
        if not buys(event, config):
            continue
        for coin in event_coins(event):
            span = history.span(coin)
            if span is None:
                continue
            lo, hi = max(span[0], start + latency), min(span[1], end)
            if hi < lo:
                continue
            drawn = lo + (hi - lo) * rng.random()
            times, _ = history.bids(coin)
            i = int(np.searchsorted(times, to_ns(drawn), side="left"))
            at = from_ns(times[min(i, len(times) - 1)]) - latency
            found.append(Catalyst(source=BASELINE_SOURCE, external_id=f"{n + 1}-{coin}", event_type="listing",
                                  currencies=[coin.upper()], published_at=at, detected_at=at,
                                  title=f"random entry for {event.source} {event.external_id}"))
    return sorted(found, key=lambda e: e.detected_at)


def baseline(events: Iterable[Catalyst], history: PriceHistory, config: TradingConfig, latency: timedelta,
             start_aud: Decimal | int | str, seed: int, *, start: datetime | None = None,
             end: datetime | None = None) -> BacktestResult:
    """The same coins bought at random moments, through the same path, with the same exits."""
    events = list(events)
    start, end = period(events, history, start, end)
    if start is None or end is None or end < start:
        return BacktestResult("baseline", config, latency, start, end, 0, dec(start_aud), dec(start_aud),
                              note="no events" if not events else "no prices for the events' coins")
    synthetic = baseline_events(events, history, config, latency, seed, start, end)
    return replay(synthetic, history, config, latency, start_aud, start=start, end=end, kind="baseline")


@dataclass(frozen=True)
class Comparison:
    strategy: BacktestResult
    baseline: BacktestResult


def backtest(events: Iterable[Catalyst], history: PriceHistory, config: TradingConfig, latency: timedelta,
             start_aud: Decimal | int | str, seed: int, *, start: datetime | None = None,
             end: datetime | None = None) -> Comparison:
    """The strategy and its baseline over one period."""
    events = list(events)
    start, end = period(events, history, start, end)
    return Comparison(replay(events, history, config, latency, start_aud, start=start, end=end),
                      baseline(events, history, config, latency, start_aud, seed, start=start, end=end))
