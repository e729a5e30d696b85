"""The backtest asset: the stored catalyst events replayed through the trading core at the
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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import numpy as np
import sqlalchemy as sa
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from omc_pipelines.db.models import Backtest, BacktestTrade, CatalystEvent
from omc_pipelines.ledgers import catalyst, exchange
from omc_pipelines.research.prices import PriceBook, Series
from omc_pipelines.resources import LedgerDatabase, TradingResource
from omc_pipelines.trading_bridge import stored_catalysts
from omc_trading.backtest import ArrayHistory, BacktestResult, Track, baseline, buys, period, replay
from omc_trading.config import TradingConfig
from omc_trading.strategy import Catalyst, event_coins
from omc_trading.tables import orders

GROUP = "research"
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


class BacktestRunConfig(Config):
    """The sweep: each list left empty takes the configured trading setting (OMC_TRADE_AUD,
    OMC_TAKE_PROFIT_PCT, ...); the variants are every combination of the lists."""

    trade_aud: list[float] = []
    take_profit_pct: list[float] = []
    stop_loss_pct: list[float] = []
    max_holding_hours: list[float] = []
    # Unset: the measured latency of the orders placed for events, else 6 s.
    latency_seconds: float | None = None
    # Unset: each coin's median snapshot spread, else 1 %.
    spread_pct: float | None = None
    baseline_seed: int = 1
    # ISO dates or times (UTC); unset: every stored event.
    start: str | None = None
    end: str | None = None


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


def _moment(text: str | None, end_of_day: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        at = datetime.fromisoformat(text)
        return at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    at = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return at + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else at


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


# --- metadata ----------------------------------------------------------------------------------


def _pct(value, places: int = 2) -> str:
    return "-" if value is None else f"{float(value):.{places}f} %"


def comparison_table(run: BacktestRun) -> str:
    lines = ["| variant | kind | trades | open at end | total return | P&L / trade (AUD) | hit rate | max drawdown "
             "| exposure | fees (AUD) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in run.variants:
        for r in (v.strategy, v.baseline):
            m = r.metrics()
            per_trade = "-" if m["pnl_per_trade"] is None else f"{m['pnl_per_trade']:.2f}"
            hit = "-" if m["hit_rate"] is None else f"{m['hit_rate'] * 100:.1f} %"
            lines.append(f"| {v.name} | {r.kind} | {m['trades']} | {m['open_at_end']} | {_pct(m['total_return_pct'])} "
                         f"| {per_trade} | {hit} | {_pct(m['max_drawdown_pct'])} | {m['exposure'] * 100:.1f} % "
                         f"| {m['fees_aud']:.2f} |")
    return "\n".join(lines)


def equity_chart(run: BacktestRun) -> str:
    from omc_pipelines.research.charts import figure, png_markdown

    fig, ax = figure(9, 4)
    colours = iter(itertools.cycle(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]))
    for v in run.variants:
        colour = next(colours)
        for r, style in ((v.strategy, "-"), (v.baseline, "--")):
            if r.equity:
                ax.step([p.at for p in r.equity], [float(p.equity_aud) for p in r.equity], style, where="post",
                        color=colour, linewidth=1.2, label=f"{v.name} {r.kind}")
    ax.set_ylabel("equity (AUD)")
    ax.set_title("Equity: strategy (solid) vs random-entry baseline (dashed)")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    if ax.lines:
        ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return png_markdown(fig, "equity curves, strategy vs baseline")


def refusal_summary(run: BacktestRun) -> str:
    counts = Counter()
    examples = {}
    for v in run.variants:
        for r in (v.strategy, v.baseline):
            for refusal in r.refusals:
                what = refusal.reason.split(":")[0] if refusal.stage == "risk gate" else refusal.stage
                key = (r.kind, refusal.stage, refusal.action, what)
                counts[key] += 1
                examples.setdefault(key, refusal.reason)
    if not counts:
        return "_none_"
    lines = ["| kind | stage | side | what | count (all variants) | an example |", "|---|---|---|---|---:|---|"]
    for (kind, stage, action, what), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        example = examples[(kind, stage, action, what)].replace("|", "/")
        lines.append(f"| {kind} | {stage} | {action} | {what} | {count} | {example[:200]} |")
    return "\n".join(lines)


def spread_table(run: BacktestRun) -> str:
    if not run.coins:
        return "_no coins_"
    lines = ["| coin | market | spread | from | series |", "|---|---|---:|---|---|"]
    for c in run.coins:
        lines.append(f"| {c.coin} | {c.market or '-'} | {float(c.spread_pct):.3f} % | {c.spread_from} "
                     f"| {', '.join(c.sources) or 'no prices'} |")
    return "\n".join(lines)


@asset(
    group_name=GROUP, kinds={"sql"},
    deps=[catalyst.coinspot_announcements, catalyst.sec_filings, exchange.coinspot_price_snapshots,
          exchange.coinspot_trades, exchange.coinspot_hourly_candles, "exchange_imported_candles"],
    description="The stored catalyst events replayed through the trading core (the live strategy, risk gate and "
    "paper broker, on a simulated clock) at the Exchange ledger's prices, entering at detection + latency, for "
    "each variant of the run config's sweep, against a baseline of the same coins bought at random moments. "
    "Stores research_backtests and research_backtest_trades.",
)
def research_backtest(context: AssetExecutionContext, config: BacktestRunConfig, ledger_db: LedgerDatabase,
                      trading: TradingResource) -> MaterializeResult:
    engine = ledger_db.engine()
    run = run_backtest(
        engine, trading.config(), trade_aud=config.trade_aud, take_profit_pct=config.take_profit_pct,
        stop_loss_pct=config.stop_loss_pct, max_holding_hours=config.max_holding_hours,
        latency_seconds=config.latency_seconds, spread_pct=config.spread_pct, seed=config.baseline_seed,
        start=_moment(config.start), end=_moment(config.end, end_of_day=True),
    )
    if run.note:
        context.log.warning(f"nothing to trade: {run.note}")
    for reason in run.left_out:
        context.log.warning(reason)
    rows, trade_rows = store(engine, run, datetime.now(timezone.utc))
    return MaterializeResult(metadata={
        "comparison": MetadataValue.md(comparison_table(run)),
        "equity_curves": MetadataValue.md(equity_chart(run)),
        "refusals": MetadataValue.md(refusal_summary(run)),
        "latency": f"{run.latency.total_seconds():.2f} s",
        "latency_from": run.latency_from,
        "spreads": MetadataValue.md(spread_table(run)),
        "period": (f"{run.start:%Y-%m-%d %H:%M} to {run.end:%Y-%m-%d %H:%M} UTC"
                   if run.start and run.end else "none"),
        "events": len(run.events),
        "events_not_traded": MetadataValue.json(run.left_out),
        "note": run.note or "",
        "variants": MetadataValue.json([v.name for v in run.variants]),
        "trade_rows": trade_rows,
        "dagster/row_count": rows,
        "dagster/table_name": Backtest.__tablename__,
    })
