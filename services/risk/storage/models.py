"""The risk service's tables (SQLAlchemy 2.0 `mapped_column` models).

Limits are JSON documents of decimal strings: the global defaults (one row) and the
limits of each venue account that has its own (one row per account), replaced on
update. The trading state is an append-only audit trail whose newest row per account
('' for the global kill switch) is that account's current state.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of the risk models; its metadata is what Alembic compares against."""


metadata = Base.metadata


class LimitsRecord(Base):
    __tablename__ = "risk_limits"

    # Always 1: the global defaults, which every account without its own follows.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(128))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AccountLimitsRecord(Base):
    __tablename__ = "risk_account_limits"

    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(128))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TradingStateRecord(Base):
    __tablename__ = "risk_trading_state_changes"
    __table_args__ = (Index("ix_risk_trading_state_changes_account_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # '' for the global kill switch.
    account_id: Mapped[str] = mapped_column(String(128), server_default="")
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(128))
    update_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
