"""Research benchmark: the catalyst event study and the backtest over a synthetic year.

    python benchmarks/research.py [--events 500] [--coins 20] [--days 365] [--postgres] [--no-sqlite] [--profile]

Generates (not timed) a year of prices for 20 coins, BTC among them: hourly candles for the
whole year (``exchange_candles``) and 1-minute candles (``exchange_imported_candles``, source
"benchmark") for 26 hours after each of 500 listing events, for the listed coin and for BTC
(the market); each listing jumps its coin +5 % within the first hour. Loads them into a scratch
SQLite file (and with ``--postgres`` a scratch PostgreSQL database), then times each phase in
the same process, one function per phase: the event study (against BTC, then the basket) and the
backtest (the default trading settings, strategy and random-entry baseline, replayed in one
process per core, then stored). Prints rows, seconds, CPU seconds (the replay workers' included)
and peak memory (VmHWM, reset before each phase).

Targets: the study < 20 s; the study and the backtest together < 60 s.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import sqlalchemy as sa
from _common import COINS, proc_status, reset_peak_rss, scratch_postgres, scratch_sqlite, utc

from omc_pipelines.research.backtest import run_backtest, store
from omc_pipelines.research.event_study import run_study
from omc_trading.config import TradingConfig

START = utc("2025-01-01")
MINUTE_WINDOW = timedelta(hours=26)
JUMP = 0.05  # each listing's coin gains this much within the hour after detection
STUDY_TARGET_S, TOTAL_TARGET_S = 20.0, 60.0


@dataclass
class Synthetic:
    """What the benchmark writes: rows per table."""

    hourly: pd.DataFrame  # exchange_candles
    minute: pd.DataFrame  # exchange_imported_candles
    events: pd.DataFrame  # catalyst_events
    coins: list[str]


def generate(events: int = 500, coins: int = 20, days: int = 365, seed: int = 11) -> Synthetic:
    """A random walk per coin at minute resolution (annual volatility from ``_common.COINS``),
    a +5 % step over the first 30 minutes after each listing; hourly candles of the whole walk,
    minute candles of the event coin and BTC for 26 h after each event."""
    rng = np.random.default_rng(seed)
    names, prices, vols = (list(x) for x in zip(*COINS[:coins]))
    minutes = days * 24 * 60
    step = np.sqrt(1 / (365 * 24 * 60))
    log = np.cumsum(rng.standard_normal((coins, minutes)) * step * np.asarray(vols)[:, None], axis=1)
    # Events: random minutes (leaving a day at the end), a random non-BTC coin each.
    at = np.sort(rng.choice(np.arange(60, minutes - 26 * 60), size=events, replace=False))
    coin = rng.integers(1 if coins > 1 else 0, coins, size=events)
    ramp = np.clip(np.arange(0, 26 * 60) / 30, 0, 1) * np.log1p(JUMP)
    for c, m in zip(coin, at):
        log[c, m:] += np.log1p(JUMP)  # the level stays up ...
        log[c, m : m + 26 * 60] += ramp - np.log1p(JUMP)  # ... reached over 30 minutes
    price = np.asarray(prices)[:, None] * np.exp(log)

    times = pd.Timestamp(START) + pd.to_timedelta(np.arange(minutes), unit="min")
    hours = minutes // 60
    by_hour = price[:, : hours * 60].reshape(coins, hours, 60)
    hourly = pd.DataFrame({
        "coin": np.repeat(names, hours), "market": "aud",
        "hour_start": np.tile(times[::60][:hours], coins),
        "open": by_hour[:, :, 0].ravel(), "high": by_hour.max(axis=2).ravel(), "low": by_hour.min(axis=2).ravel(),
        "close": by_hour[:, :, -1].ravel(), "volume": 1.0, "quote_volume": 1.0, "trade_count": 60,
        "source": "trades",
    })

    # Minute candles: the union of every event's 26 h, per coin (BTC around every event).
    wanted = np.zeros((coins, minutes), dtype=bool)
    for c, m in zip(coin, at):
        for k in {int(c), 0}:
            wanted[k, m : m + 26 * 60] = True
    ci, mi = np.nonzero(wanted)
    p = price[ci, mi]
    minute = pd.DataFrame({
        "source": "benchmark", "coin": np.asarray(names)[ci], "market": "aud", "interval_seconds": 60,
        "open_time": times[mi], "open": p, "high": p, "low": p, "close": p, "volume": 1.0,
        "file_name": "benchmark.json",
    })

    detected = times[at] + pd.to_timedelta(rng.integers(0, 60, events), unit="s")
    events_frame = pd.DataFrame({
        "source": "coinspot_announcements", "external_id": [f"bench-{i}" for i in range(events)],
        "event_type": "listing", "title": [f"{names[c].upper()} is now listed" for c in coin],
        "currencies": [[names[c].upper()] for c in coin], "impact_score": 8,
        "published_at": detected - pd.to_timedelta(rng.integers(0, 120, events), unit="s"),
        "detected_at": detected,
    })
    return Synthetic(hourly, minute, events_frame, names)


def load(engine: sa.Engine, data: Synthetic) -> None:
    """Write the synthetic history (bulk: COPY on PostgreSQL, executemany on SQLite)."""
    now = datetime.now(timezone.utc)
    frames = {
        "exchange_candles": data.hourly.assign(computed_at=now),
        "exchange_imported_candles": data.minute.assign(imported_at=now),
    }
    events = data.events.assign(description=None, url=None, collected_at=now)
    if engine.dialect.name == "sqlite":
        import json

        events = events.assign(currencies=[json.dumps(c) for c in events["currencies"]])
    frames["catalyst_events"] = events
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        for table, frame in frames.items():
            columns = list(frame.columns)
            if engine.dialect.name == "sqlite":
                # SQLAlchemy's SQLite DateTime format: naive UTC text.
                out = {c: (frame[c].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%f")
                           if isinstance(frame[c].dtype, pd.DatetimeTZDtype) else frame[c]) for c in columns}
                rows = list(zip(*(out[c].tolist() if hasattr(out[c], "tolist") else out[c] for c in columns)))
                raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                                rows)
            else:
                values = [frame[c].dt.to_pydatetime() if isinstance(frame[c].dtype, pd.DatetimeTZDtype)
                          else frame[c].tolist() for c in columns]
                with raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in zip(*values):
                        copy.write_row(row)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def timed(name: str, phase: Callable[[], dict]) -> dict:
    """Run one phase, with its wall time and the process's peak RSS during it."""
    gc.collect()
    reset_peak_rss()
    before = proc_status("VmRSS")
    started, cpu = time.perf_counter(), cpu_seconds()
    figures = phase()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {"phase": name, "seconds": seconds, "cpu_seconds": cpu, "rss_before_mb": before / 1024, "peak_mb": proc_status("VmHWM") / 1024,
            **figures}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the backtest's replay workers): on a
    shared, busy machine a steadier figure than wall time."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def study_phase(engine: sa.Engine, coins: list[str], market: str = "btc") -> Callable[[], dict]:
    def run() -> dict:
        study = run_study(engine, market=market, watchlist=coins)
        return {"rows": len(study.rows), "measurable": study.measurable, "summary_rows": len(study.summary),
                "events": study.events, "study": study}
    return run


