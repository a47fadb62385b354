"""The risk service's tables (SQLAlchemy 2.0 `mapped_column` models).

Limits are one JSON document of decimal strings (one row, replaced on update); the
trading state is an append-only audit trail whose newest row is the current state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of the risk models; its metadata is what Alembic compares against."""


metadata = Base.metadata


class LimitsRecord(Base):
    __tablename__ = "risk_limits"

    # Always 1: there is one set of limits (for the venue account risk watches).
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(128))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TradingStateRecord(Base):
    __tablename__ = "risk_trading_state_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(128))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
