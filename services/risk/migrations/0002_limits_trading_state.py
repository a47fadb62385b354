"""Limits and the trading-state audit trail.

Revision ID: risk_0002_limits_trading_state
Revises: risk_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "risk_0002_limits_trading_state"
down_revision = "risk_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_limits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "risk_trading_state_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_risk_trading_state_changes_update_time",
        "risk_trading_state_changes",
        ["update_time"],
    )


def downgrade() -> None:
    op.drop_index("ix_risk_trading_state_changes_update_time", "risk_trading_state_changes")
    op.drop_table("risk_trading_state_changes")
    op.drop_table("risk_limits")
