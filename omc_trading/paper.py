"""The paper broker: fills at the live quote, pays the spread and the fee, keeps a wallet.

A buy pays the ask and a sell gets the bid. The fee is ``fee_rate`` of the AUD total: a buy
of A AUD pays fee = A x rate out of A and receives (A - fee) / ask coins, rounded down to
8 places; a sell of N coins receives N x bid - fee, with fee = N x bid x rate.

Its wallet (``trading_paper_wallet``, starting at ``paper_start_aud`` on first use) and its
fills (``trading_paper_fills``) change together in one transaction, keyed by the order's
idempotency key: placing a key again returns the first fill and moves nothing, and
``completed_orders`` gives the key back as ``broker_ref``, so reconciliation matches exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from omc_trading.broker import Fill, MissedFill, OrderRejected, OrderRequest, Quote, QuoteSource
from omc_trading.clock import utc_now
from omc_trading.config import TradingConfig
from omc_trading.money import aud, coins
from omc_trading.sql import insert_missing
from omc_trading.tables import paper_fills, paper_wallet
from omc_trading.text import coin_amount, duration


def _fill(row) -> Fill:
    return Fill(coin=row["coin"], side=row["side"], coin_amount=row["coin_amount"], rate=row["rate"],
                aud_total=row["aud_total"], fee_aud=row["fee_aud"], filled_at=row["filled_at"],
                broker_ref=row["idempotency_key"])


class PaperBroker:
    mode = "paper"

    def __init__(self, engine: sa.Engine, quotes: QuoteSource, config: TradingConfig,
                 clock: Callable[[], datetime] = utc_now):
        self.engine, self.quotes, self.config, self.clock = engine, quotes, config, clock

    def __repr__(self) -> str:
        return f"PaperBroker(fee_rate={self.config.fee_rate}, start={self.config.paper_start_aud} AUD)"

    def quote(self, coin: str) -> Quote | None:
        return self.quotes.quote(coin)

    def balances(self) -> dict[str, Decimal]:
        with self.engine.connect() as conn:
            found = {r.asset: r.balance for r in conn.execute(sa.select(paper_wallet.c.asset, paper_wallet.c.balance))}
        return {"AUD": self.config.paper_start_aud, **found}

    def completed_orders(self, since: datetime) -> list[Fill]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(paper_fills).where(paper_fills.c.filled_at >= since)
                                .order_by(paper_fills.c.filled_at, paper_fills.c.id)).mappings()
            return [_fill(r) for r in rows]

    def place(self, order: OrderRequest) -> Fill:
        quote = self.quotes.quote(order.coin)  # asked before the wallet is locked: it may be a network call
        now = self.clock()
        asset = order.coin.upper()
        with self.engine.begin() as conn:
            # The AUD row is the wallet's lock: taken first by every placement (on SQLite the
            # insert takes the database's write lock; on PostgreSQL the row is locked FOR UPDATE).
            for name, start in (("AUD", self.config.paper_start_aud), (asset, Decimal(0))):
                insert_missing(conn, paper_wallet, {"asset": name, "balance": start, "updated_at": now}, "asset")
            wallet = dict(conn.execute(sa.select(paper_wallet.c.asset, paper_wallet.c.balance)
                                       .where(paper_wallet.c.asset.in_(["AUD", asset])).with_for_update()).all())
            first = conn.execute(sa.select(paper_fills).where(
                paper_fills.c.idempotency_key == order.idempotency_key)).mappings().first()
            if first is not None:
                return _fill(first)
            fill = self._price(order, quote, now, wallet["AUD"], wallet[asset])
            spent_aud = fill.aud_total if fill.side == "buy" else -fill.aud_total
            got_coins = fill.coin_amount if fill.side == "buy" else -fill.coin_amount
            for name, balance in (("AUD", wallet["AUD"] - spent_aud), (asset, wallet[asset] + got_coins)):
                conn.execute(sa.update(paper_wallet).where(paper_wallet.c.asset == name)
                             .values(balance=balance, updated_at=now))
            conn.execute(sa.insert(paper_fills).values(
                idempotency_key=order.idempotency_key, coin=fill.coin, side=fill.side, coin_amount=fill.coin_amount,
                rate=fill.rate, aud_total=fill.aud_total, fee_aud=fill.fee_aud, quote_source=quote.source[:128],
                filled_at=now,
            ))
        return fill

    def _price(self, order: OrderRequest, quote: Quote | None, now: datetime,
               aud_held: Decimal, coins_held: Decimal) -> Fill:
        """The fill the quote gives, or the reason there is none (nothing written yet)."""
        coin, side = order.coin, order.side
        pays = "ask" if side == "buy" else "bid"
        if quote is None:
            raise MissedFill(f"paper {side} {coin}: no quote for {coin}")
        age = now - quote.at
        if age > self.config.max_quote_age:
            raise MissedFill(f"paper {side} {coin}: the quote from {quote.source} is {duration(age)} old, "
                             f"older than max_quote_age {duration(self.config.max_quote_age)}")
        rate = quote.ask if side == "buy" else quote.bid
        if rate is None or rate <= 0:
            raise MissedFill(f"paper {side} {coin}: the quote from {quote.source} has no {pays}")
        if order.expected_rate is not None:
            move = (rate - order.expected_rate) / order.expected_rate * 100
            if (move if side == "buy" else -move) > order.max_slippage_pct:
                raise OrderRejected(f"paper {side} {coin}: slippage guard: {pays} {rate} is {abs(move):.2f} % "
                                    f"{'above' if move > 0 else 'below'} the expected {order.expected_rate}, "
                                    f"more than the {order.max_slippage_pct} % allowed")
        if side == "buy":
            spend = aud(order.aud_amount)
            if spend > aud_held:
                raise OrderRejected(f"paper buy {coin}: {spend} AUD asked, the wallet holds {aud(aud_held)} AUD")
            fee = aud(spend * self.config.fee_rate)
            amount = coins((spend - fee) / rate)
            if amount <= 0:
                raise OrderRejected(f"paper buy {coin}: {spend} AUD buys no {coin} at {rate} after a {fee} AUD fee")
            return Fill(coin, side, amount, rate, spend, fee, now, broker_ref=order.idempotency_key)
        amount = coins(order.coin_amount)
        if amount <= 0:
            raise OrderRejected(f"paper sell {coin}: {coin_amount(order.coin_amount)} {coin} is nothing to sell")
        if amount > coins_held:
            raise OrderRejected(f"paper sell {coin}: {coin_amount(amount)} {coin} asked, "
                                f"the wallet holds {coin_amount(coins_held)} {coin}")
        gross = amount * rate
        fee = aud(gross * self.config.fee_rate)
        return Fill(coin, side, amount, rate, aud(gross - fee), fee, now, broker_ref=order.idempotency_key)
