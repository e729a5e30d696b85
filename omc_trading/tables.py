"""The trading tables. Migration 0003 (in ``omc_pipelines``' migrations) creates them.

Paper and live books never mix: every row that belongs to a book carries ``mode``.
Money columns are :class:`~omc_trading.columns.Money` (exact on both databases).
"""

from __future__ import annotations

import sqlalchemy as sa

from omc_trading.columns import Money, UtcDateTime

# The same naming convention as the ledgers' tables, so constraint names are predictable.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

MODES = ("paper", "live")
ORDER_STATES = ("intent", "sent", "filled", "rejected", "missed", "unknown", "lost")
DECISIONS = ("accepted", "refused", "informational")


def _one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"{column} IN ({', '.join(repr(v) for v in values)})", name=name)


# What the strategy made of an event (or of a price, for exits), and the risk gate's answer.
signals = sa.Table(
    "trading_signals", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    # The idempotency key of the order this signal asks for: mode, strategy, event, action, coin.
    sa.Column("signal_key", sa.String(256), nullable=False, unique=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("strategy", sa.String(32), nullable=False),  # listing, delisting, btc_purchase, exit, ...
    sa.Column("event_source", sa.String(32), nullable=True),
    sa.Column("event_external_id", sa.String(128), nullable=True),
    sa.Column("action", sa.String(8), nullable=False),  # buy, sell, none
    sa.Column("coin", sa.String(32), nullable=True),
    sa.Column("aud_amount", Money, nullable=True),
    sa.Column("coin_amount", Money, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),  # why the strategy said this
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("decision_reason", sa.Text, nullable=False),  # why the risk gate said yes or no
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    _one_of("mode", MODES, "mode"),
    _one_of("decision", DECISIONS, "decision"),
)

# One row per order; written (state "intent") before anything is sent.
orders = sa.Table(
    "trading_orders", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(256), nullable=False, unique=True),
    sa.Column("signal_id", Id, sa.ForeignKey("trading_signals.id"), nullable=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("coin", sa.String(32), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("aud_total", Money, nullable=True),  # asked (buy) and then filled (both)
    sa.Column("coin_amount", Money, nullable=True),  # asked (sell) and then filled (both)
    sa.Column("rate", Money, nullable=True),
    sa.Column("fee_aud", Money, nullable=True),
    sa.Column("expected_rate", Money, nullable=True),
    sa.Column("event_source", sa.String(32), nullable=True),
    sa.Column("event_external_id", sa.String(128), nullable=True),
    sa.Column("broker_ref", sa.String(128), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),  # why rejected, missed, unknown or lost
    sa.Column("reconcile_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("filled_at", UtcDateTime, nullable=True),
    sa.Column("resolved_at", UtcDateTime, nullable=True),
    _one_of("mode", MODES, "mode"),
    _one_of("side", ("buy", "sell"), "side"),
    _one_of("state", ORDER_STATES, "state"),
)

# FIFO lots: a filled buy opens one; sells consume the oldest first.
lots = sa.Table(
    "trading_lots", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("coin", sa.String(32), nullable=False),
    sa.Column("order_id", Id, sa.ForeignKey("trading_orders.id"), nullable=False, unique=True),
    sa.Column("coin_amount", Money, nullable=False),
    sa.Column("remaining", Money, nullable=False),
    sa.Column("cost_aud", Money, nullable=False),  # what the lot cost, fee included
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    _one_of("mode", MODES, "mode"),
)

# A sell's match against the lots it closed: realized P&L, fees on both sides included.
realized = sa.Table(
    "trading_realized", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("coin", sa.String(32), nullable=False),
    sa.Column("sell_order_id", Id, sa.ForeignKey("trading_orders.id"), nullable=False),
    sa.Column("lot_id", Id, sa.ForeignKey("trading_lots.id"), nullable=False),
    sa.Column("coin_amount", Money, nullable=False),
    sa.Column("proceeds_aud", Money, nullable=False),
    sa.Column("cost_aud", Money, nullable=False),
    sa.Column("pnl_aud", Money, nullable=False),
    sa.Column("closed_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("sell_order_id", "lot_id"),
    _one_of("mode", MODES, "mode"),
)

# Open positions per book, recomputed from the lots at the latest Exchange ledger price.
positions = sa.Table(
    "trading_positions", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("coin", sa.String(32), nullable=False),
    sa.Column("coin_amount", Money, nullable=False),
    sa.Column("cost_aud", Money, nullable=False),
    sa.Column("average_rate", Money, nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("last_rate", Money, nullable=True),
    sa.Column("last_rate_at", UtcDateTime, nullable=True),
    sa.Column("market_value_aud", Money, nullable=True),
    sa.Column("unrealized_pnl_aud", Money, nullable=True),
    sa.Column("realized_pnl_aud", Money, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("mode", "coin"),
    _one_of("mode", MODES, "mode"),
)

# One row per book and UTC day.
pnl_daily = sa.Table(
    "trading_pnl_daily", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("realized_pnl_aud", Money, nullable=False),
    sa.Column("unrealized_pnl_aud", Money, nullable=False),
    sa.Column("fees_aud", Money, nullable=False),
    sa.Column("spent_aud", Money, nullable=False),
    sa.Column("orders_filled", sa.Integer, nullable=False),
    sa.Column("computed_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("mode", "day"),
    _one_of("mode", MODES, "mode"),
)

# The paper broker's exchange side: its wallet and its fills (what reconciliation reads).
paper_wallet = sa.Table(
    "trading_paper_wallet", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("asset", sa.String(32), nullable=False, unique=True),  # "AUD", "BTC", ...
    sa.Column("balance", Money, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
paper_fills = sa.Table(
    "trading_paper_fills", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(256), nullable=False, unique=True),
    sa.Column("coin", sa.String(32), nullable=False),
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("coin_amount", Money, nullable=False),
    sa.Column("rate", Money, nullable=False),
    sa.Column("aud_total", Money, nullable=False),
    sa.Column("fee_aud", Money, nullable=False),
    sa.Column("quote_source", sa.String(128), nullable=False),
    sa.Column("filled_at", UtcDateTime, nullable=False),
)

# CoinSpot's nonce must only grow, per API key: the last one used, by key fingerprint
# (a hash of the key: the key itself is never stored).
nonces = sa.Table(
    "trading_nonces", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("key_fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("last_nonce", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Switches a person sets: the kill switch ("halted" or "running"), with who and why.
controls = sa.Table(
    "trading_controls", metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(32), nullable=False, unique=True),
    sa.Column("value", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("changed_by", sa.String(64), nullable=True),
    sa.Column("changed_at", UtcDateTime, nullable=False),
)
