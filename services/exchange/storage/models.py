"""The exchange service's tables (SQLAlchemy 2.0 `mapped_column` models).

Amounts are exact: decimal strings (common.columns' `DecimalText`), never floats. Times
are timezone-aware UTC. Nothing here is SQLite-only: the same models serve PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.columns import DecimalText


class Base(DeclarativeBase):
    """Base of the exchange models; its metadata is what Alembic compares against."""


metadata = Base.metadata


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime (SQLite keeps no zone; this puts it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("venue", "client_order_id", name="uq_orders_venue_client_order_id"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_create_time", "create_time", "order_id"),
    )

    order_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    venue: Mapped[str] = mapped_column(String(64))
    venue_order_id: Mapped[str] = mapped_column(String(128), default="")
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    price: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    post_only: Mapped[bool] = mapped_column(Boolean)
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(24))
    filled_quantity: Mapped[Decimal] = mapped_column(DecimalText)
    filled_notional: Mapped[Decimal] = mapped_column(DecimalText)
    fee: Mapped[Decimal] = mapped_column(DecimalText)
    fee_currency: Mapped[str] = mapped_column(String(16), default="")
    # Comma-separated stable reason codes.
    reject_reasons: Mapped[str] = mapped_column(Text, default="")
    reject_message: Mapped[str] = mapped_column(Text, default="")
    reject_code: Mapped[str] = mapped_column(String(32), default="")
    create_time: Mapped[datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[datetime] = mapped_column(UtcDateTime)


class ExecutionRow(Base):
    """The outbox: one row per fill, in the transaction that updates its order."""

    __tablename__ = "executions"
    __table_args__ = (UniqueConstraint("venue", "trade_id", name="uq_executions_venue_trade_id"),)

    # Monotonic, gap-free, assigned by the (single) exchange process.
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    venue: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.order_id"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    price: Mapped[Decimal] = mapped_column(DecimalText)
    fee: Mapped[Decimal] = mapped_column(DecimalText)
    fee_currency: Mapped[str] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8))
    time: Mapped[datetime] = mapped_column(UtcDateTime)


class CandleRow(Base):
    """Candles fetched from a venue once, served from here after."""

    __tablename__ = "candles"

    venue: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    open_time_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    open: Mapped[Decimal] = mapped_column(DecimalText)
    high: Mapped[Decimal] = mapped_column(DecimalText)
    low: Mapped[Decimal] = mapped_column(DecimalText)
    close: Mapped[Decimal] = mapped_column(DecimalText)
    volume: Mapped[Decimal] = mapped_column(DecimalText)


class CandleRangeRow(Base):
    """A span [start, end) of candles known complete in `candles`: a request inside it
    does not go to the venue."""

    __tablename__ = "candle_ranges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    venue: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(64))
    timeframe: Mapped[str] = mapped_column(String(8))
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
