"""The catalyst event study: what a coin did after its events, and whether that beats the market.

For every stored catalyst event that passes the Catalyst ledger's rules and every coin it is
about, from two anchors (when we detected it, when it was published) over four horizons
(5 min, 1 h, 4 h, 24 h):

- the coin's **return**: its price move over the window, read from one price series
  (:mod:`omc_pipelines.research.prices`: never interpolated, never mixing AUD and USDT);
- the **market's** return over the same window: BTC by default, or an equal-weighted
  **basket** of the watched coins measurable in that window (the event's coin left out);
  an event about BTC itself is measured against the basket (its row says ``basket``);
- the **abnormal** return: coin minus market (None when the market is not measurable).

A window no series covers at the needed resolution is a row with ``measurable=False`` and
the reason. The summary gives, per event type, source, anchor, horizon and measure, the
count, mean, median, hit rate (share above zero) and a bootstrap confidence interval of the
mean. A run replaces both tables in one transaction: they are derived, the newest study is
the truth; a run that fails leaves the stored study as it was.

No Dagster here: the asset (``omc_pipelines.ledgers.research.assets``) and the benchmark call
:func:`run_study`.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import sqlalchemy as sa

from omc_pipelines.db.models import Candle, CatalystEvent, EventReturn, EventStudySummary, ImportedCandle, PriceSnapshot, Trade
from omc_pipelines.research.prices import Measured, PriceBook
from omc_pipelines.trading_bridge import stored_catalysts
from omc_trading.strategy import Catalyst, event_coins

ANCHORS = ("detected", "published")
HORIZONS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(hours=24)}
MEASURES = ("return", "abnormal")
MARKETS = ("btc", "basket")
BTC = "btc"
# How far past the last window's end prices are loaded: the longest tolerance a series may
# have (a daily imported candle's).
LOAD_MARGIN = timedelta(days=1)
# The most resampled values drawn at once per chunk of the bootstrap (memory: 8 bytes each).
BOOTSTRAP_CHUNK = 4_000_000


class StudyError(RuntimeError):
    """The study cannot run on this database; the stored study is kept."""


@dataclass
class Study:
    """What a run computed and stored, and what it left out and why."""

    rows: list[dict]
    summary: list[dict]
    events: int  # events studied (passing the rules, with at least one coin)
    skipped_rules: list[str] = field(default_factory=list)  # why each event failing the rules was left out
    skipped_no_coin: list[str] = field(default_factory=list)  # events about no coin
    market: str = BTC
    confidence: float = 0.95
    resamples: int = 2000
    note: str | None = None  # why the study is empty, when it is

    @property
    def measurable(self) -> int:
        return sum(r["measurable"] for r in self.rows)

    @property
    def not_measurable(self) -> int:
        return len(self.rows) - self.measurable

    def reasons(self, limit: int = 5) -> list[tuple[str, int]]:
        """The commonest reasons a row is not measurable, with their counts, commonest first."""
        return Counter(_reason_kind(r["reason"]) for r in self.rows if not r["measurable"]).most_common(limit)


def _reason_kind(reason: str) -> str:
    """A reason without its timestamp, so that the same cause counts once."""
    head, _, _ = reason.partition(" (")
    return head


# --- returns ---------------------------------------------------------------------------------


class MarketReturns:
    """The market's return over a window (start, horizon): BTC's, or the basket's. Cached: the
    two anchors of an event are often the same moment, and a basket measures every watched coin."""

    def __init__(self, book: PriceBook, market: str, watchlist: Sequence[str]):
        if market not in MARKETS:
            raise ValueError(f"market must be one of {', '.join(MARKETS)}, not {market!r}")
        self.book, self.market = book, market
        self.watchlist = list(dict.fromkeys(c.strip().lower() for c in watchlist if c.strip()))
        self._measured: dict[tuple[str, datetime, timedelta], Measured | str] = {}

    def _measure(self, coin: str, start: datetime, horizon: timedelta) -> Measured | str:
        key = (coin, start, horizon)
        if key not in self._measured:
            self._measured[key] = self.book.measure(coin, start, horizon)
        return self._measured[key]

    def of(self, coin: str, start: datetime, horizon: timedelta) -> tuple[str, float | None, str | None]:
        """(market used, its return or None, why None) for ``coin``'s window."""
        if self.market == BTC and coin != BTC:
            got = self._measure(BTC, start, horizon)
            return (BTC, got.change, None) if isinstance(got, Measured) else (BTC, None, f"btc: {got}")
        members = [c for c in self.watchlist if c != coin]
        changes = [m.change for c in members if isinstance(m := self._measure(c, start, horizon), Measured)]
        if not changes:
            why = "no coin of the basket is measurable" if members else "the basket has no coin but the event's"
            return "basket", None, why
        return "basket", float(np.mean(changes)), None


