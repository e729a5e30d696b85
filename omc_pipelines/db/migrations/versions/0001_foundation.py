"""Foundation: the Exchange ledger and catalyst_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from omc_pipelines.db.types import BigId, StringList, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_price_snapshots",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("bid", sa.Float, nullable=True),
        sa.Column("ask", sa.Float, nullable=True),
        sa.Column("last", sa.Float, nullable=True),
        sa.Column("observed_at", UtcDateTime, nullable=False),
        sa.Column("collected_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_price_snapshots"),
        sa.UniqueConstraint("coin", "market", "observed_at", name="uq_exchange_price_snapshots_coin_market_observed_at"),
    )
    op.create_index("ix_exchange_price_snapshots_observed_at", "exchange_price_snapshots", ["observed_at"])

    op.create_table(
        "exchange_trades",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("sold_at", UtcDateTime, nullable=False),
        sa.Column("collected_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_trades"),
        sa.UniqueConstraint(
            "coin", "market", "sold_at", "side", "amount", "rate",
            name="uq_exchange_trades_coin_market_sold_at_side_amount_rate",
        ),
    )
    op.create_index("ix_exchange_trades_sold_at", "exchange_trades", ["sold_at"])

    op.create_table(
        "exchange_candles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("coin", sa.String(32), nullable=False),
        sa.Column("market", sa.String(16), nullable=False),
        sa.Column("hour_start", UtcDateTime, nullable=False),
        sa.Column("open", sa.Float, nullable=False),
        sa.Column("high", sa.Float, nullable=False),
        sa.Column("low", sa.Float, nullable=False),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("volume", sa.Float, nullable=False),
        sa.Column("quote_volume", sa.Float, nullable=False),
        sa.Column("trade_count", sa.Integer, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("computed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_candles"),
        sa.UniqueConstraint("coin", "market", "hour_start", name="uq_exchange_candles_coin_market_hour_start"),
    )
    op.create_index("ix_exchange_candles_hour_start", "exchange_candles", ["hour_start"])

    op.create_table(
        "catalyst_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("currencies", StringList, nullable=False),
        sa.Column("impact_score", sa.SmallInteger, nullable=False),
        sa.Column("published_at", UtcDateTime, nullable=False),
        sa.Column("detected_at", UtcDateTime, nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("collected_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalyst_events"),
        sa.UniqueConstraint("source", "external_id", name="uq_catalyst_events_source_external_id"),
        sa.CheckConstraint("impact_score BETWEEN 1 AND 10", name="ck_catalyst_events_impact_score_range"),
    )
    op.create_index("ix_catalyst_events_published_at", "catalyst_events", ["published_at"])


def downgrade() -> None:
    op.drop_table("catalyst_events")
    op.drop_table("exchange_candles")
    op.drop_table("exchange_trades")
    op.drop_table("exchange_price_snapshots")
