"""Reads of the ledger that go to the database: fills, replays and round trips."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.portfolio.accounting import Side, Trade
from services.portfolio.storage.models import FillRow, RoundTripRow, TransferRow


def _filtered(
    query: Select[FillRow],
    account_id: str,
    symbol: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> Select[FillRow]:
    query = query.where(FillRow.account_id == account_id)
    if symbol:
        query = query.where(FillRow.symbol == symbol)
    if start is not None:
        query = query.where(FillRow.time >= start)
    if end is not None:
        query = query.where(FillRow.time < end)
    return query


async def list_fills(
    session: AsyncSession,
    account_id: str,
    *,
    symbol: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int = 100,
) -> Sequence[FillRow]:
    """Fills newest first; `before` is the (time, id) of the last fill of the previous page."""
    query = _filtered(select(FillRow), account_id, symbol, start, end)
    if before is not None:
        time, row_id = before
        query = query.where(
            or_(FillRow.time < time, and_(FillRow.time == time, FillRow.id < row_id))
        )
    query = query.order_by(FillRow.time.desc(), FillRow.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def list_transfers(
    session: AsyncSession,
    account_id: str,
    *,
    before: tuple[datetime, int] | None = None,
    limit: int = 100,
) -> Sequence[TransferRow]:
    """Transfers newest first; `before` is the (time, id) of the last of the previous page."""
    query = select(TransferRow).where(TransferRow.account_id == account_id)
    if before is not None:
        time, row_id = before
        query = query.where(
            or_(TransferRow.time < time, and_(TransferRow.time == time, TransferRow.id < row_id))
        )
    query = query.order_by(TransferRow.time.desc(), TransferRow.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def trades_in_ledger_order(
    session: AsyncSession, account_id: str, symbol: str = ""
) -> list[Trade]:
    """Every fill of an account (or of one symbol) in the order the ledger applied them."""
    query = _filtered(select(FillRow), account_id, symbol).order_by(FillRow.id)
    return [trade_of(row) for row in await session.scalars(query)]


def trade_of(row: FillRow) -> Trade:
    return Trade(
        venue=row.venue,
        trade_id=row.trade_id,
        symbol=row.symbol,
        side=Side(row.side),
        quantity=row.quantity,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        time=row.time,
        order_id=row.order_id,
        client_order_id=row.client_order_id,
        liquidity=row.liquidity,
        sequence=row.sequence,
    )


async def round_trip_pnls(
    session: AsyncSession,
    account_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Decimal]:
    """PnL of the round trips closed in [start, end)."""
    query = select(RoundTripRow.pnl).where(RoundTripRow.account_id == account_id)
    if start is not None:
        query = query.where(RoundTripRow.close_time >= start)
    if end is not None:
        query = query.where(RoundTripRow.close_time < end)
    return list(await session.scalars(query.order_by(RoundTripRow.id)))
