"""The research group's assets: the catalyst event study and the backtest.

Their computations are :mod:`omc_pipelines.research.event_study` and
:mod:`omc_pipelines.research.backtest` (over ``omc_trading.backtest``); this module runs them
with the run's configuration and shows the results on the asset's page: tables, and charts
(the event study's bars, the backtest's equity curves) as images.

Both are launched by hand (the UI's Materialize, or ``dg launch --assets research_event_study``):
not scheduled, no freshness policy. The event study's empty-ledger rule: no catalyst events is
an empty truth (the stored study is replaced by nothing); events but no prices at all fails the
run and keeps the stored study (a wrong database, most likely).
"""

import itertools
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal

import dagster as dg

from omc_pipelines.db.models import Backtest, EventReturn
from omc_pipelines.ledgers.catalyst import assets as catalyst
from omc_pipelines.ledgers.exchange import assets as exchange, history as exchange_history
from omc_pipelines.metadata import definition, newest_rows, preview
from omc_pipelines.research.backtest import BacktestRun, run_backtest, store
from omc_pipelines.research.event_study import HORIZONS, Study, StudyError, run_study
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase, TradingResource

GROUP = "research"
TABLE = EventReturn.__tablename__
CHART_ANCHOR = "detected"  # what trading acts on
# What both studies read: the events and every price table.
INPUTS = [catalyst.coinspot_announcements, catalyst.sec_filings, exchange.coinspot_price_snapshots,
          exchange.coinspot_trades, exchange.coinspot_hourly_candles, exchange_history.exchange_imported_candles]


