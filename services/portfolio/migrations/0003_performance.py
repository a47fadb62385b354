"""Performance: round trips, equity snapshots, and each position's open round trip.

Revision ID: portfolio_0003_performance
Revises: portfolio_0002_ledger
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0003_performance"
down_revision = "portfolio_0002_ledger"
branch_labels = None
depends_on = None

DECIMAL = sa.String(80)


def upgrade() -> None:
    # Existing positions get an empty open round trip: their history predates it.
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("open_pnl", DECIMAL, nullable=False, server_default="0"))
        batch.add_column(sa.Column("open_time", sa.BigInteger, nullable=True))
    op.create_table(
        "round_trips",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("open_time", sa.BigInteger, nullable=False),
        sa.Column("close_time", sa.BigInteger, nullable=False),
        sa.Column("pnl", DECIMAL, nullable=False),
    )
    op.create_index("ix_round_trips_account_close", "round_trips", ["account_id", "close_time"])
    op.create_table(
        "equity_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("equity", DECIMAL, nullable=False),
        sa.Column("cash", DECIMAL, nullable=False),
    )
    op.create_index("ix_equity_snapshots_account_time", "equity_snapshots", ["account_id", "time"])


def downgrade() -> None:
    op.drop_index("ix_equity_snapshots_account_time", table_name="equity_snapshots")
    op.drop_table("equity_snapshots")
    op.drop_index("ix_round_trips_account_close", table_name="round_trips")
    op.drop_table("round_trips")
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("open_time")
        batch.drop_column("open_pnl")
