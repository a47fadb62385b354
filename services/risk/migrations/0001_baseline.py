"""Baseline: the risk database before any table.

Revision ID: risk_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

revision = "risk_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
