"""Transfers: deposits and withdrawals found at the venue, and each equity snapshot's
net transfers (so returns and drawdown can be taken net of flows).

Revision ID: portfolio_0005_transfers
Revises: portfolio_0004_account_opening
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0005_transfers"
down_revision = "portfolio_0004_account_opening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Snapshots from before this revision had no transfers: 0.
    op.add_column(
        "equity_snapshots",
        sa.Column("net_transfers", sa.String(80), nullable=False, server_default="0"),
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("value", sa.String(80), nullable=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("as_of_sequence", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_transfers_account_time", "transfers", ["account_id", "time"])


def downgrade() -> None:
    op.drop_index("ix_transfers_account_time", table_name="transfers")
    op.drop_table("transfers")
    op.drop_column("equity_snapshots", "net_transfers")  # SQLite >= 3.35
