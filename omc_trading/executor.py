"""The money path: record, send once, settle, reconcile.

1. A signal, the risk gate's decision and, when accepted, the order intent (state ``intent``,
   idempotency key = the signal key) are written in one transaction under the book lock,
   after reading the kill switch and the book. A key already recorded records nothing.
2. Sending claims the intent (``intent`` -> ``sent`` by one conditional UPDATE: one claimant
   wins), commits, and only then calls the broker, once. The answer is recorded in a new
   transaction: filled (with its lots), rejected, missed, or unknown.
3. An order left ``sent`` (a crash while sending) or ``unknown`` (no answer) is never sent
   again: reconciliation looks for it among the broker's completed orders, settles it as
   filled, or after enough attempts and time, as ``lost``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa

from omc_trading import controls
from omc_trading.broker import Broker, Fill, MissedFill, Mode, OrderOutcomeUnknown, OrderRejected, OrderRequest, Quote
from omc_trading.config import TradingConfig
from omc_trading.controls import lock_book
from omc_trading.positions import book_fill, holdings, unrealized
from omc_trading.risk import Book, decide
from omc_trading.clock import utc_day
from omc_trading.strategy import Signal, exit_prefix
from omc_trading.tables import orders, realized, signals
from omc_trading.text import coin_amount, duration

PENDING = ("intent", "sent", "unknown")  # not settled: may still become a trade
FAILED = ("rejected", "missed", "lost")  # settled without a trade


@dataclass(frozen=True)
class RecordedSignal:
    key: str
    strategy: str
    action: str
    coin: str | None
    reason: str
    decision: str  # accepted, refused, informational, or "already recorded" (nothing new written)
    decision_reason: str
    aud_amount: Decimal | None = None
    coin_amount: Decimal | None = None
    order_id: int | None = None


@dataclass(frozen=True)
class OrderResult:
    id: int
    idempotency_key: str
    coin: str
    side: str
    state: str
    aud_total: Decimal | None
    coin_amount: Decimal | None
    rate: Decimal | None
    fee_aud: Decimal | None
    reason: str | None


def read_book(conn: sa.Connection, mode: Mode, config: TradingConfig, now: datetime,
              prices: Mapping[str, Quote], aud_balance: Decimal | None) -> Book:
    held = holdings(conn, mode)
    pending_buys: dict[str, Decimal] = {}
    pending_sells: dict[str, Decimal] = {}
    unsettled = sa.select(orders.c.coin, orders.c.side, orders.c.aud_total, orders.c.coin_amount).where(
        orders.c.mode == mode, orders.c.state.in_(PENDING))
    for o in conn.execute(unsettled):
        if o.side == "buy":
            pending_buys[o.coin] = pending_buys.get(o.coin, Decimal(0)) + o.aud_total
        else:
            pending_sells[o.coin] = pending_sells.get(o.coin, Decimal(0)) + o.coin_amount
    start, end = utc_day(now.astimezone(timezone.utc).date())
    live_buys = (orders.c.mode == mode, orders.c.side == "buy", orders.c.state.not_in(FAILED))
    spent = conn.execute(sa.select(orders.c.aud_total).where(
        *live_buys, orders.c.requested_at >= start, orders.c.requested_at < end)).scalars()
    closed = conn.execute(sa.select(realized.c.pnl_aud).where(
        realized.c.mode == mode, realized.c.closed_at >= start, realized.c.closed_at < end)).scalars()
    last_buys = conn.execute(sa.select(orders.c.coin, sa.func.max(orders.c.requested_at)).where(*live_buys)
                             .group_by(orders.c.coin)).all()
    open_pnl, unpriced = unrealized(held, prices)
    exit_attempts = {}
    for coin, holding in held.items():
        prefix = exit_prefix(mode, coin, holding.opened_at)
        tried, last = conn.execute(sa.select(sa.func.count(), sa.func.max(signals.c.created_at))
                                   .where(signals.c.signal_key.startswith(prefix, autoescape=True))).one()
        if tried:
            exit_attempts[coin] = (tried, last)
    return Book(
        mode=mode, now=now, kill_switch=controls.read(conn, config), holdings=held,
        pending_buys=pending_buys, pending_sells=pending_sells, spent_today=sum(spent, Decimal(0)),
        realized_today=sum(closed, Decimal(0)), unrealized=open_pnl, unpriced=tuple(unpriced),
        last_buy_at=dict(last_buys), aud_balance=aud_balance, exit_attempts=exit_attempts,
    )


def record(engine: sa.Engine, config: TradingConfig, mode: Mode, now: datetime, prices: Mapping[str, Quote],
           aud_balance: Decimal | None, make_signals: Callable[[Book], list[Signal]]) -> list[RecordedSignal]:
    """Decide and record the signals ``make_signals`` draws from the locked book, in one transaction."""
    results = []
    with engine.begin() as conn:
        lock_book(conn, now)
        book = read_book(conn, mode, config, now, prices, aud_balance)
        stale = False  # an order was recorded since the book was read
        for signal in make_signals(book):
            if conn.execute(sa.select(signals.c.id).where(signals.c.signal_key == signal.key)).first():
                results.append(_recorded(signal, "already recorded", "this signal was recorded before: nothing new"))
                continue
            if stale:  # the next signal sees the orders recorded before it
                book, stale = read_book(conn, mode, config, now, prices, aud_balance), False
            decision = decide(signal, book, config)
            # What the order asks for: the gate may trim a sell to what is not already being sold.
            aud_amount = signal.aud_amount if decision.aud_amount is None else decision.aud_amount
            coin_amount = signal.coin_amount if decision.coin_amount is None else decision.coin_amount
            signal_id = conn.execute(sa.insert(signals).values(
                signal_key=signal.key, mode=mode, strategy=signal.strategy, event_source=signal.event_source,
                event_external_id=signal.event_external_id, action=signal.action, coin=signal.coin,
                aud_amount=aud_amount, coin_amount=coin_amount, reason=signal.reason, decision=decision.decision,
                decision_reason=decision.reason, created_at=now,
            )).inserted_primary_key[0]
            order_id = None
            if decision.decision == "accepted":
                order_id = conn.execute(sa.insert(orders).values(
                    idempotency_key=signal.key, signal_id=signal_id, mode=mode, coin=signal.coin, side=signal.action,
                    state="intent", aud_total=aud_amount, coin_amount=coin_amount,
                    event_source=signal.event_source, event_external_id=signal.event_external_id, requested_at=now,
                )).inserted_primary_key[0]
                stale = True
            results.append(_recorded(signal, decision.decision, decision.reason, aud_amount, coin_amount, order_id))
    return results


def _recorded(signal: Signal, decision: str, reason: str,
              aud_amount=None, coin_amount=None, order_id=None) -> RecordedSignal:
    return RecordedSignal(key=signal.key, strategy=signal.strategy, action=signal.action, coin=signal.coin,
                          reason=signal.reason, decision=decision, decision_reason=reason,
                          aud_amount=aud_amount, coin_amount=coin_amount, order_id=order_id)


def _order(conn: sa.Connection, order_id: int) -> sa.RowMapping:
    return conn.execute(sa.select(orders).where(orders.c.id == order_id)).mappings().one()


def order_result(engine: sa.Engine, order_id: int) -> OrderResult:
    with engine.connect() as conn:
        o = _order(conn, order_id)
    return OrderResult(id=o["id"], idempotency_key=o["idempotency_key"], coin=o["coin"], side=o["side"],
                       state=o["state"], aud_total=o["aud_total"], coin_amount=o["coin_amount"], rate=o["rate"],
                       fee_aud=o["fee_aud"], reason=o["reason"])


def _settle(engine: sa.Engine, mode: Mode, order_id: int, now: datetime, state: str, reason: str | None = None,
            fill: Fill | None = None, attempted: bool = False) -> bool:
    """Move an order out of ``sent`` or ``unknown``; a fill books its lots in the same transaction.
    Returns False when the order had already left those states (someone else settled it)."""
    values: dict = {"state": state, "reason": reason}
    if state not in PENDING:
        values["resolved_at"] = now
    if attempted:
        values["reconcile_attempts"] = orders.c.reconcile_attempts + 1
    if fill is not None:
        values.update(aud_total=fill.aud_total, coin_amount=fill.coin_amount, rate=fill.rate, fee_aud=fill.fee_aud,
                      filled_at=fill.filled_at, broker_ref=fill.broker_ref)
    with engine.begin() as conn:
        lock_book(conn, now)
        moved = conn.execute(sa.update(orders).where(orders.c.id == order_id, orders.c.state.in_(("sent", "unknown")))
                             .values(**values)).rowcount == 1
        if moved and fill is not None:
            beyond = book_fill(conn, mode, order_id, fill)
            if beyond:
                conn.execute(sa.update(orders).where(orders.c.id == order_id).values(reason=(
                    f"sold {coin_amount(beyond)} {fill.coin} more than the book's open lots held: no cost basis for it")))
    return moved


def send_pending(engine: sa.Engine, broker: Broker, config: TradingConfig,
                 clock: Callable[[], datetime],
                 before_send: Callable[[int], None] = lambda order_id: None) -> list[OrderResult]:
    """Send every order intent of the broker's book, each at most once. ``before_send(order_id)``
    runs after the order is claimed (``sent``) and before it leaves: e.g. to give up automatic
    retries of the run, which may now end with an order of unknown outcome."""
    mode = broker.mode
    with engine.connect() as conn:
        intents = conn.execute(sa.select(orders.c.id, orders.c.coin, orders.c.side).where(
            orders.c.mode == mode, orders.c.state == "intent").order_by(orders.c.id)).all()
    results = []
    for order_id, coin, side in intents:
        quote = broker.quote(coin)  # before any lock: it may be a network call
        ours, request = _claim(engine, config, order_id, quote, clock())
        if not ours:
            continue
        if request is None:
            results.append(order_result(engine, order_id))
            continue
        before_send(order_id)
        try:
            fill = broker.place(request)
        except OrderRejected as exc:
            _settle(engine, mode, order_id, clock(), "rejected", exc.reason)
        except MissedFill as exc:
            _settle(engine, mode, order_id, clock(), "missed", exc.reason)
        except OrderOutcomeUnknown as exc:
            _settle(engine, mode, order_id, clock(), "unknown", f"{exc.reason}; never resent: reconciliation settles it")
        except Exception as exc:
            # A broker that fails in a way it should not: the order may have gone out. Record
            # that much (the exception's text may carry what must not be stored), then stop the run.
            _settle(engine, mode, order_id, clock(), "unknown",
                    f"the broker raised {type(exc).__name__}: outcome unknown, never resent: reconciliation settles it")
            raise
        else:
            _settle(engine, mode, order_id, clock(), "filled", fill=fill)
        results.append(order_result(engine, order_id))
    return results


def _claim(engine: sa.Engine, config: TradingConfig, order_id: int, quote: Quote | None,
           now: datetime) -> tuple[bool, OrderRequest | None]:
    """Take the intent (False: another run took it first) and either claim it (``intent`` -> ``sent``)
    and return what to send, or settle it here without sending (kill switch, no price, a buy too old)."""
    with engine.begin() as conn:
        lock_book(conn, now)
        order = _order(conn, order_id)
        if order["state"] != "intent":
            return False, None
        rate = None if quote is None else quote.ask if order["side"] == "buy" else quote.bid
        kill_switch = controls.read(conn, config)
        age = now - order["requested_at"]
        refusal = None
        if kill_switch.halted:
            refusal = ("rejected", f"not sent: {kill_switch.describe()}")
        elif order["side"] == "buy" and age > config.max_event_age:
            refusal = ("missed", f"not sent: the buy was recorded {duration(age)} ago, older than max_event_age "
                                 f"{duration(config.max_event_age)} (the news it trades on is old)")
        elif rate is None:
            refusal = ("missed", f"not sent: no {'ask' if order['side'] == 'buy' else 'bid'} for {order['coin']} "
                                 "from the broker, and no order goes out without a slippage guard")
        values = ({"state": refusal[0], "reason": refusal[1], "resolved_at": now} if refusal
                  else {"state": "sent", "sent_at": now, "expected_rate": rate})
        conn.execute(sa.update(orders).where(orders.c.id == order_id, orders.c.state == "intent").values(**values))
    if refusal:
        return True, None
    return True, OrderRequest(
        idempotency_key=order["idempotency_key"], coin=order["coin"], side=order["side"],
        aud_amount=order["aud_total"] if order["side"] == "buy" else None,
        coin_amount=order["coin_amount"] if order["side"] == "sell" else None,
        expected_rate=rate, max_slippage_pct=config.slippage_pct,
    )


def reconcile(engine: sa.Engine, broker: Broker, config: TradingConfig, now: datetime) -> list[OrderResult]:
    """Settle the orders whose outcome is unknown from the broker's completed orders. Never resends."""
    mode = broker.mode
    with engine.connect() as conn:
        stuck = conn.execute(sa.select(orders).where(orders.c.mode == mode, sa.or_(
            orders.c.state == "unknown",
            sa.and_(orders.c.state == "sent", orders.c.sent_at <= now - config.reconcile_grace),
        )).order_by(orders.c.sent_at, orders.c.id)).mappings().all()
    if not stuck:
        return []
    since = min(o["sent_at"] for o in stuck) - config.reconcile_window
    fills = broker.completed_orders(since)
    with engine.connect() as conn:
        filled = conn.execute(sa.select(orders).where(
            orders.c.mode == mode, orders.c.state == "filled", orders.c.filled_at >= since)).mappings().all()
    # A fill carrying one of our references (the paper broker's idempotency key, a broker's
    # order id we recorded) belongs to that order only; the rest match on coin, side, amount, time.
    tags = {o["idempotency_key"] for o in (*filled, *stuck)} | {o["broker_ref"] for o in filled if o["broker_ref"]}
    pool = list(fills)
    for o in filled:  # fills already booked are nobody else's
        _take(o, o["filled_at"], pool, tags, config)
    results = []
    for o in stuck:
        fill = _take(o, o["sent_at"], pool, tags, config)
        attempts = o["reconcile_attempts"] + 1
        age = now - o["sent_at"]
        cause = o["reason"] if o["state"] == "unknown" else "interrupted while sending: no outcome was recorded"
        if fill is not None:
            _settle(engine, mode, o["id"], now, "filled", fill=fill, attempted=True, reason=(
                f"found among the broker's completed orders (attempt {attempts}) after: {cause}"))
        elif attempts >= config.reconcile_max_attempts and age >= config.reconcile_max_age:
            nothing = "nothing was bought" if o["side"] == "buy" else "nothing was sold"
            _settle(engine, mode, o["id"], now, "lost", attempted=True, reason=(
                f"not among the broker's completed orders after {attempts} attempts over {duration(age)}: "
                f"{nothing} ({cause})"))
        else:
            _settle(engine, mode, o["id"], now, "unknown", attempted=True, reason=cause)
        results.append(order_result(engine, o["id"]))
    return results


def _take(order: Mapping, anchor: datetime, pool: list[Fill], tags: set[str], config: TradingConfig) -> Fill | None:
    """Remove and return the fill of ``pool`` that is ``order``'s, if any (the closest in time)."""

    def belongs(fill: Fill) -> bool:
        if fill.coin.lower() != order["coin"] or fill.side != order["side"]:
            return False
        if fill.broker_ref in tags:
            return fill.broker_ref in (order["idempotency_key"], order["broker_ref"])
        if abs(fill.filled_at - anchor) > config.reconcile_window:
            return False
        asked, got = ((order["aud_total"], fill.aud_total) if order["side"] == "buy"
                      else (order["coin_amount"], fill.coin_amount))
        return abs(got - asked) <= asked * config.reconcile_tolerance_pct / 100

    found = [f for f in pool if belongs(f)]
    if not found:
        return None
    best = min(found, key=lambda f: abs(f.filled_at - anchor))
    pool.remove(best)
    return best
