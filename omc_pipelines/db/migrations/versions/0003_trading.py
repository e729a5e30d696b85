"""The trading tables: signals, orders, lots, realized P&L, positions, daily P&L, the paper
broker's wallet and fills, CoinSpot nonces and the kill switch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import omc_trading.columns


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trading_controls',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('changed_by', sa.String(length=64), nullable=True),
    sa.Column('changed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_controls')),
    sa.UniqueConstraint('name', name=op.f('uq_trading_controls_name'))
    )
    op.create_table('trading_nonces',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('key_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('last_nonce', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_nonces')),
    sa.UniqueConstraint('key_fingerprint', name=op.f('uq_trading_nonces_key_fingerprint'))
    )
    op.create_table('trading_paper_fills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=256), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('rate', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('aud_total', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('fee_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('quote_source', sa.String(length=128), nullable=False),
    sa.Column('filled_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_paper_fills')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_trading_paper_fills_idempotency_key'))
    )
    op.create_table('trading_paper_wallet',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('asset', sa.String(length=32), nullable=False),
    sa.Column('balance', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('updated_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_paper_wallet')),
    sa.UniqueConstraint('asset', name=op.f('uq_trading_paper_wallet_asset'))
    )
    op.create_table('trading_pnl_daily',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('realized_pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('unrealized_pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('fees_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('spent_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('orders_filled', sa.Integer(), nullable=False),
    sa.Column('computed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_pnl_daily_mode')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_pnl_daily')),
    sa.UniqueConstraint('mode', 'day', name=op.f('uq_trading_pnl_daily_mode_day'))
    )
    op.create_index(op.f('ix_trading_pnl_daily_day'), 'trading_pnl_daily', ['day'], unique=False)
    op.create_table('trading_positions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('cost_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('average_rate', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('opened_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_rate', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('last_rate_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('market_value_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('unrealized_pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('realized_pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('updated_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_positions_mode')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_positions')),
    sa.UniqueConstraint('mode', 'coin', name=op.f('uq_trading_positions_mode_coin'))
    )
    op.create_table('trading_signals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('signal_key', sa.String(length=256), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('event_source', sa.String(length=32), nullable=True),
    sa.Column('event_external_id', sa.String(length=128), nullable=True),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=True),
    sa.Column('aud_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('created_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("decision IN ('accepted', 'refused', 'informational')", name=op.f('ck_trading_signals_decision')),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_signals_mode')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_signals')),
    sa.UniqueConstraint('signal_key', name=op.f('uq_trading_signals_signal_key'))
    )
    op.create_index(op.f('ix_trading_signals_created_at'), 'trading_signals', ['created_at'], unique=False)
    op.create_table('trading_orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('idempotency_key', sa.String(length=256), nullable=False),
    sa.Column('signal_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('aud_total', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('rate', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('fee_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('expected_rate', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('event_source', sa.String(length=32), nullable=True),
    sa.Column('event_external_id', sa.String(length=128), nullable=True),
    sa.Column('broker_ref', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reconcile_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requested_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('filled_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_orders_mode')),
    sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f('ck_trading_orders_side')),
    sa.CheckConstraint("state IN ('intent', 'sent', 'filled', 'rejected', 'missed', 'unknown', 'lost')", name=op.f('ck_trading_orders_state')),
    sa.ForeignKeyConstraint(['signal_id'], ['trading_signals.id'], name=op.f('fk_trading_orders_signal_id_trading_signals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_orders')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_trading_orders_idempotency_key'))
    )
    op.create_index(op.f('ix_trading_orders_state'), 'trading_orders', ['state'], unique=False)
    op.create_table('trading_lots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('remaining', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('cost_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('opened_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_lots_mode')),
    sa.ForeignKeyConstraint(['order_id'], ['trading_orders.id'], name=op.f('fk_trading_lots_order_id_trading_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_lots')),
    sa.UniqueConstraint('order_id', name=op.f('uq_trading_lots_order_id'))
    )
    op.create_table('trading_realized',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('sell_order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('proceeds_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('cost_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('closed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('paper', 'live')", name=op.f('ck_trading_realized_mode')),
    sa.ForeignKeyConstraint(['lot_id'], ['trading_lots.id'], name=op.f('fk_trading_realized_lot_id_trading_lots')),
    sa.ForeignKeyConstraint(['sell_order_id'], ['trading_orders.id'], name=op.f('fk_trading_realized_sell_order_id_trading_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trading_realized')),
    sa.UniqueConstraint('sell_order_id', 'lot_id', name=op.f('uq_trading_realized_sell_order_id_lot_id'))
    )


def downgrade() -> None:
    op.drop_table('trading_realized')
    op.drop_table('trading_lots')
    op.drop_index(op.f('ix_trading_orders_state'), table_name='trading_orders')
    op.drop_table('trading_orders')
    op.drop_index(op.f('ix_trading_signals_created_at'), table_name='trading_signals')
    op.drop_table('trading_signals')
    op.drop_table('trading_positions')
    op.drop_index(op.f('ix_trading_pnl_daily_day'), table_name='trading_pnl_daily')
    op.drop_table('trading_pnl_daily')
    op.drop_table('trading_paper_wallet')
    op.drop_table('trading_paper_fills')
    op.drop_table('trading_nonces')
    op.drop_table('trading_controls')
