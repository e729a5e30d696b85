"""The Exchange ledger's checks: what must hold of its prices, trades and candles."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from omc_pipelines.checks import no_duplicate_keys, written_by_latest_run
from omc_pipelines.db.models import Candle, PriceSnapshot, Trade
from omc_pipelines.ledgers.exchange import assets as exchange
from omc_pipelines.resources import LedgerDatabase


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


ALL = [
    prices_positive,
    bid_not_above_ask,
    trades_positive,
    candles_consistent,
    no_duplicate_keys(exchange.coinspot_price_snapshots, PriceSnapshot.__table__, exchange.SNAPSHOT_KEY),
    no_duplicate_keys(exchange.coinspot_trades, Trade.__table__, exchange.TRADE_KEY),
    no_duplicate_keys(exchange.coinspot_hourly_candles, Candle.__table__, exchange.CANDLE_KEY),
]
