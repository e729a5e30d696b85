"""The backtest: the stored catalyst events replayed through the trading core at the
Exchange ledger's prices, for each variant of the settings, against a random-entry baseline.

The replay itself is ``omc_trading.backtest`` (the live strategy, risk gate and paper broker on a
simulated clock). This module gives it what it needs from the ledgers:

- a :class:`~omc_trading.backtest.PriceHistory` over :class:`PriceBook`: per coin, the series of
  one market (the best series' market: never an AUD trade against a USDT candle), minute series
  first, hourly where no minute series answers; bid and ask where the series saw them
  (snapshots), else the price less and plus half the spread;
- the spread: ``spread_pct`` from the run config, else the median spread of the coin's
  snapshots when the ledger has them, else 1 %;
- the latency: ``latency_seconds`` from the run config, else the median of the paper/live
  orders' ``requested_at - detected_at`` over the orders placed for events, else 6 s
  (benchmarks/README.md: publication -> filled paper order, p50 5.86 s).

``run_backtest(engine, ...)`` computes without storing (the benchmark times it);
``store(engine, run)`` replaces the rows of the variants it ran, in one transaction.
"""

import dataclasses
import itertools
import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import sqlalchemy as sa

from omc_pipelines.db.models import Backtest, BacktestTrade, CatalystEvent
from omc_pipelines.research.prices import PriceBook, Series
from omc_pipelines.trading_bridge import stored_catalysts
from omc_trading.backtest import ArrayHistory, BacktestResult, Track, baseline, buys, period, replay
from omc_trading.config import TradingConfig
from omc_trading.strategy import Catalyst, event_coins
from omc_trading.tables import orders

DEFAULT_LATENCY = timedelta(seconds=6)
DEFAULT_SPREAD_PCT = Decimal("1")
SNAPSHOTS = "exchange_price_snapshots"
# Prices are loaded this far around the events: a day before (the baseline's and the equity
# curve's context), the longest holding after.
MARGIN = timedelta(days=1)
# Fewer events than this replay in the run's own process: starting workers costs about a second.
PARALLEL_EVENTS = 50


# --- prices ------------------------------------------------------------------------------------


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def snapshot_spread_pct(series: list[Series]) -> Decimal | None:
    """The median of (ask - bid) / mid over the coin's snapshots that saw both sides, in percent."""
    spreads = []
    for s in series:
        if s.bids is None or s.asks is None:
            continue
        both = ~np.isnan(s.bids) & ~np.isnan(s.asks) & (s.asks >= s.bids) & (s.bids > 0)
        mid = (s.asks[both] + s.bids[both]) / 2
        spreads.append((s.asks[both] - s.bids[both]) / mid)
    found = np.concatenate(spreads) if spreads else np.array([])
    return None if not len(found) else _money(float(np.median(found)) * 100)


@dataclass(frozen=True)
class CoinPrices:
    coin: str
    market: str | None
    sources: list[str]
    spread_pct: Decimal
    spread_from: str  # "run config", "median of N snapshots", "default"


def price_history(book: PriceBook, coins: list[str], spread_pct: Decimal | None) -> tuple[ArrayHistory, list[CoinPrices]]:
    """The replay's history of ``coins`` from ``book``, and what each coin's prices are made of."""
    tracks: dict[str, list[Track]] = {}
    described = []
    book.preload(coins)  # one pass per table for all of them
    for coin in sorted(set(coins)):
        series = book.series(coin)
        if spread_pct is not None:
            spread, why = spread_pct, "run config spread_pct"
        elif (median := snapshot_spread_pct([s for s in series if s.source.startswith(SNAPSHOTS)])) is not None:
            spread, why = median, "median of the coin's snapshots"
        else:
            spread, why = DEFAULT_SPREAD_PCT, "default (no snapshots with bid and ask)"
        market = series[0].market if series else None
        chosen = [s for s in series if s.market == market]
        half = spread / 200
        tracks[coin] = [Track(s.source, s.tolerance, s.times, s.prices, s.bids, s.asks, half) for s in chosen]
        described.append(CoinPrices(coin, market, [s.source for s in chosen], spread, why))
    return ArrayHistory(tracks), described


