"""The strategy service's tables (SQLAlchemy 2.0 `mapped_column` models).

A runner row holds its configuration and its state (position and cash from its own
fills, the last bar decided on). Decisions are one row per decided bar, per stop
trigger and per flatten, written before the order is sent (so a restart re-sends the
same client_order_id, which the exchange answers with the original order). The
strategy_cursor row holds the last execution sequence applied, in the same transaction
as the fill.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of the strategy models; its metadata is what Alembic compares against."""


metadata = Base.metadata


class RunnerRecord(Base):
    __tablename__ = "strategy_runners"
    # One runner per venue account and symbol.
    __table_args__ = (UniqueConstraint("venue", "symbol", name="uq_strategy_runners_venue_symbol"),)

    runner_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(128))
    parameters: Mapped[str] = mapped_column(Text)
    venue: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    entries_paused: Mapped[bool] = mapped_column(Boolean)
    capital: Mapped[str] = mapped_column(String(64))
    sizing: Mapped[str] = mapped_column(String(32))
    size: Mapped[str] = mapped_column(String(64))
    stop_loss: Mapped[str] = mapped_column(String(64))
    take_profit: Mapped[str] = mapped_column(String(64))
    allow_short: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[str] = mapped_column(String(64))
    cash: Mapped[str] = mapped_column(String(64))
    entry_price: Mapped[str] = mapped_column(String(64))
    target: Mapped[int] = mapped_column(Integer)
    last_bar_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stop_reason: Mapped[str] = mapped_column(Text)
    backtest_job_id: Mapped[str] = mapped_column(String(64))
    warmup_bars: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DecisionRecord(Base):
    __tablename__ = "strategy_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    runner_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("strategy_runners.runner_id", ondelete="CASCADE"), index=True
    )
    bar_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # NULL: the strategy said NaN (keep).
    signal: Mapped[float | None] = mapped_column(Float)
    target: Mapped[int] = mapped_column(Integer)
    position_before: Mapped[str] = mapped_column(String(64))
    order_quantity: Mapped[str] = mapped_column(String(64))
    # NULL when no order was sent; unique, so one id is one order.
    client_order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(String(64))
    # The domain OrderStatus by name ('filled'); '' until the exchange answered.
    order_status: Mapped[str] = mapped_column(String(24))
    expected_price: Mapped[str] = mapped_column(String(64))
    filled_quantity: Mapped[str] = mapped_column(String(64))
    filled_notional: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    decide_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CursorRecord(Base):
    __tablename__ = "strategy_cursor"

    # Always 1.
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The last exchange execution sequence applied.
    executions_seq: Mapped[int] = mapped_column(BigInteger)
