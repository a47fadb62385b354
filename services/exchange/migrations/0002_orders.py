"""Orders, the executions outbox, and the candle cache.

Revision ID: exchange_0002_orders
Revises: exchange_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "exchange_0002_orders"
down_revision = "exchange_0001"
branch_labels = None
depends_on = None

AMOUNT = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(32), primary_key=True),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("venue_order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=True),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("filled_quantity", AMOUNT, nullable=False),
        sa.Column("filled_notional", AMOUNT, nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        sa.Column("fee_currency", sa.String(16), nullable=False),
        sa.Column("reject_reasons", sa.Text(), nullable=False),
        sa.Column("reject_message", sa.Text(), nullable=False),
        sa.Column("reject_code", sa.String(32), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("venue", "client_order_id", name="uq_orders_venue_client_order_id"),
    )
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_index("ix_orders_create_time", "orders", ["create_time", "order_id"])
    op.create_table(
        "executions",
        sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.order_id"), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("quantity", AMOUNT, nullable=False),
        sa.Column("price", AMOUNT, nullable=False),
        sa.Column("fee", AMOUNT, nullable=False),
        sa.Column("fee_currency", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("venue", "trade_id", name="uq_executions_venue_trade_id"),
    )
    op.create_index("ix_executions_order_id", "executions", ["order_id"])
    op.create_table(
        "candles",
        sa.Column("venue", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("open_time_ms", sa.BigInteger(), primary_key=True),
        sa.Column("open", AMOUNT, nullable=False),
        sa.Column("high", AMOUNT, nullable=False),
        sa.Column("low", AMOUNT, nullable=False),
        sa.Column("close", AMOUNT, nullable=False),
        sa.Column("volume", AMOUNT, nullable=False),
    )
    op.create_table(
        "candle_ranges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("candle_ranges")
    op.drop_table("candles")
    op.drop_index("ix_executions_order_id", table_name="executions")
    op.drop_table("executions")
    op.drop_index("ix_orders_create_time", table_name="orders")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_table("orders")
