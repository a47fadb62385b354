"""Limits and trading state per venue account, under the global ones.

`risk_limits` keeps the global defaults; `risk_account_limits` the limits an account was
given of its own. A trading-state change names its account ('' for the global kill
switch, which every row before this revision was).

Revision ID: risk_0003_account_risk
Revises: risk_0002_limits_trading_state
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "risk_0003_account_risk"
down_revision = "risk_0002_limits_trading_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_account_limits",
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("risk_trading_state_changes") as batch:
        batch.add_column(sa.Column("account_id", sa.String(128), nullable=False, server_default=""))
        batch.create_index("ix_risk_trading_state_changes_account_id", ["account_id", "id"])


def downgrade() -> None:
    # Before this revision every row was the global switch: an account's rows would
    # read as global ones (an account's HALTED would halt every venue), so they go.
    op.execute("DELETE FROM risk_trading_state_changes WHERE account_id != ''")
    with op.batch_alter_table("risk_trading_state_changes") as batch:
        batch.drop_index("ix_risk_trading_state_changes_account_id")
        batch.drop_column("account_id")
    op.drop_table("risk_account_limits")