def event_returns(events: Iterable[Catalyst], book: PriceBook, market: str = BTC, watchlist: Sequence[str] = (),
                  computed_at: datetime | None = None) -> list[dict]:
    """One row per event x coin x anchor x horizon, as ``research_event_returns`` stores it."""
    computed_at = computed_at or datetime.now(timezone.utc)
    markets = MarketReturns(book, market, watchlist)
    events = list(events)
    coins = {coin for event in events for coin in event_coins(event)}
    # Every coin the study reads, in one query per table: the events' coins and the market's.
    basket_needed = market == "basket" or BTC in coins
    book.preload(coins | {BTC} | (set(markets.watchlist) if basket_needed else set()))
    rows = []
    for event in events:
        for coin in event_coins(event):
            for anchor in ANCHORS:
                anchor_at = event.detected_at if anchor == "detected" else event.published_at
                for name, horizon in HORIZONS.items():
                    rows.append(_row(event, coin, anchor, anchor_at, name, horizon, book, markets, computed_at))
    return rows


def _row(event: Catalyst, coin: str, anchor: str, anchor_at: datetime, name: str, horizon: timedelta,
         book: PriceBook, markets: MarketReturns, computed_at: datetime) -> dict:
    row = {
        "event_source": event.source, "event_external_id": event.external_id, "event_type": event.event_type,
        "coin": coin, "anchor": anchor, "anchor_at": anchor_at, "horizon": name,
        "horizon_seconds": int(horizon.total_seconds()), "measurable": False, "reason": None,
        "resolution": None, "price_source": None, "start_at": None, "end_at": None, "price_start": None,
        "price_end": None, "coin_return": None, "market": None, "market_return": None, "abnormal_return": None,
        "computed_at": computed_at,
    }
    got = book.measure(coin, anchor_at, horizon)
    if not isinstance(got, Measured):
        row["reason"] = got
        return row
    used, market_return, why = markets.of(coin, anchor_at, horizon)
    row.update(
        measurable=True, resolution=got.start.resolution, price_source=got.start.source[:64],
        start_at=got.start.at, end_at=got.end.at, price_start=got.start.price, price_end=got.end.price,
        coin_return=got.change, market=used, market_return=market_return,
        abnormal_return=None if market_return is None else got.change - market_return,
        # Measured, but without a market to compare with: the abnormal return says why it is missing.
        reason=None if why is None else f"abnormal return not measured: {why}",
    )
    return row


# --- summary ---------------------------------------------------------------------------------


