"""The Exchange ledger: CoinSpot prices, trades, and hourly candles built from them."""


from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset

from omc_pipelines.db import upsert
from omc_pipelines.ledgers import keep_valid
from omc_pipelines.db.models import Candle, PriceSnapshot, Trade
from omc_pipelines.metadata import definition, per_partition, preview, standard
from omc_pipelines.partitions import CANDLE_WEEKS
from omc_pipelines.resources import CoinSpotResource, LedgerDatabase
from omc_pipelines.sources.coinspot import PriceQuote, TradePrint
from omc_pipelines.sources.http import SourceError
from omc_trading.positions import held_coins

GROUP = "exchange"
SNAPSHOT_KEY = ("coin", "market", "observed_at")
TRADE_KEY = ("coin", "market", "sold_at", "side", "amount", "rate")
CANDLE_KEY = ("coin", "market", "hour_start")
# The run tag a schedule tick sets, so that a retried tick re-writes the same observation.
OBSERVED_AT_TAG = "omc/observed_at"
# A long backfill is aggregated a week at a time: progress in the log, and no
# single sort in the database grows with the length of the backfill.
CANDLE_CHUNK = timedelta(days=7)


def observation_time(context: AssetExecutionContext) -> datetime:
    tagged = context.run.tags.get(OBSERVED_AT_TAG)
    if tagged:
        return datetime.fromisoformat(tagged).astimezone(timezone.utc)
    return datetime.now(timezone.utc).replace(microsecond=0)


class AllCoinsFailed(RuntimeError):
    """Every coin of the watchlist failed: the run fails, naming each coin and why."""


def _all_failed(what: str, failures: dict[str, str]) -> AllCoinsFailed:
    return AllCoinsFailed(f"no {what} for any coin: " + "; ".join(f"{coin}: {why}" for coin, why in failures.items()))


def price_problem(quote: PriceQuote) -> str | None:
    """Why a quote must not be stored (a price of zero or less), or None."""
    bad = [f"{name}={value}" for name, value in (("bid", quote.bid), ("ask", quote.ask), ("last", quote.last))
           if value is not None and value <= 0]
    return f"{quote.coin}/{quote.market}: non-positive price ({', '.join(bad)})" if bad else None


def trade_problem(trade: TradePrint) -> str | None:
    """Why a trade must not be stored (an amount, rate or total of zero or less), or None."""
    bad = [f"{name}={value}" for name, value in (("amount", trade.amount), ("rate", trade.rate), ("total", trade.total))
           if value <= 0]
    return f"{trade.coin}/{trade.market} {trade.side} at {trade.sold_at:%Y-%m-%d %H:%M:%S}: {', '.join(bad)}" if bad else None


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
    **definition(PriceSnapshot, group=GROUP, source="coinspot"),
    description="CoinSpot bid/ask/last per coin and market, one row per observation: "
    "/pubapi/v2/latest plus /latest/{coin} for watched coins (and coins the trading books hold) the summary leaves out.",
)
def coinspot_price_snapshots(context: AssetExecutionContext, ledger_db: LedgerDatabase, coinspot: CoinSpotResource) -> MaterializeResult:
    observed_at = observation_time(context)
    failed: dict[str, str] = {}
    # The coins the trading books hold are watched too: exits and valuation need their prices
    # every minute, and a freshly listed coin is in no watchlist.
    with ledger_db.engine().connect() as conn:
        watched = list(dict.fromkeys([*coinspot.watchlist, *held_coins(conn)]))
    with coinspot.client() as client:
        try:
            quotes = client.latest()
        except SourceError as exc:
            # The summary is down: every watched coin is asked for on its own instead.
            context.log.warning(f"/latest failed, asking each watched coin: {exc}")
            failed["/latest"] = str(exc)
            quotes = []
        covered = {q.coin for q in quotes if q.market == "aud"}
        for coin in watched:
            if coin in covered:
                continue
            try:
                quotes.append(client.latest_coin(coin))
            except SourceError as exc:
                # One coin that fails (unknown to CoinSpot, a 5xx, a timeout) must not stop the others.
                context.log.warning(f"skipping {coin}: {exc}")
                failed[coin] = str(exc)
    quotes, rejected = keep_valid(quotes, price_problem, context)
    if not quotes:
        raise _all_failed("price", failed or {"all": "; ".join(rejected)})
    collected_at = datetime.now(timezone.utc)
    rows = snapshot_rows(quotes, observed_at, collected_at)
    with ledger_db.engine().begin() as conn:
        upsert(conn, PriceSnapshot.__table__, rows, SNAPSHOT_KEY, update=("bid", "ask", "last", "collected_at"))
        shown = standard(conn, PriceSnapshot, newest=("observed_at", "coin"))
    return MaterializeResult(
        metadata={
            "observed_at": MetadataValue.timestamp(observed_at),
            "collected_at": collected_at.isoformat(),
            "rows": len(rows),
            "without_price": sum(1 for r in rows if r["last"] is None),
            "failed": MetadataValue.json(failed),
            "rejected": MetadataValue.json(rejected),
            **shown,
        }
    )


