"""The backtest service's tables (SQLAlchemy 2.0 `mapped_column` models)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Base of the backtest models; its metadata is what Alembic compares against."""


metadata = Base.metadata
