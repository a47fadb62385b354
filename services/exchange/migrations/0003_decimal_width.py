"""Amounts in the one DecimalText of common.columns: 80 characters wide (was 64).

Revision ID: exchange_0003_decimal_width
Revises: exchange_0002_orders
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "exchange_0003_decimal_width"
down_revision = "exchange_0002_orders"
branch_labels = None
depends_on = None

AMOUNTS = {
    "orders": ("quantity", "price", "filled_quantity", "filled_notional", "fee"),
    "executions": ("quantity", "price", "fee"),
    "candles": ("open", "high", "low", "close", "volume"),
}


def _resize(old: int, new: int) -> None:
    for table, columns in AMOUNTS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, type_=sa.String(new), existing_type=sa.String(old))


def upgrade() -> None:
    _resize(64, 80)


def downgrade() -> None:
    _resize(80, 64)