def bootstrap_interval(values: np.ndarray, confidence: float, resamples: int,
                       rng: np.random.Generator) -> tuple[float, float] | None:
    """The percentile bootstrap interval of the mean of ``values``; None for fewer than two."""
    values = np.asarray(values, dtype="float64")
    n = len(values)
    if n < 2:
        return None
    means = np.empty(resamples)
    per_chunk = max(1, BOOTSTRAP_CHUNK // n)
    for lo in range(0, resamples, per_chunk):
        hi = min(resamples, lo + per_chunk)
        means[lo:hi] = values[rng.integers(0, n, size=(hi - lo, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _group_rng(seed: int, key: tuple) -> np.random.Generator:
    """A generator per group, from the seed and the group's name: a group's interval does not
    depend on which other groups the study has."""
    return np.random.default_rng([seed, zlib.crc32("|".join(key).encode())])


def summarise(rows: Sequence[dict], confidence: float = 0.95, resamples: int = 2000, seed: int = 11,
              computed_at: datetime | None = None) -> list[dict]:
    """Per event type x source x anchor x horizon x measure, as ``research_event_study`` stores it.
    A group whose rows are all unmeasurable is there with count 0."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be positive, not {resamples}")
    computed_at = computed_at or datetime.now(timezone.utc)
    groups: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        values = groups.setdefault((r["event_type"], r["event_source"], r["anchor"], r["horizon"]),
                                   {m: [] for m in MEASURES})
        if r["coin_return"] is not None:
            values["return"].append(r["coin_return"])
        if r["abnormal_return"] is not None:
            values["abnormal"].append(r["abnormal_return"])
    order = {h: n for n, h in enumerate(HORIZONS)}
    summary = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order.get(k[3], 99))):
        for measure in MEASURES:
            values = np.asarray(groups[key][measure], dtype="float64")
            interval = bootstrap_interval(values, confidence, resamples, _group_rng(seed, (*key, measure)))
            event_type, source, anchor, horizon = key
            summary.append({
                "event_type": event_type, "event_source": source, "anchor": anchor, "horizon": horizon,
                "measure": measure, "count": len(values),
                "mean": float(values.mean()) if len(values) else None,
                "median": float(np.median(values)) if len(values) else None,
                "hit_rate": float((values > 0).mean()) if len(values) else None,
                "ci_low": interval[0] if interval else None, "ci_high": interval[1] if interval else None,
                "confidence": confidence, "computed_at": computed_at,
            })
    return summary


# --- the run ---------------------------------------------------------------------------------

PRICE_TABLES = (Trade, PriceSnapshot, Candle, ImportedCandle)


def has_prices(conn: sa.Connection) -> bool:
    return any(conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() for t in PRICE_TABLES)


def price_window(events: Sequence[Catalyst]) -> tuple[datetime, datetime]:
    """The prices the events' windows need: from the earliest anchor to the last window's end."""
    anchors = [a for e in events for a in (e.detected_at, e.published_at)]
    return min(anchors), max(anchors) + max(HORIZONS.values()) + LOAD_MARGIN


def run_study(engine: sa.Engine, market: str = BTC, watchlist: Sequence[str] = (), confidence: float = 0.95,
              resamples: int = 2000, seed: int = 11, start: datetime | None = None, end: datetime | None = None,
              now: datetime | None = None) -> Study:
    """Study the stored events detected in [start, end] (all when not given) and replace the
    stored study with the result, in one transaction.

    An empty Catalyst ledger (or none of its events passing the rules or naming a coin) is an
    empty truth: the stored study is replaced by nothing. Events without any price in the
    Exchange ledger's tables are more likely a wrong database: :class:`StudyError`, and the
    stored study is kept."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {', '.join(MARKETS)}, not {market!r}")
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        candidates, skipped_rules = stored_catalysts(conn, start, end)
        any_event = bool(candidates or skipped_rules) or conn.execute(
            sa.select(sa.literal(1)).select_from(CatalystEvent).limit(1)).first() is not None
        priced = has_prices(conn)
    events = [e for e in candidates if event_coins(e)]
    skipped_no_coin = [f"{e.source} {e.external_id}: names no coin ({e.event_type})" for e in candidates
                       if not event_coins(e)]
    note = None
    if not events:
        note = ("no catalyst events in the ledger" if not any_event else
                "no catalyst events in the period" if not (candidates or skipped_rules) else
                "no event passes the Catalyst rules and names a coin")
        rows, summary = [], []
    elif not priced:
        raise StudyError(
            f"{len(events)} catalyst events but no prices at all (exchange_trades, exchange_price_snapshots, "
            "exchange_candles and exchange_imported_candles are empty): is this the right database? "
            "The stored study is kept.")
    else:
        book = PriceBook(engine, *price_window(events))
        rows = event_returns(events, book, market, watchlist, now)
        summary = summarise(rows, confidence, resamples, seed, now)
    store(engine, rows, summary)
    return Study(rows, summary, len(events), skipped_rules, skipped_no_coin, market, confidence, resamples, note)


def store(engine: sa.Engine, rows: Sequence[dict], summary: Sequence[dict]) -> None:
    """Replace both tables' contents in one transaction: all or nothing."""
    with engine.begin() as conn:
        conn.execute(sa.delete(EventReturn.__table__))
        conn.execute(sa.delete(EventStudySummary.__table__))
        if rows:
            conn.execute(sa.insert(EventReturn.__table__), list(rows))
        if summary:
            conn.execute(sa.insert(EventStudySummary.__table__), list(summary))
