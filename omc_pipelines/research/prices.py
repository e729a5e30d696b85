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

    def __len__(self) -> int:
        return len(self.times)

    def index_at(self, at: datetime) -> int | None:
        """The first observation at or after ``at``, within the tolerance; None when there is none."""
        t = _ns(at)
        i = int(np.searchsorted(self.times, t, side="left"))
        if i < len(self.times) and self.times[i] - t <= self.tolerance // timedelta(microseconds=1) * 1000:
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


def _ns(at: datetime) -> int:
    return pd.Timestamp(at).tz_convert("UTC").value


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


def load_series(conn: sa.Connection, coin: str, start: datetime, end: datetime) -> list[Series]:
    """Every series of ``coin`` (lower-case) with observations in [start, end], best first."""
    coin = coin.lower()
    found: list[Series] = []

    def frame(query) -> pd.DataFrame:
        return pd.DataFrame(conn.execute(query).mappings().all())

    def add(source: str, resolution: str, tolerance: timedelta, rows: pd.DataFrame):
        for market, part in rows.groupby("market", sort=True) if not rows.empty else ():
            s = _series(coin, f"{source} {market}", market, resolution, tolerance, part)
            if s is not None:
                found.append(s)

    t = Trade.__table__.c
    add("exchange_trades", MINUTE, MINUTE_TOLERANCE, frame(
        sa.select(t.market, t.sold_at.label("at"), t.rate.label("price"))
        .where(sa.func.lower(t.coin) == coin, t.sold_at.between(start, end))))
    p = PriceSnapshot.__table__.c
    add("exchange_price_snapshots", MINUTE, MINUTE_TOLERANCE, frame(
        sa.select(p.market, p.observed_at.label("at"), p.last.label("price"), p.bid, p.ask)
        .where(sa.func.lower(p.coin) == coin, p.observed_at.between(start, end), p.last.is_not(None))))
    i = ImportedCandle.__table__.c
    imported = frame(
        sa.select(i.source, i.market, i.interval_seconds, i.open_time.label("at"), i.open.label("price"))
        .where(sa.func.lower(i.coin) == coin, i.open_time.between(start, end)))
    if not imported.empty:
        for (source, market, seconds), part in imported.groupby(["source", "market", "interval_seconds"], sort=True):
            resolution = MINUTE if seconds <= MINUTE_CANDLE else HOUR
            tolerance = max(MINUTE_TOLERANCE, timedelta(seconds=int(seconds)))
            s = _series(coin, f"imported {source} {market} {int(seconds) // 60}m", market, resolution, tolerance,
                        part[["at", "price"]])
            if s is not None:
                found.append(s)
    c = Candle.__table__.c
    add("exchange_candles", HOUR, timedelta(hours=1), frame(
        sa.select(c.market, c.hour_start.label("at"), c.open.label("price"))
        .where(sa.func.lower(c.coin) == coin, c.hour_start.between(start, end))))
    # Best first: minute before hour, AUD (CoinSpot's market) before others, CoinSpot's own before imports.
    return sorted(found, key=lambda s: (s.resolution != MINUTE, s.market != "aud", _rank(s.source)))


def _rank(source: str) -> int:
    return next(n for n, name in enumerate(PREFERENCE) if source.startswith(name))


class PriceBook:
    """Every coin's series over one period, loaded once per coin when first asked for."""

    def __init__(self, engine: sa.Engine, start: datetime, end: datetime):
        self.engine, self.start, self.end = engine, start, end
        self._series: dict[str, list[Series]] = {}

    def series(self, coin: str) -> list[Series]:
        coin = coin.lower()
        if coin not in self._series:
            with self.engine.connect() as conn:
                self._series[coin] = load_series(conn, coin, self.start, self.end)
        return self._series[coin]

    def measure(self, coin: str, start: datetime, horizon: timedelta) -> Measured | str:
        return measure(self.series(coin), start, horizon)
