"""Asset checks: what must hold of the ledgers' rows, asked of the database itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition, asset_check

from omc_pipelines.db.models import (
    EVENT_RULES, SYMBOL, Candle, CatalystEvent, ChainTvl, CoinSentimentDaily, HumanItem, PriceSnapshot, ProtocolFees,
    ProtocolSnapshot, StablecoinSupply, Trade,
)
from omc_pipelines.ledgers import catalyst, exchange, glass, human
from omc_pipelines.resources import LedgerDatabase
from omc_pipelines.sources.coins import is_known


def no_duplicate_keys(asset, table: sa.Table, key: Sequence[str]) -> AssetChecksDefinition:
    """A check that no two rows of ``table`` share the natural ``key``.

    The unique constraint should make this impossible; the check is how a schema
    that drifted away from its constraint would be noticed."""

    @asset_check(asset=asset, name="no_duplicate_keys", description=f"No two rows share ({', '.join(key)}).")
    def _check(ledger_db: LedgerDatabase) -> AssetCheckResult:
        columns = [table.c[k] for k in key]
        duplicated = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).subquery()
        with ledger_db.engine().connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(duplicated)).scalar_one()
        return AssetCheckResult(passed=count == 0, metadata={"duplicated_keys": count})

    return _check


def _latest_observation(conn: sa.Connection):
    return conn.execute(sa.select(sa.func.max(PriceSnapshot.observed_at))).scalar_one()


@asset_check(
    asset=exchange.coinspot_price_snapshots,
    blocking=True,
    description="Every price of the latest observation is positive; NaN arrives as no price, never as a number.",
)
def prices_positive(ledger_db: LedgerDatabase) -> AssetCheckResult:
    s = PriceSnapshot
    with ledger_db.engine().connect() as conn:
        latest = _latest_observation(conn)
        bad = conn.execute(
            sa.select(s.coin, s.market, s.bid, s.ask, s.last).where(
                s.observed_at == latest, sa.or_(s.bid <= 0, s.ask <= 0, s.last <= 0)
            )
        ).all()
        without = conn.execute(
            sa.select(sa.func.count()).where(s.observed_at == latest, s.last.is_(None))
        ).scalar_one()
    return AssetCheckResult(
        passed=latest is not None and not bad,
        metadata={
            "observed_at": str(latest),
            "non_positive": len(bad),
            "examples": [f"{r.coin}/{r.market}: bid={r.bid} ask={r.ask} last={r.last}" for r in bad[:5]],
            "without_price": without,
        },
    )


@asset_check(
    asset=exchange.coinspot_price_snapshots,
    description="Flags crossed books (bid above ask) in the latest observation; a warning, since "
    "CoinSpot's summary can briefly show one.",
)
def bid_not_above_ask(ledger_db: LedgerDatabase) -> AssetCheckResult:
    s = PriceSnapshot
    with ledger_db.engine().connect() as conn:
        latest = _latest_observation(conn)
        crossed = conn.execute(
            sa.select(s.coin, s.market, s.bid, s.ask).where(s.observed_at == latest, s.bid > s.ask)
        ).all()
    return AssetCheckResult(
        passed=not crossed,
        severity=AssetCheckSeverity.WARN,
        metadata={"crossed": len(crossed), "examples": [f"{r.coin}/{r.market}: {r.bid} > {r.ask}" for r in crossed[:5]]},
    )


def written_by_latest_run(context: AssetCheckExecutionContext, asset) -> datetime | None:
    """The ``collected_at`` the asset's latest materialization stamped on the rows it wrote:
    a check of those rows judges that run, and one bad row never fails every later run."""
    event = context.instance.get_latest_materialization_event(asset.key)
    stamp = event.asset_materialization.metadata.get("collected_at") if event and event.asset_materialization else None
    return datetime.fromisoformat(stamp.value) if stamp else None


@asset_check(asset=exchange.coinspot_trades, blocking=True,
             description="Every trade the latest run stored has a positive amount, rate and total.")
def trades_positive(context, ledger_db: LedgerDatabase) -> AssetCheckResult:
    t = Trade
    collected_at = written_by_latest_run(context, exchange.coinspot_trades)
    if collected_at is None:
        return AssetCheckResult(passed=True, metadata={"checked": "no run has stored trades yet"})
    with ledger_db.engine().connect() as conn:
        mine = t.collected_at == collected_at
        written = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
        bad = conn.execute(sa.select(sa.func.count()).where(mine, sa.or_(t.amount <= 0, t.rate <= 0, t.total <= 0))).scalar_one()
    return AssetCheckResult(passed=bad == 0, metadata={"collected_at": collected_at.isoformat(), "written": written,
                                                       "non_positive": bad})


@asset_check(
    asset=exchange.coinspot_hourly_candles,
    blocking=True,
    description="Every candle is consistent: low <= open, close <= high; volume and trade count not negative.",
)
def candles_consistent(ledger_db: LedgerDatabase) -> AssetCheckResult:
    c = Candle
    inconsistent = sa.or_(
        c.low > c.open, c.low > c.close, c.open > c.high, c.close > c.high, c.volume < 0, c.trade_count < 0
    )
    with ledger_db.engine().connect() as conn:
        bad = conn.execute(sa.select(c.coin, c.market, c.hour_start).where(inconsistent).limit(5)).all()
        count = conn.execute(sa.select(sa.func.count()).where(inconsistent)).scalar_one()
    return AssetCheckResult(
        passed=count == 0,
        metadata={"inconsistent": count, "examples": [f"{r.coin}/{r.market} {r.hour_start}" for r in bad]},
    )


CATALYST_CHECK_DESCRIPTIONS = {
    "events_have_source_ids": "Every event has the id its source gave it.",
    "no_events_from_the_future": "No event was published after it was detected (a time-zone error shows up here).",
    "currencies_are_symbols": "Every currency is a coin symbol; symbols the registry does not know yet are listed.",
    "impact_in_range": "Every impact score is 1 to 10.",
}


def catalyst_checks(asset, source: str) -> list[AssetChecksDefinition]:
    """What must hold of a catalyst source's events before anything trades on them: the rules
    of ``EVENT_RULES``, which the trading side applies to each event it reads too."""

    def build(name: str, rule) -> AssetChecksDefinition:
        @asset_check(asset=asset, name=name, blocking=True, description=CATALYST_CHECK_DESCRIPTIONS[name])
        def _check(context, ledger_db: LedgerDatabase) -> AssetCheckResult:
            # The events this run wrote: one bad row must not block every later run (and trading).
            collected_at = written_by_latest_run(context, asset)
            with ledger_db.engine().connect() as conn:
                events = conn.execute(sa.select(CatalystEvent).where(
                    CatalystEvent.source == source, CatalystEvent.collected_at == collected_at)).all()
            bad = [(e.external_id, problem) for e in events if (problem := rule(e))]
            metadata = {"checked": len(events), "failing": len(bad),
                        "examples": [f"{event_id}: {problem}" for event_id, problem in bad[:5]]}
            if name == "currencies_are_symbols":
                symbols = {c for e in events for c in e.currencies if SYMBOL.match(c)}
                metadata["not_in_registry"] = sorted(c for c in symbols if not is_known(c))
            return AssetCheckResult(passed=not bad, metadata=metadata)

        return _check

    return [build(name, rule) for name, rule in EVENT_RULES.items()]


def tvl_not_negative(asset, model) -> AssetChecksDefinition:
    @asset_check(asset=asset, name="tvl_not_negative", blocking=True,
                 description="No TVL below zero among the rows the latest run wrote.")
    def _check(context, ledger_db: LedgerDatabase) -> AssetCheckResult:
        collected_at = written_by_latest_run(context, asset)
        mine = model.collected_at == collected_at
        with ledger_db.engine().connect() as conn:
            written = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
            bad = conn.execute(sa.select(sa.func.count()).where(mine, model.tvl_usd < 0)).scalar_one()
        return AssetCheckResult(passed=bad == 0, metadata={"written": written, "negative": bad})

    return _check


def sentiment_in_range(asset, source_filter) -> AssetChecksDefinition:
    @asset_check(asset=asset, name="sentiment_in_range", blocking=True,
                 description="Every item's sentiment is within [-1, 1] and its weight at least 1.")
    def _check(ledger_db: LedgerDatabase) -> AssetCheckResult:
        h = HumanItem
        with ledger_db.engine().connect() as conn:
            bad = conn.execute(sa.select(sa.func.count()).where(
                source_filter, sa.or_(h.sentiment < -1, h.sentiment > 1, h.weight < 1))).scalar_one()
        return AssetCheckResult(passed=bad == 0, metadata={"out_of_range": bad})

    return _check


def source_configured(asset, resource_key: str, fields: tuple[str, ...], variables: str) -> AssetChecksDefinition:
    """A warning, not a failure: a source without credentials is shown, never blocking."""

    @asset_check(asset=asset, name="source_configured", required_resource_keys={resource_key},
                 description=f"The source has its credentials ({variables}).")
    def _check(context) -> AssetCheckResult:
        resource = getattr(context.resources, resource_key)
        configured = all(getattr(resource, field) for field in fields)
        return AssetCheckResult(
            passed=configured, severity=AssetCheckSeverity.WARN,
            metadata={"status": "configured" if configured else f"not configured: set {variables}"},
        )

    return _check


@asset_check(asset=human.coin_sentiment_daily, blocking=True,
             description="Means within [-1, 1], shares within [0, 1], at least one item per row.")
def sentiment_aggregate_in_range(ledger_db: LedgerDatabase) -> AssetCheckResult:
    c = CoinSentimentDaily
    with ledger_db.engine().connect() as conn:
        bad = conn.execute(sa.select(sa.func.count()).where(sa.or_(
            c.mean_sentiment < -1, c.mean_sentiment > 1, c.weighted_sentiment < -1, c.weighted_sentiment > 1,
            c.share_positive < 0, c.share_positive > 1, c.share_negative < 0, c.share_negative > 1, c.items < 1,
        ))).scalar_one()
    return AssetCheckResult(passed=bad == 0, metadata={"out_of_range": bad})


ALL = [
    prices_positive,
    bid_not_above_ask,
    trades_positive,
    candles_consistent,
    no_duplicate_keys(exchange.coinspot_price_snapshots, PriceSnapshot.__table__, exchange.SNAPSHOT_KEY),
    no_duplicate_keys(exchange.coinspot_trades, Trade.__table__, exchange.TRADE_KEY),
    no_duplicate_keys(exchange.coinspot_hourly_candles, Candle.__table__, exchange.CANDLE_KEY),
    *catalyst_checks(catalyst.coinspot_announcements, catalyst.ANNOUNCEMENTS_SOURCE),
    *catalyst_checks(catalyst.sec_filings, catalyst.SEC_SOURCE),
    tvl_not_negative(glass.defillama_chain_tvl, ChainTvl),
    tvl_not_negative(glass.defillama_protocols, ProtocolSnapshot),
    no_duplicate_keys(glass.defillama_chain_tvl, ChainTvl.__table__, ("chain", "day")),
    no_duplicate_keys(glass.defillama_protocols, ProtocolSnapshot.__table__, ("slug", "as_of")),
    no_duplicate_keys(glass.defillama_fees, ProtocolFees.__table__, ("slug", "data_type", "as_of")),
    no_duplicate_keys(glass.defillama_stablecoins, StablecoinSupply.__table__, ("stablecoin_id", "as_of")),
    sentiment_in_range(human.news_items, HumanItem.source.like("news:%")),
    sentiment_in_range(human.cryptopanic_posts, HumanItem.source == "cryptopanic"),
    sentiment_in_range(human.reddit_posts, HumanItem.source == "reddit"),
    source_configured(human.cryptopanic_posts, "cryptopanic", ("token",), "OMC_CRYPTOPANIC_TOKEN"),
    source_configured(human.reddit_posts, "reddit", ("client_id", "client_secret"),
                      "OMC_REDDIT_CLIENT_ID and OMC_REDDIT_CLIENT_SECRET"),
    sentiment_aggregate_in_range,
    no_duplicate_keys(human.news_items, HumanItem.__table__, human.ITEM_KEY),
    no_duplicate_keys(human.coin_sentiment_daily, CoinSentimentDaily.__table__, ("coin", "day")),
]