def measured_latency(conn: sa.Connection) -> tuple[timedelta, int] | None:
    """The median of ``requested_at - detected_at`` over the orders placed for catalyst events."""
    rows = conn.execute(sa.select(orders.c.requested_at, CatalystEvent.detected_at).join(
        CatalystEvent, sa.and_(CatalystEvent.source == orders.c.event_source,
                               CatalystEvent.external_id == orders.c.event_external_id))).all()
    if not rows:
        return None
    return timedelta(seconds=statistics.median((r.requested_at - r.detected_at).total_seconds() for r in rows)), len(rows)


# --- the variants ------------------------------------------------------------------------------


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def variant_name(config: TradingConfig) -> str:
    hours = config.max_holding / timedelta(hours=1)
    hold = f"{int(hours)}h" if hours == int(hours) else f"{hours:g}h"
    return (f"aud={_num(config.trade_aud)} tp={_num(config.take_profit_pct)} sl={_num(config.stop_loss_pct)} "
            f"hold={hold}")


def variants(base: TradingConfig, trade_aud=(), take_profit_pct=(), stop_loss_pct=(),
             max_holding_hours=()) -> list[TradingConfig]:
    """The cartesian product of the lists; an empty list is the base's setting."""
    found = {}
    for amount, tp, sl, hours in itertools.product(
            [_money(v) for v in trade_aud] or [base.trade_aud],
            [_money(v) for v in take_profit_pct] or [base.take_profit_pct],
            [_money(v) for v in stop_loss_pct] or [base.stop_loss_pct],
            [timedelta(hours=float(v)) for v in max_holding_hours] or [base.max_holding]):
        config = dataclasses.replace(base, trade_aud=amount, take_profit_pct=tp, stop_loss_pct=sl, max_holding=hours)
        found.setdefault(variant_name(config), config)
    return list(found.values())


# --- the run -----------------------------------------------------------------------------------


@dataclass
class VariantResult:
    name: str
    config: TradingConfig
    strategy: BacktestResult
    baseline: BacktestResult


@dataclass
class BacktestRun:
    variants: list[VariantResult]
    events: list[Catalyst]
    left_out: list[str]
    latency: timedelta
    latency_from: str
    coins: list[CoinPrices] = field(default_factory=list)
    seed: int = 1
    start: datetime | None = None
    end: datetime | None = None
    note: str | None = None  # why nothing traded, when nothing could


def run_backtest(engine: sa.Engine, config: TradingConfig, *, trade_aud=(), take_profit_pct=(), stop_loss_pct=(),
                 max_holding_hours=(), latency_seconds: float | None = None, spread_pct: float | None = None,
                 seed: int = 1, start: datetime | None = None, end: datetime | None = None,
                 book: PriceBook | None = None, workers: int | None = None) -> BacktestRun:
    """Every variant's strategy and baseline over the stored events in [start, end]. Stores nothing.

    ``book``: a PriceBook already loaded (the event study's) to read prices from; ``workers``: the
    processes the replays run in (default: one per core, when there are enough events to pay for
    starting them)."""
    chosen = variants(config, trade_aud, take_profit_pct, stop_loss_pct, max_holding_hours)
    with engine.connect() as conn:
        events, left_out = stored_catalysts(conn, start, end)
        measured = measured_latency(conn)
    if latency_seconds is not None:
        latency, latency_from = timedelta(seconds=latency_seconds), "run config latency_seconds"
    elif measured is not None:
        latency, latency_from = measured[0], f"measured: median requested_at - detected_at of {measured[1]} orders"
    else:
        latency, latency_from = DEFAULT_LATENCY, ("default: no orders placed for events yet "
                                                  "(benchmarks/README.md: publication -> filled paper order p50 5.86 s)")
    run = BacktestRun([], events, left_out, latency, latency_from, seed=seed)
    coins = sorted({c for e in events if buys(e, config) or e.event_type == "delisting" for c in event_coins(e)})
    if events:
        first = min(e.detected_at for e in events)
        last = max(e.detected_at for e in events)
        longest = max(v.max_holding for v in chosen)
        book = book or PriceBook(engine, start or first - MARGIN, end or last + longest + MARGIN)
        history, run.coins = price_history(book, coins, None if spread_pct is None else _money(spread_pct))
        if not any(history.span(c) for c in coins):
            run.note = (f"no prices for the events' coins ({', '.join(coins) or 'none'}) in the Exchange ledger"
                        if coins else "no event names a coin the strategy trades")
    else:
        history = ArrayHistory({})
        run.note = "no catalyst events stored" + (f" in the period ({len(left_out)} left out)" if left_out else "")
    begin, finish = period(events, history, start, end)
    jobs = []
    for variant in chosen:
        jobs.append((replay, (events, history, variant, latency, variant.paper_start_aud),
                     {"start": begin, "end": finish}))
        jobs.append((baseline, (events, history, variant, latency, variant.paper_start_aud, seed),
                     {"start": begin, "end": finish}))
    if workers is None:
        workers = (os.cpu_count() or 1) if len(events) >= PARALLEL_EVENTS else 1
    results = _run_all(jobs, workers)
    for n, variant in enumerate(chosen):
        run.variants.append(VariantResult(variant_name(variant), variant, results[2 * n], results[2 * n + 1]))
    run.start, run.end = begin, finish
    return run


