"""The Exchange ledger: CoinSpot prices, trades, and hourly candles built from them."""


from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from omc_pipelines.db import replace_window, upsert
from omc_pipelines.db.models import Candle, PriceSnapshot, Trade
from omc_pipelines.partitions import HOURLY
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase
from omc_pipelines.sources.coinspot import PriceQuote, TradePrint
from omc_pipelines.sources.http import SourceRefused

GROUP = "exchange"
SNAPSHOT_KEY = ("coin", "market", "observed_at")
TRADE_KEY = ("coin", "market", "sold_at", "side", "amount", "rate")
CANDLE_KEY = ("coin", "market", "hour_start")
# The run tag a schedule tick sets, so that a retried tick re-writes the same observation.
OBSERVED_AT_TAG = "omc/observed_at"
# A long backfill is aggregated a week at a time, so memory stays flat however long it is.
CANDLE_CHUNK = timedelta(days=7)


def preview(rows: list[dict] | pd.DataFrame, limit: int = 10) -> MetadataValue:
    """The first rows as a Markdown table for the asset's page in the UI."""
    frame = pd.DataFrame(rows).head(limit)
    return MetadataValue.md(frame.to_markdown(index=False) if not frame.empty else "_no rows_")


def observation_time(context: AssetExecutionContext) -> datetime:
    tagged = context.run.tags.get(OBSERVED_AT_TAG)
    if tagged:
        return datetime.fromisoformat(tagged).astimezone(timezone.utc)
    return datetime.now(timezone.utc).replace(microsecond=0)


def snapshot_rows(quotes: list[PriceQuote], observed_at: datetime, collected_at: datetime) -> list[dict]:
    return [
        {"coin": q.coin, "market": q.market, "bid": q.bid, "ask": q.ask, "last": q.last,
         "observed_at": observed_at, "collected_at": collected_at}
        for q in quotes
    ]


def trade_rows(trades: list[TradePrint], collected_at: datetime) -> list[dict]:
    return [
        {"coin": t.coin, "market": t.market, "side": t.side, "amount": t.amount, "rate": t.rate,
         "total": t.total, "sold_at": t.sold_at, "collected_at": collected_at}
        for t in trades
    ]


@asset(
    group_name=GROUP,
    kinds={"sql"},
    description="CoinSpot bid/ask/last per coin and market, one row per observation: "
    "/pubapi/v2/latest plus /latest/{coin} for watched coins the summary leaves out.",
)
def coinspot_price_snapshots(context: AssetExecutionContext, ledger_db: LedgerDatabase, coinspot: CoinSpotResource) -> MaterializeResult:
    observed_at = observation_time(context)
    not_listed = []
    with coinspot.client() as client:
        quotes = client.latest()
        covered = {q.coin for q in quotes if q.market == "aud"}
        for coin in coinspot.watchlist:
            if coin in covered:
                continue
            try:
                quotes.append(client.latest_coin(coin))
            except SourceRefused as exc:
                # A watched coin CoinSpot doesn't know must not stop the others.
                context.log.warning(f"skipping {coin}: {exc}")
                not_listed.append(coin)
    rows = snapshot_rows(quotes, observed_at, datetime.now(timezone.utc))
    with ledger_db.engine().begin() as conn:
        upsert(conn, PriceSnapshot.__table__, rows, SNAPSHOT_KEY, update=("bid", "ask", "last", "collected_at"))
    return MaterializeResult(
        metadata={
            "observed_at": MetadataValue.timestamp(observed_at),
            "rows": len(rows),
            "without_price": sum(1 for r in rows if r["last"] is None),
            "not_listed": MetadataValue.json(not_listed),
            "preview": preview(rows),
        }
    )


@asset(
    group_name=GROUP,
    kinds={"sql"},
    description="Completed CoinSpot trades of the watched coins (/pubapi/v2/orders/completed/{coin}), "
    "deduplicated on every field, since CoinSpot gives trades no id.",
)
def coinspot_trades(context: AssetExecutionContext, ledger_db: LedgerDatabase, coinspot: CoinSpotResource) -> MaterializeResult:
    trades: list[TradePrint] = []
    not_listed = []
    with coinspot.client() as client:
        for coin in coinspot.watchlist:
            try:
                trades.extend(client.completed_orders(coin))
            except SourceRefused as exc:
                context.log.warning(f"skipping {coin}: {exc}")
                not_listed.append(coin)
    rows = trade_rows(trades, datetime.now(timezone.utc))
    with ledger_db.engine().begin() as conn:
        new = upsert(conn, Trade.__table__, rows, TRADE_KEY)
    return MaterializeResult(
        metadata={
            "fetched": len(rows),
            "new": new,
            "newest_trade": MetadataValue.timestamp(max(r["sold_at"] for r in rows)) if rows else "none",
            "not_listed": MetadataValue.json(not_listed),
            "preview": preview(sorted(rows, key=lambda r: r["sold_at"], reverse=True)),
        }
    )


