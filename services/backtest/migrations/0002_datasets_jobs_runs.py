"""Datasets, jobs and their runs (metrics as columns).

Revision ID: backtest_0002_datasets_jobs_runs
Revises: backtest_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "backtest_0002_datasets_jobs_runs"
down_revision = "backtest_0001"
branch_labels = None
depends_on = None

METRICS = (
    "total_return",
    "cagr",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "sqn",
    "time_in_market",
    "average_trade_return",
    "buy_and_hold_return",
    "final_equity",
)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("gaps", sa.JSON, nullable=False),
        sa.Column("tick_size", sa.Float, nullable=False),
        sa.Column("lot_size", sa.Float, nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("engine", sa.String(8), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=False),
        sa.Column("dataset_id", sa.String(36), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("runs_total", sa.Integer, nullable=False),
        sa.Column("runs_done", sa.Integer, nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("rank_by", sa.String(32), nullable=False),
        sa.Column("submit_time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "runs",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.job_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("run_index", sa.Integer, primary_key=True),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        *(sa.Column(name, sa.Float, nullable=False) for name in METRICS),
        sa.Column("max_drawdown_duration_ms", sa.BigInteger, nullable=False),
        sa.Column("trades", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_table("jobs")
    op.drop_table("datasets")
