"""Lots, positions and P&L of one book (paper or live; the two never mix).

A filled buy opens a lot; a filled sell closes the oldest lots first (FIFO), each match a
``trading_realized`` row whose P&L counts the fees of both sides: a lot's cost is what the
buy paid, fee included, and a sell's proceeds are what it received, fee deducted. Amounts
split across lots are rounded to the cent, and the last piece takes the remainder, so the
pieces always add up to the whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from omc_trading.broker import Fill, Mode, Quote
from omc_trading.money import COIN_PLACES, aud
from omc_trading.clock import utc_day
from omc_trading.tables import lots, orders, pnl_daily, positions, realized


@dataclass(frozen=True)
class Lot:
    id: int
    coin: str
    remaining: Decimal
    cost_remaining: Decimal  # the lot's cost less the cost already matched to sells
    opened_at: datetime


@dataclass(frozen=True)
class Holding:
    """What the book holds of one coin, from its open lots."""

    coin: str
    coin_amount: Decimal
    cost_aud: Decimal  # fees included
    opened_at: datetime  # of the oldest open lot: when this position opened


@dataclass(frozen=True)
class Position:
    coin: str
    coin_amount: Decimal
    cost_aud: Decimal
    average_rate: Decimal
    opened_at: datetime
    last_rate: Decimal | None  # the bid: what selling would get, before the fee
    market_value_aud: Decimal | None
    unrealized_pnl_aud: Decimal | None
    realized_pnl_aud: Decimal


@dataclass(frozen=True)
class DailyPnl:
    mode: Mode
    day: date
    realized_pnl_aud: Decimal  # sells closed that UTC day
    unrealized_pnl_aud: Decimal  # open positions at the prices given, when computed
    fees_aud: Decimal
    spent_aud: Decimal
    orders_filled: int


def open_lots(conn: sa.Connection, mode: Mode, coin: str | None = None) -> list[Lot]:
    """Open lots, oldest first (FIFO order)."""
    query = sa.select(lots).where(lots.c.mode == mode, lots.c.closed_at.is_(None))
    if coin is not None:
        query = query.where(lots.c.coin == coin)
    rows = conn.execute(query.order_by(lots.c.opened_at, lots.c.id)).mappings().all()
    matched: dict[int, Decimal] = defaultdict(Decimal)
    if rows:
        ids = [r["id"] for r in rows]
        pieces = sa.select(realized.c.lot_id, realized.c.cost_aud).where(realized.c.lot_id.in_(ids))
        for lot_id, cost in conn.execute(pieces):
            matched[lot_id] += cost
    return [Lot(r["id"], r["coin"], r["remaining"], r["cost_aud"] - matched[r["id"]], r["opened_at"]) for r in rows]


def held_coins(conn: sa.Connection) -> list[str]:
    """Every coin an open lot holds, in either book: coins whose price must be kept."""
    return list(conn.execute(sa.select(lots.c.coin).where(lots.c.closed_at.is_(None)).distinct()
                             .order_by(lots.c.coin)).scalars())


def holdings(conn: sa.Connection, mode: Mode) -> dict[str, Holding]:
    by_coin: dict[str, list[Lot]] = defaultdict(list)
    for lot in open_lots(conn, mode):
        by_coin[lot.coin].append(lot)
    return {
        coin: Holding(coin, sum(l.remaining for l in held), sum(l.cost_remaining for l in held), held[0].opened_at)
        for coin, held in sorted(by_coin.items())
    }


def market_value(holding: Holding, quote: Quote | None) -> Decimal | None:
    """The holding at the bid (what a sell would get before its fee), or None without a bid."""
    if quote is None or quote.bid is None:
        return None
    return aud(holding.coin_amount * quote.bid)


def unrealized(held: Mapping[str, Holding], prices: Mapping[str, Quote]) -> tuple[Decimal, list[str]]:
    """Unrealized P&L of the holdings at ``prices``, and the coins without a price (counted at cost)."""
    total, unpriced = Decimal(0), []
    for coin, holding in held.items():
        value = market_value(holding, prices.get(coin))
        if value is None:
            unpriced.append(coin)
        else:
            total += value - holding.cost_aud
    return total, unpriced


def book_fill(conn: sa.Connection, mode: Mode, order_id: int, fill: Fill) -> Decimal:
    """Open a lot for a buy, close lots FIFO for a sell. Returns coins sold beyond the lots (0 normally)."""
    if fill.side == "buy":
        conn.execute(sa.insert(lots).values(
            mode=mode, coin=fill.coin, order_id=order_id, coin_amount=fill.coin_amount,
            remaining=fill.coin_amount, cost_aud=fill.aud_total, opened_at=fill.filled_at,
        ))
        return Decimal(0)
    left, proceeds_left = fill.coin_amount, fill.aud_total
    for lot in open_lots(conn, mode, fill.coin):
        if left == 0:
            break
        take = min(lot.remaining, left)
        lot_done = take == lot.remaining
        cost = lot.cost_remaining if lot_done else aud(lot.cost_remaining * take / lot.remaining)
        proceeds = proceeds_left if take == left else aud(fill.aud_total * take / fill.coin_amount)
        conn.execute(sa.insert(realized).values(
            mode=mode, coin=fill.coin, sell_order_id=order_id, lot_id=lot.id, coin_amount=take,
            proceeds_aud=proceeds, cost_aud=cost, pnl_aud=proceeds - cost, closed_at=fill.filled_at,
        ))
        conn.execute(sa.update(lots).where(lots.c.id == lot.id).values(
            remaining=lot.remaining - take, closed_at=fill.filled_at if lot_done else None,
        ))
        left -= take
        proceeds_left -= proceeds
    return left


def refresh_positions(conn: sa.Connection, mode: Mode, prices: Mapping[str, Quote], now: datetime) -> list[Position]:
    """Rewrite the book's ``trading_positions`` from its open lots at ``prices`` (call under the book lock)."""
    realized_by_coin: dict[str, Decimal] = defaultdict(Decimal)
    for coin, pnl in conn.execute(sa.select(realized.c.coin, realized.c.pnl_aud).where(realized.c.mode == mode)):
        realized_by_coin[coin] += pnl
    result = []
    for coin, holding in holdings(conn, mode).items():
        quote = prices.get(coin)
        value = market_value(holding, quote)
        result.append(Position(
            coin=coin, coin_amount=holding.coin_amount, cost_aud=holding.cost_aud,
            average_rate=(holding.cost_aud / holding.coin_amount).quantize(COIN_PLACES),
            opened_at=holding.opened_at, last_rate=quote.bid if value is not None else None,
            market_value_aud=value, unrealized_pnl_aud=None if value is None else value - holding.cost_aud,
            realized_pnl_aud=realized_by_coin[coin],
        ))
    conn.execute(sa.delete(positions).where(positions.c.mode == mode))
    if result:
        conn.execute(sa.insert(positions), [
            {**asdict(p), "mode": mode, "updated_at": now,
             "last_rate_at": prices[p.coin].at if p.last_rate is not None else None}
            for p in result
        ])
    return result


