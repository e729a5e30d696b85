"""What to do about a catalyst event, and when to leave a position. Pure: no I/O.

Every signal carries a stable key, the idempotency key of the order it asks for, so an
event seen twice (a re-run, two runs at once) asks for one order. An event's key is built
from the action it would take even when it ends up taking none (a delisting of a coin not
held), so that a later look at the same event never turns into a trade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from omc_trading.broker import Mode, Quote
from omc_trading.config import TradingConfig
from omc_trading.money import aud
from omc_trading.positions import Holding, market_value
from omc_trading.text import coin_amount, duration

BITCOIN_PURCHASE = "bitcoin_purchase"


@dataclass(frozen=True)
class Catalyst:
    """A catalyst event as the Catalyst ledger records it (``catalyst_events``)."""

    source: str
    external_id: str
    event_type: str  # listing, delisting, bitcoin_purchase, maintenance, filing, trading_change, other
    currencies: Sequence[str]
    published_at: datetime
    detected_at: datetime
    title: str


@dataclass(frozen=True)
class Signal:
    key: str
    mode: Mode
    strategy: str  # the event type, or "exit"
    action: str  # buy, sell, none
    coin: str | None
    reason: str  # why the strategy says this, with the figures
    aud_amount: Decimal | None = None  # a buy's spend, fee included
    coin_amount: Decimal | None = None  # a sell's amount
    event_source: str | None = None
    event_external_id: str | None = None
    refusal: str | None = None  # the strategy's own no (an event too old), before any risk check


def event_key(mode: Mode, event: Catalyst, action: str, coin: str | None) -> str:
    return "|".join((mode, event.event_type, event.source, event.external_id, action, coin or "-"))


def exit_prefix(mode: Mode, coin: str, opened_at: datetime) -> str:
    """What every exit attempt of one position shares: the position is its coin and opening time."""
    return "|".join((mode, "exit", coin, opened_at.isoformat()))


def exit_key(mode: Mode, coin: str, opened_at: datetime, attempt: int = 1) -> str:
    return f"{exit_prefix(mode, coin, opened_at)}|{attempt}"


def _coins(currencies: Sequence[str]) -> list[str]:
    """Lower-case symbols, each once, in the event's order; AUD is the money, not a coin."""
    seen = []
    for c in currencies:
        coin = c.strip().lower()
        if coin and coin != "aud" and coin not in seen:
            seen.append(coin)
    return seen


def event_coins(event: Catalyst) -> list[str]:
    """The coins an event is about, as the strategy trades them: bitcoin for Strategy's bitcoin
    purchase, else the event's currencies."""
    return ["btc"] if event.event_type == BITCOIN_PURCHASE else _coins(event.currencies)


def event_signals(
    event: Catalyst, config: TradingConfig, mode: Mode, now: datetime, held: Mapping[str, Holding]
) -> list[Signal]:
    """The signals of one event: buys for a listing or a bitcoin purchase, sells for a delisting,
    one informational signal for anything else."""
    age = now - event.published_at
    too_old = None
    if age > config.max_event_age:
        too_old = (
            f"event too old to trade: published {duration(age)} ago ({event.published_at:%Y-%m-%d %H:%M:%S} UTC), "
            f"detected {duration(now - event.detected_at)} ago; max_event_age is {duration(config.max_event_age)}"
        )

    def signal(action: str, coin: str | None, reason: str, **amounts) -> Signal:
        return Signal(
            key=event_key(mode, event, action, coin), mode=mode, strategy=event.event_type,
            action=action, coin=coin, reason=reason, event_source=event.source,
            event_external_id=event.external_id, refusal=too_old, **amounts,
        )

    def informational(intended: str, coin: str | None, reason: str) -> Signal:
        return Signal(
            key=event_key(mode, event, intended, coin), mode=mode, strategy=event.event_type, action="none",
            coin=coin, reason=reason, event_source=event.source, event_external_id=event.external_id,
        )

    coins = _coins(event.currencies)
    title = f'"{event.title}"'
    if event.event_type == "listing":
        if not coins:
            return [informational("buy", None, f"listing {title} names no coin: nothing to buy")]
        return [signal("buy", coin, f"{coin} listed on CoinSpot ({title}): buy {aud(config.trade_aud)} AUD",
                       aud_amount=aud(config.trade_aud)) for coin in coins]
    if event.event_type == BITCOIN_PURCHASE:
        if not config.btc_purchase_enabled:
            return [informational("buy", "btc", f"Strategy bought bitcoin ({title}); btc_purchase_enabled is off: no order")]
        return [signal("buy", "btc", f"Strategy bought bitcoin ({title}): buy {aud(config.trade_aud)} AUD of btc",
                       aud_amount=aud(config.trade_aud))]
    if event.event_type == "delisting":
        if not coins:
            return [informational("sell", None, f"delisting {title} names no coin: nothing to sell")]
        result = []
        for coin in coins:
            holding = held.get(coin)
            if holding is None:
                result.append(informational(
                    "sell", coin, f"{coin} to be delisted ({title}); no open {coin} position: nothing to sell"))
            else:
                result.append(signal("sell", coin, f"{coin} to be delisted ({title}): sell the whole position, "
                                     f"{coin_amount(holding.coin_amount)} {coin}", coin_amount=holding.coin_amount))
        return result
    return [informational("none", None, f"{event.event_type} event {title}: no trading rule for it")]


def exit_signals(
    held: Mapping[str, Holding], prices: Mapping[str, Quote], config: TradingConfig, mode: Mode, now: datetime,
    attempts: Mapping[str, tuple[int, datetime]] | None = None,
) -> list[Signal]:
    """A sell of the whole position for each holding that reached its take-profit, its stop-loss
    or its maximum holding time. Gain and loss are judged only on a fresh bid.

    ``attempts`` holds, per coin, the exit signals already recorded for the open position and
    when the last was: an exit refused (the kill switch) or that did not fill (no quote) is
    tried again, at most once per ``exit_retry_pause``, under the next attempt's key."""
    result = []
    for coin, holding in held.items():
        tried, last_try = (attempts or {}).get(coin, (0, None))
        if last_try is not None and now - last_try < config.exit_retry_pause:
            continue
        quote = prices.get(coin)
        fresh = quote is not None and now - quote.at <= config.max_quote_age
        value = market_value(holding, quote) if fresh else None
        why = None
        if value is not None and holding.cost_aud > 0:
            change = (value - holding.cost_aud) / holding.cost_aud * 100
            figures = (f"{coin_amount(holding.coin_amount)} {coin} at bid {quote.bid} is worth {value} AUD, "
                       f"{change:+.2f} % on its cost of {aud(holding.cost_aud)} AUD")
            if change >= config.take_profit_pct:
                why = f"take profit: {figures} (take_profit_pct {config.take_profit_pct})"
            elif change <= -config.stop_loss_pct:
                why = f"stop loss: {figures} (stop_loss_pct {config.stop_loss_pct})"
        held_for = now - holding.opened_at
        if why is None and held_for >= config.max_holding:
            why = (f"max holding time: {coin} held for {duration(held_for)} since "
                   f"{holding.opened_at:%Y-%m-%d %H:%M} UTC (max_holding {duration(config.max_holding)})")
        if why is not None:
            if tried:
                why += f"; attempt {tried + 1}: the earlier exit did not sell"
            result.append(Signal(key=exit_key(mode, coin, holding.opened_at, tried + 1), mode=mode, strategy="exit",
                                 action="sell", coin=coin, reason=why, coin_amount=holding.coin_amount))
    return result