@asset(
    group_name=GROUP,
    kinds={"sql"},
    **definition(Trade, group=GROUP, source="coinspot"),
    description="Completed CoinSpot trades of the watched coins (/pubapi/v2/orders/completed/{coin}), "
    "deduplicated on every field, since CoinSpot gives trades no id.",
)
def coinspot_trades(context: AssetExecutionContext, ledger_db: LedgerDatabase, coinspot: CoinSpotResource) -> MaterializeResult:
    trades: list[TradePrint] = []
    failed: dict[str, str] = {}
    with coinspot.client() as client:
        for coin in coinspot.watchlist:
            try:
                trades.extend(client.completed_orders(coin))
            except SourceError as exc:
                # CoinSpot serves only recent trades: one failing coin must not cost the others theirs.
                context.log.warning(f"skipping {coin}: {exc}")
                failed[coin] = str(exc)
    if len(failed) == len(coinspot.watchlist):
        raise _all_failed("trades", failed)
    trades, rejected = keep_valid(trades, trade_problem, context)
    collected_at = datetime.now(timezone.utc)
    rows = trade_rows(trades, collected_at)
    with ledger_db.engine().begin() as conn:
        new = upsert(conn, Trade.__table__, rows, TRADE_KEY)
        shown = standard(conn, Trade, newest=("sold_at", "id"))
    return MaterializeResult(
        metadata={
            "collected_at": collected_at.isoformat(),
            "fetched": len(rows),
            "new": new,
            "newest_trade": MetadataValue.timestamp(max(r["sold_at"] for r in rows)) if rows else "none",
            "failed": MetadataValue.json(failed),
            "rejected": MetadataValue.json(rejected),
            **shown,
        }
    )


# The hour a timestamp falls in, per dialect: PostgreSQL truncates (the session is
# in UTC); SQLite keeps UtcDateTime's naive-UTC text, so the hour is a prefix of it.
_HOUR = {
    "postgresql": "date_trunc('hour', {column})",
    "sqlite": "substr({column}, 1, 13) || ':00:00.000000'",
}

# Open and close are the first and last trade of the hour (ties broken by id, the
# order trades were stored in); one window sort serves both.
_CANDLES_FROM_TRADES = """
INSERT INTO exchange_candles
    (coin, market, hour_start, open, high, low, close, volume, quote_volume, trade_count, source, computed_at)
SELECT coin, market, hour, MIN(first_rate), MAX(rate), MIN(rate), MIN(last_rate), SUM(amount), SUM(total), COUNT(*),
       'trades', :computed_at
FROM (
    SELECT coin, market, {hour} AS hour, rate, amount, total,
           FIRST_VALUE(rate) OVER w AS first_rate,
           LAST_VALUE(rate) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_rate
    FROM exchange_trades
    WHERE sold_at >= :start AND sold_at < :end
    WINDOW w AS (PARTITION BY coin, market, {hour} ORDER BY sold_at, id)
) AS t
GROUP BY coin, market, hour
"""

# Hours with a price but no trade: a candle of last prices, without volume.
_CANDLES_FROM_SNAPSHOTS = """
INSERT INTO exchange_candles
    (coin, market, hour_start, open, high, low, close, volume, quote_volume, trade_count, source, computed_at)
SELECT coin, market, hour, MIN(first_last), MAX(last), MIN(last), MIN(last_last), 0, 0, 0, 'snapshots', :computed_at
FROM (
    SELECT coin, market, {hour} AS hour, last,
           FIRST_VALUE(last) OVER w AS first_last,
           LAST_VALUE(last) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS last_last
    FROM exchange_price_snapshots
    WHERE observed_at >= :start AND observed_at < :end AND last IS NOT NULL
    WINDOW w AS (PARTITION BY coin, market, {hour} ORDER BY observed_at, id)
) AS s
WHERE NOT EXISTS (
    SELECT 1 FROM exchange_candles AS c WHERE c.coin = s.coin AND c.market = s.market AND c.hour_start = s.hour
)
GROUP BY coin, market, hour
"""


def _bind_time(conn: sa.Connection, when: datetime):
    # Raw SQL skips UtcDateTime: give SQLite its storage format, PostgreSQL an aware time.
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else when