def backtest_phase(engine: sa.Engine) -> Callable[[], dict]:
    def run() -> dict:
        result = run_backtest(engine, TradingConfig(), seed=1)
        rows, trade_rows = store(engine, result, datetime.now(timezone.utc))
        figures = {"rows": rows + trade_rows, "events": len(result.events)}
        for variant in result.variants:
            for replayed in (variant.strategy, variant.baseline):
                m = replayed.metrics()
                figures[f"{replayed.kind}_trades"] = m["trades"]
                print(f"    {variant.name} {replayed.kind:<8}: {m['trades']} trades, total return "
                      f"{m['total_return_pct']} %, max drawdown {m['max_drawdown_pct']} %, "
                      f"{len(replayed.refusals)} refused")
        return figures
    return run


PHASES: list[tuple[str, Callable[[sa.Engine, Synthetic], Callable[[], dict]]]] = [
    ("event study (btc)", lambda engine, data: study_phase(engine, data.coins, "btc")),
    ("event study (basket)", lambda engine, data: study_phase(engine, data.coins, "basket")),
    ("backtest", lambda engine, data: backtest_phase(engine)),
]


def bench(label: str, engine: sa.Engine, data: Synthetic, profile: bool) -> list[dict]:
    started = time.perf_counter()
    load(engine, data)
    print(f"\n{label}: loaded {len(data.hourly):,} hourly candles, {len(data.minute):,} minute candles, "
          f"{len(data.events):,} events in {time.perf_counter() - started:.1f} s (not timed)")
    results = []
    for name, make in PHASES:
        phase = make(engine, data)
        if profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profiler:
                result = timed(name, phase)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(20)
        else:
            result = timed(name, phase)
        results.append(result)
        extra = ", ".join(f"{k} {v:,}" for k, v in result.items() if isinstance(v, int) and k != "rows")
        print(f"  {name:<22} {result['seconds']:6.2f} s (CPU {result['cpu_seconds']:.2f} s)  {result['rows']:,} rows ({extra})  "
              f"peak RSS {result['peak_mb']:.0f} MB (before {result['rss_before_mb']:.0f} MB)")
    for result in results:
        if "study" in result:
            _show_study(result["study"])
            break
    return results


