"""The portfolio service's tables (SQLAlchemy 2.0 `mapped_column` models).

Amounts are exact: `DecimalText` stores a Decimal as its plain decimal string. Times
are `EpochMicros`: UTC microseconds since the epoch in a BIGINT, exact, sortable and
the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from common.columns import DecimalText


class EpochMicros(TypeDecorator[datetime]):
    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:  # noqa: ARG002
        return None if value is None else to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        return None if value is None else from_micros(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


class Base(DeclarativeBase):
    """Base of the portfolio models; its metadata is what Alembic compares against."""


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    venue: Mapped[str] = mapped_column(String(64))
    # "paper", "sandbox" or "live".
    kind: Mapped[str] = mapped_column(String(16))
    quote_currency: Mapped[str] = mapped_column(String(16))
    create_time: Mapped[datetime] = mapped_column(EpochMicros)
    # The venue's executions up to this sequence are in the opening holdings already.
    opening_sequence: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # The holdings it opened with, "ASSET=amount,..." sorted ("" for imported accounts).
    opening_holdings: Mapped[str] = mapped_column(Text, server_default="")


class FillRow(Base):
    """The append-only fills ledger."""

    __tablename__ = "fills"
    __table_args__ = (
        UniqueConstraint("venue", "trade_id", name="uq_fills_venue_trade_id"),
        Index("ix_fills_account_time", "account_id", "time"),
        Index("ix_fills_account_symbol_time", "account_id", "symbol", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    venue: Mapped[str] = mapped_column(String(64))
    trade_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(128), default="")
    client_order_id: Mapped[str] = mapped_column(String(128), default="")
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    price: Mapped[Decimal] = mapped_column(DecimalText)
    fee: Mapped[Decimal] = mapped_column(DecimalText)
    fee_currency: Mapped[str] = mapped_column(String(16))
    liquidity: Mapped[str] = mapped_column(String(8), default="")
    time: Mapped[datetime] = mapped_column(EpochMicros)
    # The exchange outbox sequence; 0 for imported fills.
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class PositionRow(Base):
    """Average-cost state of one position; derivable from the fills, kept for fast start."""

    __tablename__ = "positions"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    average_price: Mapped[Decimal] = mapped_column(DecimalText)
    realized_pnl: Mapped[Decimal] = mapped_column(DecimalText)
    fees: Mapped[Decimal] = mapped_column(DecimalText)
    update_time: Mapped[datetime] = mapped_column(EpochMicros)
    # Since portfolio_0003: the open round trip (for win rate and profit factor).
    open_pnl: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    open_time: Mapped[datetime | None] = mapped_column(EpochMicros, nullable=True)


class OpeningPositionRow(Base):
    """A holding an account opened with, entered as a position at the mark: the start of
    that position, from which its fills are replayed (GetPnL FIFO)."""

    __tablename__ = "opening_positions"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    price: Mapped[Decimal] = mapped_column(DecimalText)


class BalanceRow(Base):
    __tablename__ = "balances"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    total: Mapped[Decimal] = mapped_column(DecimalText)


class CursorRow(Base):
    """How far a stream has been applied: advanced in the same transaction as the fills."""

    __tablename__ = "ingestion_cursors"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger)


class RoundTripRow(Base):
    __tablename__ = "round_trips"
    __table_args__ = (Index("ix_round_trips_account_close", "account_id", "close_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    symbol: Mapped[str] = mapped_column(String(64))
    open_time: Mapped[datetime] = mapped_column(EpochMicros)
    close_time: Mapped[datetime] = mapped_column(EpochMicros)
    pnl: Mapped[Decimal] = mapped_column(DecimalText)


class EquitySnapshotRow(Base):
    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_snapshots_account_time", "account_id", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    time: Mapped[datetime] = mapped_column(EpochMicros)
    equity: Mapped[Decimal] = mapped_column(DecimalText)
    cash: Mapped[Decimal] = mapped_column(DecimalText)
    # The account's net transfers (deposits minus withdrawals) when it was taken.
    net_transfers: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))


class TransferRow(Base):
    """A deposit (amount > 0) or withdrawal (< 0) found at the venue (transfer_watch.py)."""

    __tablename__ = "transfers"
    __table_args__ = (Index("ix_transfers_account_time", "account_id", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(DecimalText)
    # In the account's quote currency; None for an asset booked as a balance only.
    value: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    time: Mapped[datetime] = mapped_column(EpochMicros)
    as_of_sequence: Mapped[int] = mapped_column(BigInteger)


metadata = Base.metadata
