"""Runners, their decisions, and the executions cursor.

Revision ID: strategy_0002_runners
Revises: strategy_0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "strategy_0002_runners"
down_revision = "strategy_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "strategy_runners",
        sa.Column("runner_id", sa.String(32), primary_key=True),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("venue", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("entries_paused", sa.Boolean(), nullable=False),
        sa.Column("capital", sa.String(64), nullable=False),
        sa.Column("sizing", sa.String(32), nullable=False),
        sa.Column("size", sa.String(64), nullable=False),
        sa.Column("stop_loss", sa.String(64), nullable=False),
        sa.Column("take_profit", sa.String(64), nullable=False),
        sa.Column("allow_short", sa.Boolean(), nullable=False),
        sa.Column("position", sa.String(64), nullable=False),
        sa.Column("cash", sa.String(64), nullable=False),
        sa.Column("entry_price", sa.String(64), nullable=False),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("last_bar_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("backtest_job_id", sa.String(64), nullable=False),
        sa.Column("warmup_bars", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        # One runner per venue account and symbol.
        sa.UniqueConstraint("venue", "symbol", name="uq_strategy_runners_venue_symbol"),
    )
    op.create_index("ix_strategy_runners_create_time", "strategy_runners", ["create_time"])
    op.create_table(
        "strategy_decisions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "runner_id",
            sa.String(32),
            sa.ForeignKey("strategy_runners.runner_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("bar_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signal", sa.Float(), nullable=True),
        sa.Column("target", sa.Integer(), nullable=False),
        sa.Column("position_before", sa.String(64), nullable=False),
        sa.Column("order_quantity", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=True, unique=True),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("order_status", sa.Integer(), nullable=False),
        sa.Column("expected_price", sa.String(64), nullable=False),
        sa.Column("filled_quantity", sa.String(64), nullable=False),
        sa.Column("filled_notional", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("decide_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_strategy_decisions_runner_id", "strategy_decisions", ["runner_id"])
    op.create_table(
        "strategy_cursor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("executions_seq", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("strategy_cursor")
    op.drop_index("ix_strategy_decisions_runner_id", "strategy_decisions")
    op.drop_table("strategy_decisions")
    op.drop_index("ix_strategy_runners_create_time", "strategy_runners")
    op.drop_table("strategy_runners")