def candles_from_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """Hourly OHLCV per coin and market. ``trades`` has coin, market, sold_at (UTC),
    rate, amount and total; open and close are the first and last trade of the hour."""
    trades = trades.assign(hour_start=trades["sold_at"].dt.floor("h")).sort_values("sold_at", kind="stable")
    return (
        trades.groupby(["coin", "market", "hour_start"], sort=False)
        .agg(
            open=("rate", "first"), high=("rate", "max"), low=("rate", "min"), close=("rate", "last"),
            volume=("amount", "sum"), quote_volume=("total", "sum"), trade_count=("rate", "size"),
        )
        .reset_index()
        .assign(source="trades")
    )


def candles_from_snapshots(snapshots: pd.DataFrame, traded: pd.DataFrame) -> pd.DataFrame:
    """Candles from last prices for the coin-market-hours that had no trade: no volume."""
    snapshots = snapshots.dropna(subset=["last"])
    snapshots = snapshots.assign(hour_start=snapshots["observed_at"].dt.floor("h")).sort_values("observed_at", kind="stable")
    if not traded.empty:
        seen = pd.MultiIndex.from_frame(traded[["coin", "market", "hour_start"]])
        keep = ~pd.MultiIndex.from_frame(snapshots[["coin", "market", "hour_start"]]).isin(seen)
        snapshots = snapshots[keep]
    return (
        snapshots.groupby(["coin", "market", "hour_start"], sort=False)
        .agg(open=("last", "first"), high=("last", "max"), low=("last", "min"), close=("last", "last"))
        .reset_index()
        .assign(volume=0.0, quote_volume=0.0, trade_count=0, source="snapshots")
    )


def _read_frame(conn: sa.Connection, sql: str, time_column: str, start: datetime, end: datetime) -> pd.DataFrame:
    # Raw SQL, not the ORM: a year of trades is millions of rows, and per-value
    # type conversion would cost more than the aggregation itself.
    frame = pd.read_sql_query(sa.text(sql), conn, params={"start": _bind_time(conn, start), "end": _bind_time(conn, end)})
    frame[time_column] = pd.to_datetime(frame[time_column], utc=True, format="ISO8601")
    return frame


def _bind_time(conn: sa.Connection, when: datetime):
    # SQLite stores naive UTC text (see UtcDateTime) in this format; compare like with like.
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else when


def _chunks(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    while start < end:
        yield start, min(start + CANDLE_CHUNK, end)
        start += CANDLE_CHUNK


def build_candles(conn: sa.Connection, start: datetime, end: datetime, computed_at: datetime) -> dict[str, int]:
    """Replace the candles of [start, end) with ones computed from the stored trades
    and snapshots. Runs in the caller's transaction."""
    counts = {"deleted": 0, "from_trades": 0, "from_snapshots": 0}
    for chunk_start, chunk_end in _chunks(start, end):
        trades = _read_frame(
            conn,
            "SELECT coin, market, sold_at, rate, amount, total FROM exchange_trades "
            "WHERE sold_at >= :start AND sold_at < :end",
            "sold_at", chunk_start, chunk_end,
        )
        snapshots = _read_frame(
            conn,
            "SELECT coin, market, observed_at, last FROM exchange_price_snapshots "
            "WHERE observed_at >= :start AND observed_at < :end AND last IS NOT NULL",
            "observed_at", chunk_start, chunk_end,
        )
        traded = candles_from_trades(trades)
        quoted = candles_from_snapshots(snapshots, traded)
        candles = pd.concat([traded, quoted], ignore_index=True) if not quoted.empty else traded
        rows = candles.assign(computed_at=computed_at).to_dict("records")
        deleted, _ = replace_window(conn, Candle.__table__, "hour_start", chunk_start, chunk_end, rows, CANDLE_KEY)
        counts["deleted"] += deleted
        counts["from_trades"] += len(traded)
        counts["from_snapshots"] += len(quoted)
    return counts


@asset(
    group_name=GROUP,
    kinds={"pandas", "sql"},
    partitions_def=HOURLY,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[coinspot_trades, coinspot_price_snapshots],
    description="Hourly OHLCV per coin and market from stored trades (from price snapshots, "
    "without volume, for hours with no trade). A run replaces exactly its hours.",
)
def coinspot_hourly_candles(context: AssetExecutionContext, ledger_db: LedgerDatabase) -> MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    context.log.info(f"building candles for [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC")
    with ledger_db.engine().begin() as conn:
        counts = build_candles(conn, start, end, datetime.now(timezone.utc))
        sample = pd.read_sql_query(
            sa.select(Candle.coin, Candle.market, Candle.hour_start, Candle.open, Candle.high, Candle.low,
                      Candle.close, Candle.volume, Candle.trade_count, Candle.source)
            .where(Candle.hour_start >= start, Candle.hour_start < end)
            .order_by(Candle.hour_start.desc(), Candle.coin)
            .limit(10),
            conn,
        )
    return MaterializeResult(
        metadata={
            "window_start": MetadataValue.timestamp(start),
            "window_end": MetadataValue.timestamp(end),
            "candles": counts["from_trades"] + counts["from_snapshots"],
            **counts,
            "preview": preview(sample),
        }
    )
