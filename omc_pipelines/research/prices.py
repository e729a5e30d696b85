"""Prices around an event, as the Exchange ledger observed them: never an interpolated guess.

Each coin's prices come as :class:`Series`, one per table and market (a return is measured
within one series: an AUD trade and a USDT candle are not the same price), each at one
resolution:

- ``minute``: CoinSpot trades, price snapshots, and imported candles of 5 minutes or less;
- ``hour``: the hourly candles built from trades, and imported candles of more than 5 minutes.

The price "at" a moment is the first observation at or after it, within the resolution's
tolerance (2 minutes for minute data, the candle's length for candles): what a trader acting
at that moment could have got. A candle is observed at its open time with its open price.
Hourly data serves only horizons of an hour or more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import sqlalchemy as sa

from omc_pipelines.db.models import Candle, ImportedCandle, PriceSnapshot, Trade

MINUTE, HOUR = "minute", "hour"
MINUTE_TOLERANCE = timedelta(minutes=2)
# Imported candles this long or shorter count as minute data.
MINUTE_CANDLE = 300
# The order series are preferred in, best first: CoinSpot's own minute data, then imports.
PREFERENCE = ("exchange_trades", "exchange_price_snapshots", "imported", "exchange_candles")


@dataclass(frozen=True)
class Observation:
    at: datetime
    price: float
    bid: float | None  # where the source saw both sides (snapshots); else None
    ask: float | None
    source: str  # e.g. "exchange_trades aud", "imported freqtrade:binance usdt 1m"
    resolution: str


@dataclass
class Series:
    """One coin's prices from one table and market, in time order, one price per instant."""

    coin: str
    source: str
    market: str
    resolution: str
    tolerance: timedelta
    times: np.ndarray  # int64 nanoseconds since the epoch, UTC, ascending, unique
    prices: np.ndarray  # float64, all positive and finite
    bids: np.ndarray | None = None
    asks: np.ndarray | None = None

    def __post_init__(self):
        self._tolerance_ns = self.tolerance // timedelta(microseconds=1) * 1000

    def __len__(self) -> int:
        return len(self.times)

    def index_at(self, at: datetime) -> int | None:
        """The first observation at or after ``at``, within the tolerance; None when there is none."""
        t = _ns(at)
        i = int(self.times.searchsorted(t, side="left"))
        if i < len(self.times) and int(self.times[i]) - t <= self._tolerance_ns:
            return i
        return None

    def observation(self, i: int) -> Observation:
        bid = None if self.bids is None or np.isnan(self.bids[i]) else float(self.bids[i])
        ask = None if self.asks is None or np.isnan(self.asks[i]) else float(self.asks[i])
        at = datetime.fromtimestamp(int(self.times[i]) / 1e9, tz=timezone.utc)
        return Observation(at, float(self.prices[i]), bid, ask, self.source, self.resolution)

    def between(self, start: datetime, end: datetime) -> Iterable[Observation]:
        """Every observation in [start, end], in time order."""
        lo = int(np.searchsorted(self.times, _ns(start), side="left"))
        hi = int(np.searchsorted(self.times, _ns(end), side="right"))
        return (self.observation(i) for i in range(lo, hi))


@dataclass(frozen=True)
class Measured:
    """A price move over a window, read from one series."""

    start: Observation
    end: Observation

    @property
    def change(self) -> float:
        return self.end.price / self.start.price - 1


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ns(at: datetime) -> int:
    """``at`` (aware) in nanoseconds since the epoch, exactly (integer arithmetic; a study asks
    this hundreds of thousands of times)."""
    return (at - EPOCH) // timedelta(microseconds=1) * 1000


def serves(resolution: str, horizon: timedelta) -> bool:
    """Minute data serves every horizon; hourly data only those of an hour or more."""
    return resolution == MINUTE or horizon >= timedelta(hours=1)


def measure(series: list[Series], start: datetime, horizon: timedelta) -> Measured | str:
    """The move from ``start`` to ``start + horizon`` in the first series that covers both ends,
    or why none does."""
    usable = [s for s in series if serves(s.resolution, horizon)]
    if not usable:
        have = ", ".join(sorted({s.resolution for s in series})) or "none"
        return f"no prices at the resolution a {_span(horizon)} horizon needs (have: {have})"
    for s in usable:
        i, j = s.index_at(start), s.index_at(start + horizon)
        if i is not None and j is not None and j > i:
            return Measured(s.observation(i), s.observation(j))
    missing = "start" if all(s.index_at(start) is None for s in usable) else "end"
    at = start if missing == "start" else start + horizon
    return f"no price within tolerance after the {missing} ({at:%Y-%m-%d %H:%M} UTC)"


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _series(coin: str, source: str, market: str, resolution: str, tolerance: timedelta,
            frame: pd.DataFrame) -> Series | None:
    """A series from a frame of ``at``, ``price`` (and maybe ``bid``, ``ask``): bad prices dropped,
    one price per instant (the last seen)."""
    frame = frame[np.isfinite(frame["price"]) & (frame["price"] > 0)]
    if frame.empty:
        return None
    frame = frame.assign(at=pd.to_datetime(frame["at"], utc=True)).sort_values("at", kind="stable")
    frame = frame.drop_duplicates("at", keep="last")
    has_sides = "bid" in frame
    return Series(
        coin, source, market, resolution, tolerance,
        times=frame["at"].to_numpy(dtype="datetime64[ns]").view("int64"),
        prices=frame["price"].to_numpy(dtype="float64"),
        bids=frame["bid"].to_numpy(dtype="float64", na_value=np.nan) if has_sides else None,
        asks=frame["ask"].to_numpy(dtype="float64", na_value=np.nan) if has_sides else None,
    )


