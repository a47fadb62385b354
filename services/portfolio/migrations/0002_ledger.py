"""The ledger: accounts, fills, positions, balances and the ingestion cursor.

Revision ID: portfolio_0002_ledger
Revises: portfolio_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "portfolio_0002_ledger"
down_revision = "portfolio_0001"
branch_labels = None
depends_on = None

DECIMAL = sa.String(80)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("quote_currency", sa.String(16), nullable=False),
        sa.Column("create_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fills",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("client_order_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", DECIMAL, nullable=False),
        sa.Column("price", DECIMAL, nullable=False),
        sa.Column("fee", DECIMAL, nullable=False),
        sa.Column("fee_currency", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("venue", "trade_id", name="uq_fills_venue_trade_id"),
    )
    op.create_index("ix_fills_account_time", "fills", ["account_id", "time"])
    op.create_index("ix_fills_account_symbol_time", "fills", ["account_id", "symbol", "time"])
    op.create_table(
        "positions",
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), primary_key=True
        ),
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("quantity", DECIMAL, nullable=False),
        sa.Column("average_price", DECIMAL, nullable=False),
        sa.Column("realized_pnl", DECIMAL, nullable=False),
        sa.Column("fees", DECIMAL, nullable=False),
        sa.Column("update_time", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "balances",
        sa.Column(
            "account_id", sa.String(64), sa.ForeignKey("accounts.account_id"), primary_key=True
        ),
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("total", DECIMAL, nullable=False),
    )
    op.create_table(
        "ingestion_cursors",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingestion_cursors")
    op.drop_table("balances")
    op.drop_table("positions")
    op.drop_index("ix_fills_account_symbol_time", table_name="fills")
    op.drop_index("ix_fills_account_time", table_name="fills")
    op.drop_table("fills")
    op.drop_table("accounts")
