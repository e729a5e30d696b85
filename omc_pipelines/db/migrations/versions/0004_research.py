"""Research: OHLCV history imported from files, the event study's returns and summary, backtests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import omc_trading.columns


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('exchange_imported_candles',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('market', sa.String(length=16), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('open_time', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('open', sa.Float(), nullable=False),
    sa.Column('high', sa.Float(), nullable=False),
    sa.Column('low', sa.Float(), nullable=False),
    sa.Column('close', sa.Float(), nullable=False),
    sa.Column('volume', sa.Float(), nullable=False),
    sa.Column('file_name', sa.String(length=256), nullable=False),
    sa.Column('imported_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_imported_candles')),
    sa.UniqueConstraint('source', 'coin', 'market', 'interval_seconds', 'open_time', name=op.f('uq_exchange_imported_candles_source_coin_market_interval_seconds_open_time'))
    )
    with op.batch_alter_table('exchange_imported_candles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exchange_imported_candles_open_time'), ['open_time'], unique=False)

    op.create_table('research_backtest_trades',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('event_source', sa.String(length=32), nullable=True),
    sa.Column('event_external_id', sa.String(length=128), nullable=True),
    sa.Column('entry_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('entry_rate', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('coin_amount', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('aud_in', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('exit_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('exit_rate', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('aud_out', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('fees_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=True),
    sa.Column('exit_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_research_backtest_trades')),
    sa.UniqueConstraint('variant', 'kind', 'coin', 'entry_at', name=op.f('uq_research_backtest_trades_variant_kind_coin_entry_at'))
    )
    op.create_table('research_backtests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('variant', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('start_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('end_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('trades', sa.Integer(), nullable=False),
    sa.Column('start_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('end_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('pnl_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('fees_aud', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('total_return_pct', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('hit_rate', sa.Float(), nullable=True),
    sa.Column('max_drawdown_pct', omc_trading.columns.Money(precision=28, scale=8), nullable=False),
    sa.Column('exposure_pct', sa.Float(), nullable=False),
    sa.Column('computed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_research_backtests')),
    sa.UniqueConstraint('variant', 'kind', name=op.f('uq_research_backtests_variant_kind'))
    )
    op.create_table('research_event_returns',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_source', sa.String(length=32), nullable=False),
    sa.Column('event_external_id', sa.String(length=128), nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('coin', sa.String(length=32), nullable=False),
    sa.Column('anchor', sa.String(length=16), nullable=False),
    sa.Column('anchor_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.Column('horizon', sa.String(length=8), nullable=False),
    sa.Column('horizon_seconds', sa.Integer(), nullable=False),
    sa.Column('measurable', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('resolution', sa.String(length=8), nullable=True),
    sa.Column('price_source', sa.String(length=64), nullable=True),
    sa.Column('start_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('end_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=True),
    sa.Column('price_start', sa.Float(), nullable=True),
    sa.Column('price_end', sa.Float(), nullable=True),
    sa.Column('coin_return', sa.Float(), nullable=True),
    sa.Column('market', sa.String(length=16), nullable=True),
    sa.Column('market_return', sa.Float(), nullable=True),
    sa.Column('abnormal_return', sa.Float(), nullable=True),
    sa.Column('computed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_research_event_returns')),
    sa.UniqueConstraint('event_source', 'event_external_id', 'coin', 'anchor', 'horizon', name=op.f('uq_research_event_returns_event_source_event_external_id_coin_anchor_horizon'))
    )
    with op.batch_alter_table('research_event_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_research_event_returns_anchor_at'), ['anchor_at'], unique=False)

    op.create_table('research_event_study',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('event_source', sa.String(length=32), nullable=False),
    sa.Column('anchor', sa.String(length=16), nullable=False),
    sa.Column('horizon', sa.String(length=8), nullable=False),
    sa.Column('measure', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('mean', sa.Float(), nullable=True),
    sa.Column('median', sa.Float(), nullable=True),
    sa.Column('hit_rate', sa.Float(), nullable=True),
    sa.Column('ci_low', sa.Float(), nullable=True),
    sa.Column('ci_high', sa.Float(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('computed_at', omc_trading.columns.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_research_event_study')),
    sa.UniqueConstraint('event_type', 'event_source', 'anchor', 'horizon', 'measure', name=op.f('uq_research_event_study_event_type_event_source_anchor_horizon_measure'))
    )


def downgrade() -> None:
    op.drop_table('research_event_study')
    with op.batch_alter_table('research_event_returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_research_event_returns_anchor_at'))

    op.drop_table('research_event_returns')
    op.drop_table('research_backtests')
    op.drop_table('research_backtest_trades')
    with op.batch_alter_table('exchange_imported_candles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exchange_imported_candles_open_time'))

    op.drop_table('exchange_imported_candles')