def _times(values: pd.Series) -> pd.Series:
    """Timestamps as the driver returned them (SQLite: naive UTC text; PostgreSQL: aware
    datetimes), as UTC, vectorised: no per-row type processing."""
    return pd.to_datetime(values, utc=True, format="ISO8601")


def _raw(column: sa.ColumnElement, name: str):
    """A column read as the driver returns it, skipping SQLAlchemy's per-row result processing
    (a million timestamps parsed one by one took most of a study's time)."""
    return sa.type_coerce(column, sa.types.NullType()).label(name)


def load_many(conn: sa.Connection, coins: Iterable[str], start: datetime, end: datetime) -> dict[str, list[Series]]:
    """Every series of each of ``coins`` with observations in [start, end], best first: one query
    per table for all the coins (a query per coin would scan a time range once per coin)."""
    coins = sorted({c.lower() for c in coins})
    found: dict[str, list[Series]] = {coin: [] for coin in coins}
    if not coins:
        return found

    def frames(table: sa.Table, keys: list[str], at: str, values: list[str], *where) -> dict[tuple, pd.DataFrame]:
        """The table's rows of ``coins`` in [start, end], a frame of ``at`` and ``values`` per
        distinct ``keys`` (the coin lower-cased). A query per key (e.g. coin and market): it reads
        two columns by the table's unique index, where one query for all would read six, and the
        rows come from the driver's cursor itself, with no Row object each: a study's load went
        from 60 s to a few that way."""
        c = table.c
        window = (sa.func.lower(c.coin).in_(coins), c[at].between(start, end), *where)
        found_keys = conn.execute(sa.select(*(c[k] for k in keys)).distinct().where(*window)).all()
        groups: dict[tuple, list[pd.DataFrame]] = {}
        for key in sorted(found_keys):
            query = sa.select(_raw(c[at], "at"), *(c[v] for v in values)).where(
                *(c[k] == value for k, value in zip(keys, key)), c[at].between(start, end), *where)
            result = conn.execute(query)
            try:
                rows = result.cursor.fetchall()
            finally:
                result.close()
            if not rows:
                continue
            part = pd.DataFrame({"at": _times(pd.Series([r[0] for r in rows], dtype=object)).array,
                                 **{name: np.array([r[n] for r in rows], dtype="float64")  # None -> nan
                                    for n, name in enumerate(["price", "bid", "ask"][:len(values)], start=1)}})
            groups.setdefault((key[0].lower(), *key[1:]), []).append(part)
        return {key: pd.concat(parts, ignore_index=True) for key, parts in groups.items()}

    def add(source: str, resolution: str, tolerance: timedelta, grouped: dict[tuple, pd.DataFrame]):
        for (coin, market), part in grouped.items():
            s = _series(coin, f"{source} {market}", market, resolution, tolerance, part)
            if s is not None:
                found[coin].append(s)

    trades = Trade.__table__
    add("exchange_trades", MINUTE, MINUTE_TOLERANCE,
        frames(trades, ["coin", "market"], "sold_at", ["rate"]))
    snapshots = PriceSnapshot.__table__
    add("exchange_price_snapshots", MINUTE, MINUTE_TOLERANCE,
        frames(snapshots, ["coin", "market"], "observed_at", ["last", "bid", "ask"], snapshots.c.last.is_not(None)))
    imported = frames(ImportedCandle.__table__, ["coin", "source", "market", "interval_seconds"], "open_time", ["open"])
    for (coin, source, market, seconds), part in imported.items():
        resolution = MINUTE if seconds <= MINUTE_CANDLE else HOUR
        tolerance = max(MINUTE_TOLERANCE, timedelta(seconds=int(seconds)))
        s = _series(coin, f"imported {source} {market} {int(seconds) // 60}m", market, resolution, tolerance, part)
        if s is not None:
            found[coin].append(s)
    add("exchange_candles", HOUR, timedelta(hours=1), frames(Candle.__table__, ["coin", "market"], "hour_start", ["open"]))
    # Best first: minute before hour, AUD (CoinSpot's market) before others, CoinSpot's own before imports.
    return {coin: sorted(series, key=lambda s: (s.resolution != MINUTE, s.market != "aud", _rank(s.source)))
            for coin, series in found.items()}


def load_series(conn: sa.Connection, coin: str, start: datetime, end: datetime) -> list[Series]:
    """Every series of ``coin`` (lower-case) with observations in [start, end], best first."""
    return load_many(conn, [coin], start, end)[coin.lower()]


def _rank(source: str) -> int:
    return next(n for n, name in enumerate(PREFERENCE) if source.startswith(name))


class PriceBook:
    """Every coin's series over one period, loaded once per coin when first asked for (or
    ahead, many coins in one query per table, with :meth:`preload`)."""

    def __init__(self, engine: sa.Engine, start: datetime, end: datetime):
        self.engine, self.start, self.end = engine, start, end
        self._series: dict[str, list[Series]] = {}

    def preload(self, coins: Iterable[str]) -> None:
        """Load the series of every coin of ``coins`` not loaded yet, together."""
        missing = {c.lower() for c in coins} - set(self._series)
        if missing:
            with self.engine.connect() as conn:
                self._series.update(load_many(conn, missing, self.start, self.end))

    def series(self, coin: str) -> list[Series]:
        coin = coin.lower()
        if coin not in self._series:
            self.preload([coin])
        return self._series[coin]

    def measure(self, coin: str, start: datetime, horizon: timedelta) -> Measured | str:
        return measure(self.series(coin), start, horizon)
