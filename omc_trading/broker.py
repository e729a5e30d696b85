"""What a broker is: one protocol, two implementations (paper and CoinSpot live).

The executor talks only to :class:`Broker`. A broker answers an order in exactly
one of four ways, and the executor records each differently:

- a :class:`Fill`: the order was filled;
- :class:`OrderRejected`: the broker said no; nothing was bought or sold;
- :class:`MissedFill`: no order was placed (no quote, or a stale one);
- :class:`OrderOutcomeUnknown`: the order was sent and no answer came back. It may
  have filled. It must never be sent again; reconciliation (``completed_orders``
  and ``balances``) settles it.

Reasons are safe to store and show: never a key, a secret, or a signed body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

Side = Literal["buy", "sell"]
Mode = Literal["paper", "live"]


@dataclass(frozen=True)
class Quote:
    """What one coin costs now in AUD: ``ask`` is what a buy pays, ``bid`` what a sell gets."""

    coin: str  # lower-case symbol, e.g. "btc"
    bid: Decimal | None
    ask: Decimal | None
    at: datetime  # when the price was observed, aware UTC
    source: str  # where it came from, e.g. "coinspot /pubapi/v2/buyprice" or "exchange_price_snapshots"


class QuoteSource(Protocol):
    """Provided by ``omc_pipelines`` (CoinSpot's public API, the Exchange ledger)."""

    def quote(self, coin: str) -> Quote | None:
        """The coin's current quote, or None when there is none to be had."""
        ...


@dataclass(frozen=True)
class OrderRequest:
    """An instant order. A buy spends ``aud_amount`` (fee included); a sell sells ``coin_amount``."""

    idempotency_key: str
    coin: str
    side: Side
    aud_amount: Decimal | None = None
    coin_amount: Decimal | None = None
    # The slippage guard: the rate the decision was made at, and how far the fill may move
    # from it against us, in percent (CoinSpot's `rate` + `threshold` + `direction`).
    expected_rate: Decimal | None = None
    max_slippage_pct: Decimal = Decimal("2")


@dataclass(frozen=True)
class Fill:
    """An order that filled. ``aud_total`` is the AUD that moved (fee included): paid by a
    buy, received by a sell. ``rate`` is AUD per coin before the fee."""

    coin: str
    side: Side
    coin_amount: Decimal
    rate: Decimal
    aud_total: Decimal
    fee_aud: Decimal
    filled_at: datetime
    broker_ref: str | None = None  # the broker's id of the order, where it gives one


class BrokerError(Exception):
    """Base of the answers that are not a fill. ``reason`` is safe to store and show."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)

    def __reduce__(self):
        return (self.__class__, (self.reason,))


class OrderRejected(BrokerError):
    """The broker refused the order (funds, slippage guard, unknown coin, bad keys): nothing moved."""


class MissedFill(BrokerError):
    """No order was placed: no quote for the coin, or the quote was too old to trade on."""


class OrderOutcomeUnknown(BrokerError):
    """Sent, but no answer (timeout, dropped connection): it may have filled. Never resend."""


class Broker(Protocol):
    mode: Mode

    def quote(self, coin: str) -> Quote | None:
        """The price an order would fill near, for sizing and the slippage guard."""
        ...

    def place(self, order: OrderRequest) -> Fill:
        """Place an instant order once. Raises OrderRejected, MissedFill or OrderOutcomeUnknown.
        Never retries an order by itself."""
        ...

    def balances(self) -> dict[str, Decimal]:
        """Available balance per upper-case symbol ("AUD", "BTC", ...)."""
        ...

    def completed_orders(self, since: datetime) -> list[Fill]:
        """Orders filled since ``since``, for reconciling orders whose outcome is unknown."""
        ...
