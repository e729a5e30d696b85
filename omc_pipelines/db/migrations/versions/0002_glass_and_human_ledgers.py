"""The Glass and Human ledgers: chain TVL, protocols, fees, stablecoins; items and daily sentiment.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa
import omc_pipelines.db.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('glass_chain_tvl',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chain', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('tvl_usd', sa.Float(), nullable=False),
    sa.Column('collected_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glass_chain_tvl')),
    sa.UniqueConstraint('chain', 'day', name=op.f('uq_glass_chain_tvl_chain_day'))
    )
    op.create_index(op.f('ix_glass_chain_tvl_day'), 'glass_chain_tvl', ['day'], unique=False)
    op.create_table('glass_protocol_fees',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('slug', sa.String(length=128), nullable=False),
    sa.Column('data_type', sa.String(length=16), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('total_24h', sa.Float(), nullable=True),
    sa.Column('total_7d', sa.Float(), nullable=True),
    sa.Column('total_30d', sa.Float(), nullable=True),
    sa.Column('collected_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glass_protocol_fees')),
    sa.UniqueConstraint('slug', 'data_type', 'as_of', name=op.f('uq_glass_protocol_fees_slug_data_type_as_of'))
    )
    op.create_index(op.f('ix_glass_protocol_fees_as_of'), 'glass_protocol_fees', ['as_of'], unique=False)
    op.create_table('glass_protocols',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('slug', sa.String(length=128), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('chains', sa.ARRAY(sa.String(length=64)).with_variant(sa.JSON(), 'sqlite'), nullable=False),
    sa.Column('tvl_usd', sa.Float(), nullable=True),
    sa.Column('change_1d', sa.Float(), nullable=True),
    sa.Column('mcap', sa.Float(), nullable=True),
    sa.Column('collected_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glass_protocols')),
    sa.UniqueConstraint('slug', 'as_of', name=op.f('uq_glass_protocols_slug_as_of'))
    )
    op.create_index(op.f('ix_glass_protocols_as_of'), 'glass_protocols', ['as_of'], unique=False)
    op.create_table('glass_stablecoin_supply',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stablecoin_id', sa.String(length=32), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('peg_type', sa.String(length=32), nullable=True),
    sa.Column('circulating', sa.Float(), nullable=True),
    sa.Column('price', sa.Float(), nullable=True),
    sa.Column('collected_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_glass_stablecoin_supply')),
    sa.UniqueConstraint('stablecoin_id', 'as_of', name=op.f('uq_glass_stablecoin_supply_stablecoin_id_as_of'))
    )
    op.create_index(op.f('ix_glass_stablecoin_supply_as_of'), 'glass_stablecoin_supply', ['as_of'], unique=False)
    op.create_table('human_coin_sentiment_daily',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('coin', sa.String(length=16), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('mean_sentiment', sa.Float(), nullable=False),
    sa.Column('weighted_sentiment', sa.Float(), nullable=False),
    sa.Column('share_positive', sa.Float(), nullable=False),
    sa.Column('share_negative', sa.Float(), nullable=False),
    sa.Column('total_weight', sa.Float(), nullable=False),
    sa.Column('computed_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_human_coin_sentiment_daily')),
    sa.UniqueConstraint('coin', 'day', name=op.f('uq_human_coin_sentiment_daily_coin_day'))
    )
    op.create_index(op.f('ix_human_coin_sentiment_daily_day'), 'human_coin_sentiment_daily', ['day'], unique=False)
    op.create_table('human_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=1024), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('author', sa.String(length=256), nullable=True),
    sa.Column('published_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('currencies', sa.ARRAY(sa.String(length=16)).with_variant(sa.JSON(), 'sqlite'), nullable=False),
    sa.Column('engagement', sa.JSON(), nullable=False),
    sa.Column('sentiment', sa.Float(), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.Column('collected_at', omc_pipelines.db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_human_items')),
    sa.UniqueConstraint('source', 'external_id', name=op.f('uq_human_items_source_external_id'))
    )
    op.create_index(op.f('ix_human_items_published_at'), 'human_items', ['published_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_human_items_published_at'), table_name='human_items')
    op.drop_table('human_items')
    op.drop_index(op.f('ix_human_coin_sentiment_daily_day'), table_name='human_coin_sentiment_daily')
    op.drop_table('human_coin_sentiment_daily')
    op.drop_index(op.f('ix_glass_stablecoin_supply_as_of'), table_name='glass_stablecoin_supply')
    op.drop_table('glass_stablecoin_supply')
    op.drop_index(op.f('ix_glass_protocols_as_of'), table_name='glass_protocols')
    op.drop_table('glass_protocols')
    op.drop_index(op.f('ix_glass_protocol_fees_as_of'), table_name='glass_protocol_fees')
    op.drop_table('glass_protocol_fees')
    op.drop_index(op.f('ix_glass_chain_tvl_day'), table_name='glass_chain_tvl')
    op.drop_table('glass_chain_tvl')
