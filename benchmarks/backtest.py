"""How long the backtest takes: a year, 20 coins, 500 listings, minute trades around each
listing and hourly candles elsewhere (synthetic, not timed), then ``run_backtest`` (the strategy
and its baseline, default settings) and ``store``, timed.

    python benchmarks/backtest.py                     # SQLite file
    python benchmarks/backtest.py --postgres          # a scratch PostgreSQL database
    python benchmarks/backtest.py --events 100 --after 360 --variants 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import COINS, scratch_postgres  # noqa: E402

from omc_pipelines.db import get_engine, upgrade  # noqa: E402
from omc_pipelines.db.models import Candle, CatalystEvent, Trade  # noqa: E402
from omc_pipelines.research.backtest import MARGIN, run_backtest, store  # noqa: E402
from omc_pipelines.research.prices import PriceBook  # noqa: E402
from omc_pipelines.trading_bridge import stored_catalysts  # noqa: E402
from omc_trading.config import TradingConfig  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
CHUNK = 50_000


def generate(engine: sa.Engine, events: int, before: int, after: int, seed: int) -> tuple[int, int]:
    """Hourly candles for a year and minute trades from ``before`` minutes ahead of each listing to
    ``after`` minutes past it (a random walk; a listing gets a jump and a fade)."""
    rng = np.random.default_rng(seed)
    hours = 365 * 24
    now = datetime.now(timezone.utc)
    hour_ns = np.arange(hours, dtype="int64") * 3600 * 10**9 + int(START.timestamp()) * 10**9
    walks = {}
    candles = []
    for coin, price, vol in COINS:
        steps = rng.normal(0, vol / np.sqrt(hours), hours)
        walk = price * np.exp(np.cumsum(steps))
        walks[coin] = walk
        for h in range(hours):
            p = float(walk[h])
            candles.append({"coin": coin, "market": "aud", "hour_start": START + timedelta(hours=h), "open": p,
                            "high": p * 1.01, "low": p * 0.99, "close": p, "volume": 1.0, "quote_volume": p,
                            "trade_count": 60, "source": "trades", "computed_at": now})
    listings, trades = [], []
    minute = timedelta(minutes=1)
    for n in range(events):
        coin, _, vol = COINS[int(rng.integers(len(COINS)))]
        at = START + timedelta(seconds=float(rng.uniform(2 * 86400, 360 * 86400)))
        base = float(walks[coin][int((at - START) / timedelta(hours=1))])
        jump = float(rng.normal(0.05, 0.15))
        minutes = np.arange(-before, after)
        path = np.where(minutes < 0, 0.0, jump * np.exp(-np.maximum(minutes, 0) / 240.0))
        noise = np.cumsum(rng.normal(0, vol / np.sqrt(365 * 24 * 60), len(minutes)))
        prices = base * np.exp(path + noise)
        first = at.replace(second=0, microsecond=0)
        for m, p in zip(minutes, prices):
            trades.append({"coin": coin, "market": "aud", "side": "buy", "amount": 1.0, "rate": float(p),
                           "total": float(p), "sold_at": first + int(m) * minute + timedelta(seconds=n % 60),
                           "collected_at": now})
        listings.append({"source": "coinspot_announcements", "external_id": f"bench-{n}", "event_type": "listing",
                         "title": f"{coin.upper()} listed", "description": None, "currencies": [coin.upper()],
                         "impact_score": 7, "published_at": at, "detected_at": at + timedelta(seconds=3),
                         "url": None, "collected_at": now})
    with engine.begin() as conn:
        for table, rows in ((Candle.__table__, candles), (Trade.__table__, trades),
                            (CatalystEvent.__table__, listings)):
            for i in range(0, len(rows), CHUNK):
                conn.execute(sa.insert(table).prefix_with("OR IGNORE" if conn.dialect.name == "sqlite" else ""),
                             rows[i:i + CHUNK])
    return len(candles), len(trades)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the replay workers): on a shared,
    busy machine a steadier figure than wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_workers(args) -> int:
    return args.workers or os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--before", type=int, default=60, help="minutes of trades before each listing")
    parser.add_argument("--after", type=int, default=26 * 60, help="minutes of trades after each listing")
    parser.add_argument("--variants", type=int, default=1, help="take-profit levels swept (1: the default only)")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="replay processes (default: one per core)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.postgres:
            engine = stack.enter_context(scratch_postgres())
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            engine = get_engine(f"sqlite:///{folder}/bench.db")
            upgrade(engine)
        began = time.perf_counter()
        candles, trades = generate(engine, args.events, args.before, args.after, args.seed)
        print(f"data: {candles:,} hourly candles, {trades:,} minute trades, {args.events} listings, "
              f"20 coins ({time.perf_counter() - began:.1f} s to write, not timed)")
        sweep = [20, 10, 30, 50][:args.variants] if args.variants > 1 else []
        began, cpu = time.perf_counter(), cpu_seconds()
        with engine.connect() as conn:
            events, _ = stored_catalysts(conn)
        book = PriceBook(engine, events[0].detected_at - MARGIN,
                         events[-1].detected_at + TradingConfig().max_holding + MARGIN)
        for coin in sorted({c.lower() for e in events for c in e.currencies}):
            book.series(coin)
        loaded = time.perf_counter() - began
        print(f"PriceBook: every coin's series loaded: {loaded:.2f} s (CPU {cpu_seconds() - cpu:.2f} s; shared with the event study when the "
              "book is passed to both)")
        began, cpu = time.perf_counter(), cpu_seconds()
        run = run_backtest(engine, TradingConfig(), take_profit_pct=sweep, seed=1, book=book,
                           workers=args.workers)
        computed, computed_cpu = time.perf_counter() - began, cpu_seconds() - cpu
        rows, trade_rows = store(engine, run, datetime.now(timezone.utc))
        stored = time.perf_counter() - began - computed
        for v in run.variants:
            for r in (v.strategy, v.baseline):
                m = r.metrics()
                print(f"  {v.name:<32} {r.kind:<8} trades {m['trades']:>4}  return {m['total_return_pct']:>8} %  "
                      f"refusals {len(r.refusals):>4}  drawdown {m['max_drawdown_pct']} %")
        total = loaded + computed + stored
        print(f"run_backtest ({len(run.variants)} variant(s), strategy + baseline, {run_workers(args)} process(es)): "
              f"{computed:.2f} s (CPU {computed_cpu:.2f} s, all processes); store {rows} + {trade_rows} rows: {stored:.2f} s")
        print(f"backtest with its price loading: {total:.2f} s   target < 30 s: {'met' if total < 30 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
