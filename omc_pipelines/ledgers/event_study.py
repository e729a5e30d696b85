"""Research: the catalyst event study as an asset (``research_event_study``).

The computation is :mod:`omc_pipelines.research.event_study`; this module runs it with the
run's configuration and shows the result on the asset's page: the summary as a table, the mean
abnormal return per horizon and event type as a chart with its confidence interval.

Launched by hand (the UI's Materialize, or ``dg launch --assets research_event_study``): not
scheduled, no freshness policy. Empty-ledger rule: no catalyst events is an empty truth (the
stored study is replaced by nothing); events but no prices at all fails the run and keeps
the stored study (a wrong database, most likely).
"""

from datetime import datetime, timezone
from typing import Literal

import dagster as dg

from omc_pipelines.db.models import EventReturn
from omc_pipelines.research.event_study import HORIZONS, Study, StudyError, run_study
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase

GROUP = "research"
TABLE = EventReturn.__tablename__
CHART_ANCHOR = "detected"  # what trading acts on


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


def _moment(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise dg.Failure(f"{name} {text!r} is not an ISO date or time (e.g. 2025-01-01 or 2025-01-01T12:00)") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _pct(value: float | None) -> str:
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
        interval = "-" if s["ci_low"] is None else f"{_pct(s['ci_low'])} .. {_pct(s['ci_high'])}"
        lines.append(f"| {s['event_type']} | {s['event_source']} | {s['anchor']} | {s['horizon']} | {s['measure']} | "
                     f"{s['count']:,} | {_pct(s['mean'])} | {_pct(s['median'])} | {_pct(s['hit_rate'])} | {interval} |")
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
    deps=["coinspot_announcements", "sec_filings", "coinspot_price_snapshots", "coinspot_trades",
          "coinspot_hourly_candles", "exchange_imported_candles"],
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
    start, end = _moment(config.start, "start"), _moment(config.end, "end")
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
    })
