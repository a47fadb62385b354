"""Baseline: the strategy database before any table.

Revision ID: strategy_0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "strategy_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