def _moment(text: str | None, name: str, end_of_day: bool = False) -> datetime | None:
    """An ISO date or time from run config, in UTC (a time without a zone is UTC). A date as an
    ``end`` means the whole day."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise dg.Failure(f"{name} {text!r} is not an ISO date or time (e.g. 2025-01-01 or 2025-01-01T12:00)") from None
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    moment = datetime.combine(day, time(0), tzinfo=timezone.utc)
    return moment + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else moment


def _newest(ledger_db: LedgerDatabase, model, newest, columns) -> dg.MetadataValue:
    with ledger_db.engine().connect() as conn:
        return preview(newest_rows(conn, model, newest, columns=columns), columns=columns)


# --- the event study ---------------------------------------------------------------------------


class EventStudyConfig(dg.Config):
    """How to study: against which market, how sure, over which events."""

    # "btc": abnormal = coin - BTC over the same window; "basket": coin - the equal-weighted
    # mean of the watched coins (OMC_COINSPOT_WATCHLIST) measurable in that window.
    market: Literal["btc", "basket"] = "btc"
    confidence: float = 0.95  # of the bootstrap interval of the mean
    resamples: int = 2000  # bootstrap resamples
    seed: int = 11  # the bootstrap's: the same data and seed give the same intervals
    start: str | None = None  # ISO date or time (UTC when no zone): events detected from then on
    end: str | None = None  # ... up to then (inclusive)


def _ratio(value: float | None) -> str:
    """A ratio as a percentage: 0.0484 -> 4.84 %."""
    return "-" if value is None else f"{value * 100:.2f} %"


def summary_markdown(study: Study) -> str:
    """The summary as a markdown table: percentages with 2 decimals, never scientific notation."""
    if not study.summary:
        return "_no summary: " + (study.note or "nothing to study") + "_"
    lines = [
        "| event type | source | anchor | horizon | measure | n | mean | median | hit rate | interval of the mean |",
        "|---|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for s in study.summary:
        interval = "-" if s["ci_low"] is None else f"{_ratio(s['ci_low'])} .. {_ratio(s['ci_high'])}"
        lines.append(f"| {s['event_type']} | {s['event_source']} | {s['anchor']} | {s['horizon']} | {s['measure']} | "
                     f"{s['count']:,} | {_ratio(s['mean'])} | {_ratio(s['median'])} | {_ratio(s['hit_rate'])} | {interval} |")
    return "\n".join(lines)


def reasons_markdown(study: Study) -> str:
    reasons = study.reasons()
    if not reasons:
        return "_every row is measurable_" if study.rows else "_no rows_"
    return "\n".join(["| why not measurable | rows |", "|---|---:|", *(f"| {r} | {n:,} |" for r, n in reasons)])


def chart_markdown(study: Study) -> str:
    """Mean abnormal return (from detection) per horizon, a bar per event type, the bootstrap
    interval as error bars."""
    from omc_pipelines.research.charts import figure, png_markdown

    rows = [s for s in study.summary if s["measure"] == "abnormal" and s["anchor"] == CHART_ANCHOR]
    types = sorted({(s["event_type"], s["event_source"]) for s in rows})
    several = {t for t, _ in types if sum(1 for u, _ in types if u == t) > 1}
    fig, ax = figure()
    width = 0.8 / max(1, len(types))
    for n, (event_type, source) in enumerate(types):
        by_horizon = {s["horizon"]: s for s in rows if (s["event_type"], s["event_source"]) == (event_type, source)}
        xs, means, low, high = [], [], [], []
        for x, horizon in enumerate(HORIZONS):
            s = by_horizon.get(horizon)
            if s is None or s["mean"] is None:
                continue
            xs.append(x - 0.4 + width * (n + 0.5))
            means.append(s["mean"] * 100)
            low.append(0 if s["ci_low"] is None else (s["mean"] - s["ci_low"]) * 100)
            high.append(0 if s["ci_high"] is None else (s["ci_high"] - s["mean"]) * 100)
        label = f"{event_type} ({source})" if event_type in several else event_type
        ax.bar(xs, means, width, yerr=[low, high], capsize=3, label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(HORIZONS)), list(HORIZONS))
    ax.set_xlabel("horizon after detection")
    ax.set_ylabel(f"mean abnormal return, % (vs {study.market})")
    ax.set_title(f"Mean abnormal return with its {study.confidence:.0%} bootstrap interval")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    if types:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no measurable abnormal return", ha="center", va="center", transform=ax.transAxes)
    return png_markdown(fig, "mean abnormal return per horizon and event type")


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "sql"},
    deps=INPUTS,
    **definition(EventReturn, group=GROUP, source="ledgers"),
    description="The catalyst event study: each event's coins' return and abnormal return (vs BTC or a basket of "
    "the watched coins) 5 min, 1 h, 4 h and 24 h after detection and publication, from prices as observed (never "
    "interpolated); the mean per event type with a bootstrap confidence interval. Replaces research_event_returns "
    "and research_event_study on each run.",
)
def research_event_study(context: dg.AssetExecutionContext, config: EventStudyConfig, ledger_db: LedgerDatabase,
                         coinspot: CoinSpotResource) -> dg.MaterializeResult:
    if not 0 < config.confidence < 1:
        raise dg.Failure(f"confidence must be between 0 and 1 (e.g. 0.95), not {config.confidence}")
    if config.resamples < 100:
        raise dg.Failure(f"resamples must be at least 100 for an interval worth reading, not {config.resamples}")
    start, end = _moment(config.start, "start"), _moment(config.end, "end", end_of_day=True)
    try:
        study = run_study(ledger_db.engine(), market=config.market, watchlist=coinspot.watchlist,
                          confidence=config.confidence, resamples=config.resamples, seed=config.seed,
                          start=start, end=end)
    except StudyError as exc:
        raise dg.Failure(str(exc)) from exc
    if study.note:
        context.log.info(f"the study is empty: {study.note}")
    skipped = study.skipped_rules + study.skipped_no_coin
    return dg.MaterializeResult(metadata={
        "events_studied": study.events,
        "events_skipped_rules": len(study.skipped_rules),
        "events_skipped_no_coin": len(study.skipped_no_coin),
        "skipped": dg.MetadataValue.md("\n".join(f"- {s}" for s in skipped[:20]) or "_none_"),
        "rows_measurable": study.measurable,
        "rows_not_measurable": study.not_measurable,
        "not_measurable_reasons": dg.MetadataValue.md(reasons_markdown(study)),
        "market": study.market,
        "confidence": study.confidence,
        "resamples": study.resamples,
        "period": f"{start.isoformat() if start else 'first event'} .. {end.isoformat() if end else 'last event'}",
        "note": study.note or "",
        "summary": dg.MetadataValue.md(summary_markdown(study)),
        "summary_rows": len(study.summary),
        "chart": dg.MetadataValue.md(chart_markdown(study)),
        "dagster/row_count": len(study.rows),
        "dagster/table_name": TABLE,
        "preview": _newest(ledger_db, EventReturn, ("anchor_at", "id"),
                           ("event_type", "coin", "anchor", "anchor_at", "horizon", "coin_return", "abnormal_return",
                            "reason")),
    })


# --- the backtest ------------------------------------------------------------------------------


class BacktestRunConfig(dg.Config):
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


@dg.asset(
    group_name=GROUP, kinds={"sql"},
    deps=INPUTS,
    **definition(Backtest, group=GROUP, source="ledgers"),
    description="The stored catalyst events replayed through the trading core (the live strategy, risk gate and "
    "paper broker, on a simulated clock) at the Exchange ledger's prices, entering at detection + latency, for "
    "each variant of the run config's sweep, against a baseline of the same coins bought at random moments. "
    "Stores research_backtests and research_backtest_trades.",
)
def research_backtest(context: dg.AssetExecutionContext, config: BacktestRunConfig, ledger_db: LedgerDatabase,
                      trading: TradingResource) -> dg.MaterializeResult:
    engine = ledger_db.engine()
    run = run_backtest(
        engine, trading.config(), trade_aud=config.trade_aud, take_profit_pct=config.take_profit_pct,
        stop_loss_pct=config.stop_loss_pct, max_holding_hours=config.max_holding_hours,
        latency_seconds=config.latency_seconds, spread_pct=config.spread_pct, seed=config.baseline_seed,
        start=_moment(config.start, "start"), end=_moment(config.end, "end", end_of_day=True),
    )
    if run.note:
        context.log.warning(f"nothing to trade: {run.note}")
    for reason in run.left_out:
        context.log.warning(reason)
    rows, trade_rows = store(engine, run, datetime.now(timezone.utc))
    return dg.MaterializeResult(metadata={
        "comparison": dg.MetadataValue.md(comparison_table(run)),
        "equity_curves": dg.MetadataValue.md(equity_chart(run)),
        "refusals": dg.MetadataValue.md(refusal_summary(run)),
        "latency": f"{run.latency.total_seconds():.2f} s",
        "latency_from": run.latency_from,
        "spreads": dg.MetadataValue.md(spread_table(run)),
        "period": (f"{run.start:%Y-%m-%d %H:%M} to {run.end:%Y-%m-%d %H:%M} UTC"
                   if run.start and run.end else "none"),
        "events": len(run.events),
        "events_not_traded": dg.MetadataValue.json(run.left_out),
        "note": run.note or "",
        "variants": dg.MetadataValue.json([v.name for v in run.variants]),
        "trade_rows": trade_rows,
        "dagster/row_count": rows,
        "dagster/table_name": Backtest.__tablename__,
        "preview": _newest(ledger_db, Backtest, ("computed_at", "id"),
                           ("variant", "kind", "events", "trades", "pnl_aud", "total_return_pct", "max_drawdown_pct")),
    })


ASSETS = [research_event_study, research_backtest]