def daily_pnl(conn: sa.Connection, mode: Mode, day: date, prices: Mapping[str, Quote], now: datetime) -> DailyPnl:
    """Compute and store the book's P&L row for one UTC day (call under the book lock)."""
    start, end = utc_day(day)
    closed = conn.execute(sa.select(realized.c.pnl_aud).where(
        realized.c.mode == mode, realized.c.closed_at >= start, realized.c.closed_at < end)).scalars()
    filled = conn.execute(sa.select(orders.c.side, orders.c.aud_total, orders.c.fee_aud).where(
        orders.c.mode == mode, orders.c.state == "filled", orders.c.filled_at >= start, orders.c.filled_at < end)).all()
    open_pnl, _ = unrealized(holdings(conn, mode), prices)
    pnl = DailyPnl(
        mode=mode, day=day, realized_pnl_aud=sum(closed, Decimal(0)), unrealized_pnl_aud=open_pnl,
        fees_aud=sum((f.fee_aud for f in filled), Decimal(0)),
        spent_aud=sum((f.aud_total for f in filled if f.side == "buy"), Decimal(0)), orders_filled=len(filled),
    )
    values = {**asdict(pnl), "computed_at": now}
    updated = conn.execute(sa.update(pnl_daily).where(pnl_daily.c.mode == mode, pnl_daily.c.day == day).values(**values))
    if updated.rowcount == 0:
        conn.execute(sa.insert(pnl_daily).values(**values))
    return pnl
