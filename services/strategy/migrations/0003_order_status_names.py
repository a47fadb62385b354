"""A decision's order status is stored by name ('filled'), not by proto number.

The numbers of edgequant.common.v1.OrderStatus were stored until now; each is rewritten
to its name ('' for 0: not answered yet), and back on the way down.

Revision ID: strategy_0003_order_status_names
Revises: strategy_0002_runners
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "strategy_0003_order_status_names"
down_revision = "strategy_0002_runners"
branch_labels = None
depends_on = None

# The numbers stored before this revision, by name; written out here, not imported, so
# the revision reads the same whatever the proto or the domain becomes.
NUMBERS = {
    "pending_new": 1,
    "open": 2,
    "partially_filled": 3,
    "filled": 4,
    "pending_cancel": 5,
    "canceled": 6,
    "rejected": 7,
    "expired": 8,
}


def upgrade() -> None:
    op.add_column(
        "strategy_decisions",
        sa.Column("order_status_name", sa.String(24), nullable=False, server_default=""),
    )
    decisions = sa.table(
        "strategy_decisions", sa.column("order_status"), sa.column("order_status_name")
    )
    names = {number: name for name, number in NUMBERS.items()}
    op.execute(
        decisions.update().values(
            order_status_name=sa.case(names, value=decisions.c.order_status, else_="")
        )
    )
    with op.batch_alter_table("strategy_decisions") as batch:
        batch.drop_column("order_status")
        batch.alter_column("order_status_name", new_column_name="order_status", server_default=None)


def downgrade() -> None:
    op.add_column(
        "strategy_decisions",
        sa.Column("order_status_number", sa.Integer(), nullable=False, server_default="0"),
    )
    decisions = sa.table(
        "strategy_decisions", sa.column("order_status"), sa.column("order_status_number")
    )
    op.execute(
        decisions.update().values(
            order_status_number=sa.case(NUMBERS, value=decisions.c.order_status, else_=0)
        )
    )
    with op.batch_alter_table("strategy_decisions") as batch:
        batch.drop_column("order_status")
        batch.alter_column(
            "order_status_number", new_column_name="order_status", server_default=None
        )
