"""Account opening: the holdings an account opened with, the sequence they include and
the positions they entered as.

Revision ID: portfolio_0004_account_opening
Revises: portfolio_0003_performance
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0004_account_opening"
down_revision = "portfolio_0003_performance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Accounts opened before this revision keep what they have: sequence 0, no holdings
    # recorded (their opening cash is in their balances already). Plain ADD/DROP COLUMN,
    # not a batch table rebuild: other tables' foreign keys point at `accounts`.
    op.add_column(
        "accounts",
        sa.Column("opening_sequence", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "accounts", sa.Column("opening_holdings", sa.Text, nullable=False, server_default="")
    )
    op.create_table(
        "opening_positions",
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), primary_key=True
        ),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.String(80), nullable=False),
        sa.Column("price", sa.String(80), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("opening_positions")
    op.drop_column("accounts", "opening_holdings")  # SQLite >= 3.35
    op.drop_column("accounts", "opening_sequence")
