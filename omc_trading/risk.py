"""The risk gate: read before every order, over a snapshot of the book. Pure: no I/O.

Exposure is measured at cost (what the open lots cost, fees included) plus the AUD of buys
not yet settled (recorded, sent, or of unknown outcome): an order in flight is exposure
until it is known not to be. Every answer carries its reason, with the limit and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from omc_trading.broker import Mode
from omc_trading.config import TradingConfig
from omc_trading.controls import KillSwitch
from omc_trading.money import aud
from omc_trading.positions import Holding
from omc_trading.strategy import Signal
from omc_trading.text import coin_amount, duration


@dataclass(frozen=True)
class Book:
    mode: Mode
    now: datetime
    kill_switch: KillSwitch
    holdings: dict[str, Holding] = field(default_factory=dict)
    pending_buys: dict[str, Decimal] = field(default_factory=dict)  # AUD of unsettled buys, by coin
    pending_sells: dict[str, Decimal] = field(default_factory=dict)  # coins of unsettled sells, by coin
    spent_today: Decimal = Decimal(0)  # buys asked for this UTC day that did not fail
    realized_today: Decimal = Decimal(0)
    unrealized: Decimal = Decimal(0)
    unpriced: tuple[str, ...] = ()  # held coins without a price, counted at cost
    last_buy_at: dict[str, datetime] = field(default_factory=dict)
    # Exit signals recorded for each open position: how many, and when the last was.
    exit_attempts: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    aud_balance: Decimal | None = None  # the broker's available AUD; None when not read

    def exposure(self, coin: str) -> Decimal:
        held = self.holdings.get(coin)
        return (held.cost_aud if held else Decimal(0)) + self.pending_buys.get(coin, Decimal(0))

    def total_exposure(self) -> Decimal:
        return sum((h.cost_aud for h in self.holdings.values()), Decimal(0)) + sum(self.pending_buys.values(), Decimal(0))

    def open_positions(self) -> set[str]:
        return set(self.holdings) | set(self.pending_buys)


@dataclass(frozen=True)
class Decision:
    decision: str  # accepted, refused, informational
    reason: str
    aud_amount: Decimal | None = None  # what the order asks for
    coin_amount: Decimal | None = None


def decide(signal: Signal, book: Book, config: TradingConfig) -> Decision:
    if signal.action == "none":
        return Decision("informational", "no order asked for")
    if signal.refusal:
        return Decision("refused", signal.refusal)
    if book.kill_switch.halted:
        return Decision("refused", book.kill_switch.describe())
    if signal.action == "sell":
        return _sell(signal, book)
    return _buy(signal, book, config)


def _sell(signal: Signal, book: Book) -> Decision:
    coin = signal.coin
    held = book.holdings[coin].coin_amount if coin in book.holdings else Decimal(0)
    selling = book.pending_sells.get(coin, Decimal(0))
    free = held - selling
    if free <= 0:
        if held == 0:
            return Decision("refused", f"no open {coin} position: nothing to sell")
        return Decision("refused", f"all {coin_amount(held)} {coin} held is already being sold")
    amount = min(signal.coin_amount, free)
    return Decision("accepted", f"within limits: selling {coin_amount(amount)} {coin} of {coin_amount(held)} held "
                                f"({coin_amount(selling)} already being sold)", coin_amount=amount)


def _buy(signal: Signal, book: Book, config: TradingConfig) -> Decision:
    coin, amount = signal.coin, signal.aud_amount

    def refused(reason: str) -> Decision:
        return Decision("refused", reason)

    if coin in config.deny_coins:
        return refused(f"deny list: {coin} is on it ({', '.join(sorted(config.deny_coins))})")
    if config.allow_coins and coin not in config.allow_coins:
        return refused(f"allow list: {coin} is not on it ({', '.join(sorted(config.allow_coins))})")
    if amount > config.max_order_aud:
        return refused(f"per-order cap: {aud(amount)} AUD > max_order_aud {aud(config.max_order_aud)}")
    spend = book.spent_today + amount
    if spend > config.max_daily_spend_aud:
        return refused(f"daily spend cap: spent {aud(book.spent_today)} AUD on {book.now:%Y-%m-%d} (UTC) "
                       f"+ {aud(amount)} = {aud(spend)} > max_daily_spend_aud {aud(config.max_daily_spend_aud)}")
    coin_exposure = book.exposure(coin) + amount
    if coin_exposure > config.max_coin_exposure_aud:
        return refused(f"{coin} exposure at cost: {aud(book.exposure(coin))} AUD held or pending + {aud(amount)} "
                       f"= {aud(coin_exposure)} > max_coin_exposure_aud {aud(config.max_coin_exposure_aud)}")
    total = book.total_exposure() + amount
    if total > config.max_total_exposure_aud:
        return refused(f"total exposure at cost: {aud(book.total_exposure())} AUD held or pending + {aud(amount)} "
                       f"= {aud(total)} > max_total_exposure_aud {aud(config.max_total_exposure_aud)}")
    open_now = book.open_positions()
    if coin not in open_now and len(open_now) >= config.max_open_positions:
        return refused(f"open positions: {len(open_now)} open ({', '.join(sorted(open_now))}), "
                       f"max_open_positions {config.max_open_positions}")
    pnl = book.realized_today + book.unrealized
    pnl_text = f"realized today {aud(book.realized_today)} + unrealized {aud(book.unrealized)} = {aud(pnl)} AUD" + (
        f" ({', '.join(book.unpriced)} without a price, counted at cost)" if book.unpriced else "")
    if pnl < 0 and -pnl >= config.daily_loss_limit_aud:
        return refused(f"daily loss limit: {pnl_text}, a loss of {aud(config.daily_loss_limit_aud)} or more")
    last = book.last_buy_at.get(coin)
    if last is not None and book.now - last < config.cooldown:
        return refused(f"cooldown: the last {coin} buy was {duration(book.now - last)} ago, "
                       f"cooldown {duration(config.cooldown)}")
    if book.aud_balance is None:
        return refused("available AUD: the broker's balance was not read")
    available = book.aud_balance - sum(book.pending_buys.values(), Decimal(0))
    if amount > available:
        return refused(f"available AUD: {aud(available)} (balance {aud(book.aud_balance)} less "
                       f"{aud(book.aud_balance - available)} in unsettled buys) < {aud(amount)}")
    return Decision("accepted", (
        f"within limits: {aud(amount)} AUD <= per-order {aud(config.max_order_aud)}; spent today {aud(spend)} "
        f"<= {aud(config.max_daily_spend_aud)}; {coin} exposure at cost {aud(coin_exposure)} <= "
        f"{aud(config.max_coin_exposure_aud)}; total {aud(total)} <= {aud(config.max_total_exposure_aud)}; "
        f"positions {len(open_now | {coin})} of {config.max_open_positions}; {pnl_text}; AUD available {aud(available)}"
    ), aud_amount=amount)