def _run_all(jobs: list, workers: int) -> list[BacktestResult]:
    """Each job ``(function, args, kwargs)``; in worker processes when more than one is asked for.
    Every replay has its own scratch database, so they run side by side unchanged."""
    workers = min(len(jobs), workers)
    if workers <= 1:
        return [function(*args, **kwargs) for function, args, kwargs in jobs]
    # Spawned, not forked: the run process may hold threads and connections a fork would copy.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *args, **kwargs) for function, args, kwargs in jobs]
        return [f.result() for f in futures]


# --- storage -----------------------------------------------------------------------------------


def _settings(result: BacktestResult, run: BacktestRun) -> dict:
    values = {f.name: str(getattr(result.config, f.name)) for f in dataclasses.fields(result.config)}
    values.update(latency_seconds=str(run.latency.total_seconds()), latency_from=run.latency_from,
                  baseline_seed=str(run.seed),
                  spread_pct={c.coin: f"{c.spread_pct} ({c.spread_from})" for c in run.coins})
    return values


def store(engine: sa.Engine, run: BacktestRun, now: datetime) -> tuple[int, int]:
    """Replace the rows of the variants ``run`` ran (both kinds), in one transaction."""
    names = [v.name for v in run.variants]
    summaries, trades = [], []
    for v in run.variants:
        for result in (v.strategy, v.baseline):
            summaries.append({
                "variant": v.name, "kind": result.kind, "settings": _settings(result, run), "start_at": result.start,
                "end_at": result.end, "events": result.events, "trades": len(result.trades),
                "start_aud": result.start_aud, "end_aud": result.end_aud, "pnl_aud": result.pnl_aud,
                "fees_aud": result.fees_aud, "total_return_pct": result.total_return_pct, "hit_rate": result.hit_rate,
                "max_drawdown_pct": result.max_drawdown_pct, "exposure_pct": result.exposure * 100,
                "computed_at": now,
            })
            trades += [{
                "variant": v.name, "kind": result.kind, "coin": t.coin, "event_source": t.event_source,
                "event_external_id": t.event_external_id, "entry_at": t.entry_at, "entry_rate": t.entry_rate,
                "coin_amount": t.coin_amount, "aud_in": t.aud_in, "exit_at": t.exit_at, "exit_rate": t.exit_rate,
                "aud_out": t.aud_out, "fees_aud": t.fees_aud, "pnl_aud": t.pnl_aud, "exit_reason": t.exit_reason,
            } for t in result.trades]
    with engine.begin() as conn:
        conn.execute(sa.delete(BacktestTrade.__table__).where(BacktestTrade.variant.in_(names)))
        conn.execute(sa.delete(Backtest.__table__).where(Backtest.variant.in_(names)))
        if summaries:
            conn.execute(sa.insert(Backtest.__table__), summaries)
        if trades:
            conn.execute(sa.insert(BacktestTrade.__table__), trades)
    return len(summaries), len(trades)
