"""A dataset's calendar; each run's liquidation and the periods per year it used.

Revision ID: backtest_0003_calendars_liquidation
Revises: backtest_0002_datasets_jobs_runs
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backtest_0003_calendars_liquidation"
down_revision = "backtest_0002_datasets_jobs_runs"
branch_labels = None
depends_on = None

RUN_COLUMNS = (
    ("periods_per_year", sa.Float, "0"),
    ("liquidated", sa.Boolean, sa.false()),
    ("liquidation_bar", sa.BigInteger, "-1"),
    ("liquidation_time_ms", sa.BigInteger, "0"),
    ("uncovered_loss", sa.Float, "0"),
)


def upgrade() -> None:
    with op.batch_alter_table("datasets") as table:
        table.add_column(
            sa.Column("calendar", sa.String(16), nullable=False, server_default="continuous")
        )
    with op.batch_alter_table("runs") as table:
        for name, kind, default in RUN_COLUMNS:
            table.add_column(sa.Column(name, kind, nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("runs") as table:
        for name, _, _ in reversed(RUN_COLUMNS):
            table.drop_column(name)
    with op.batch_alter_table("datasets") as table:
        table.drop_column("calendar")