def _chunks(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    while start < end:
        yield start, min(start + CANDLE_CHUNK, end)
        start += CANDLE_CHUNK


def build_candles(
    conn: sa.Connection, start: datetime, end: datetime, computed_at: datetime,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, int]:
    """Replace the candles of [start, end) with ones computed from the stored trades
    and snapshots, a week at a time, inside the database (a year of trades never
    travels to Python). Runs in the caller's transaction: all or nothing."""
    hour = {name: _HOUR[conn.dialect.name].format(column=name) for name in ("sold_at", "observed_at")}
    from_trades = sa.text(_CANDLES_FROM_TRADES.format(hour=hour["sold_at"]))
    from_snapshots = sa.text(_CANDLES_FROM_SNAPSHOTS.format(hour=hour["observed_at"]))
    counts = {"deleted": 0, "from_trades": 0, "from_snapshots": 0}
    chunks = list(_chunks(start, end))
    for number, (chunk_start, chunk_end) in enumerate(chunks, 1):
        window = {"start": _bind_time(conn, chunk_start), "end": _bind_time(conn, chunk_end),
                  "computed_at": _bind_time(conn, computed_at)}
        column = Candle.__table__.c.hour_start
        counts["deleted"] += conn.execute(sa.delete(Candle).where(column >= chunk_start, column < chunk_end)).rowcount
        counts["from_trades"] += conn.execute(from_trades, window).rowcount
        counts["from_snapshots"] += conn.execute(from_snapshots, window).rowcount
        if len(chunks) > 1:
            progress(f"candles {chunk_start:%Y-%m-%d} .. {chunk_end:%Y-%m-%d}: week {number} of {len(chunks)}")
    return counts


@asset(
    group_name=GROUP,
    kinds={"sql"},
    partitions_def=CANDLE_WEEKS,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[coinspot_trades, coinspot_price_snapshots],
    **definition(Candle, group=GROUP, source="coinspot"),
    description="Hourly OHLCV per coin and market from stored trades (from price snapshots, "
    "without volume, for hours with no trade), aggregated in the database. Partitioned by week, Monday to "
    "Monday UTC (each week's materialization lists its hours); a run replaces exactly the ended hours of its weeks.",
)
def coinspot_hourly_candles(context: AssetExecutionContext, ledger_db: LedgerDatabase) -> MaterializeResult:
    window = context.partition_time_window
    now = datetime.now(timezone.utc)
    # The week under way is built up to the last hour that has ended: no half-hour candle.
    start, end = window.start.astimezone(timezone.utc), min(window.end.astimezone(timezone.utc), hour_of(now))
    end = max(start, end)
    context.log.info(f"building candles for [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC")
    with ledger_db.engine().begin() as conn:
        counts = build_candles(conn, start, end, now, progress=context.log.info)
        in_window = sa.and_(Candle.hour_start >= start, Candle.hour_start < end)
        shown = standard(conn, Candle, newest=("hour_start", "coin"), where=in_window,
                         columns=("coin", "market", "hour_start", "open", "high", "low", "close", "volume",
                                  "trade_count", "source"))
        weeks = hours_by_week(conn, window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc), end)
    per_week = {week: {"dagster/row_count": sum(h["from trades"] + h["from snapshots"] for h in hours),
                       "hours": preview(hours, limit=len(hours))} for week, hours in weeks.items()}
    per_partition(context, per_week)
    return MaterializeResult(
        metadata={
            "window_start": MetadataValue.timestamp(start),
            "window_end": MetadataValue.timestamp(end),
            "candles": counts["from_trades"] + counts["from_snapshots"],
            **counts,
            **shown,
            **(per_week[context.partition_key] if len(weeks) == 1 else {}),
        }
    )


def hour_of(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def hours_by_week(conn: sa.Connection, start: datetime, end: datetime, built_until: datetime) -> dict[str, list[dict]]:
    """Each week of [start, end) (by partition key: its Monday) with the status of its 168 hours:
    candles from trades and from snapshots, and whether the hour is built, empty, or not yet ended."""
    found = conn.execute(
        sa.select(Candle.hour_start, Candle.source, sa.func.count())
        .where(Candle.hour_start >= start, Candle.hour_start < end)
        .group_by(Candle.hour_start, Candle.source)
    ).all()
    counted: dict[datetime, dict[str, int]] = {}
    for hour, source, n in found:
        counted.setdefault(hour.astimezone(timezone.utc), {})[source] = n
    weeks: dict[str, list[dict]] = {}
    hour = start
    while hour < end:
        got = counted.get(hour, {})
        status = "not yet ended" if hour >= built_until else "built" if got else "no trades or prices"
        monday = hour.date() - timedelta(days=hour.weekday())
        weeks.setdefault(monday.isoformat(), []).append(
            {"hour": hour.strftime("%a %Y-%m-%d %H:00"), "from trades": got.get("trades", 0),
             "from snapshots": got.get("snapshots", 0), "status": status})
        hour += timedelta(hours=1)
    return weeks


ASSETS = [coinspot_price_snapshots, coinspot_trades, coinspot_hourly_candles]