def _show_study(study) -> None:
    listing = [s for s in study.summary if s["anchor"] == "detected" and s["measure"] == "return"]
    for s in listing:
        ci = f"[{s['ci_low']:+.2%}, {s['ci_high']:+.2%}]" if s["ci_low"] is not None else "-"
        mean = f"{s['mean']:+.2%}" if s["mean"] is not None else "-"
        print(f"    {s['event_type']} {s['horizon']:>3} return: n={s['count']:,} mean {mean} CI {ci}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--coins", type=int, default=20, choices=range(2, 21), metavar="2..20")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--postgres", action="store_true", help="also on a scratch PostgreSQL database")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile each phase (slows it; to stderr)")
    args = parser.parse_args()

    started = time.perf_counter()
    data = generate(args.events, args.coins, args.days)
    print(f"Research: {args.days} days, {args.coins} coins, {args.events} listing events "
          f"(generated in {time.perf_counter() - started:.1f} s)")
    failures = []
    targets = []
    if not args.no_sqlite:
        with scratch_sqlite() as engine:
            targets.append(("SQLite", bench("SQLite", engine, data, args.profile)))
    if args.postgres:
        with scratch_postgres() as engine:
            targets.append(("PostgreSQL", bench("PostgreSQL", engine, data, args.profile)))
    for label, results in targets:
        studies = [r for r in results if "study" in r]
        slowest = max(r["seconds"] for r in studies)
        total = sum(r["seconds"] for r in results if r["phase"] != "event study (basket)")
        print(f"{label}: study {slowest:.2f} s (target < {STUDY_TARGET_S:.0f} s: "
              f"{'met' if slowest < STUDY_TARGET_S else 'MISSED'}); the study (btc) and the backtest "
              f"{total:.2f} s (target < {TOTAL_TARGET_S:.0f} s: {'met' if total < TOTAL_TARGET_S else 'MISSED'})")
        for r in studies:
            if r["rows"] != args.events * 2 * 4 or r["measurable"] == 0:
                failures.append(f"{label} {r['phase']}: {r['rows']} rows, {r['measurable']} measurable")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
