"""Reads and writes of orders, the executions outbox and cached candles.

Functions take the session of the caller's transaction: an order update and the
executions it produced are written in one. Reads are async; the writes of orders and
executions are synchronous, for the writer thread (storage/writer.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.exchange.markets import Candle
from services.exchange.orders import (
    OPEN_STATUSES,
    Execution,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from services.exchange.storage.models import CandleRangeRow, CandleRow, ExecutionRow, OrderRow

# -- orders ---------------------------------------------------------------------------


# The unit of work the service's domain modules hold: each `async with sessions() as
# session` reads through the functions below (writes go through the Writer).
Sessions: TypeAlias = async_sessionmaker[AsyncSession]
Session: TypeAlias = AsyncSession


class ClientOrderIdTaken(Exception):
    """The venue account has an order with this client_order_id already."""

    def __init__(self, venue: str, client_order_id: str) -> None:
        super().__init__(f"{venue}: client_order_id {client_order_id!r} is taken")
        self.venue = venue
        self.client_order_id = client_order_id


def _order_values(order: Order) -> dict[str, object]:
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "venue": order.venue,
        "venue_order_id": order.venue_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "time_in_force": order.time_in_force.value,
        "quantity": order.quantity,
        "price": order.price,
        "post_only": order.post_only,
        "reduce_only": order.reduce_only,
        "status": order.status.value,
        "filled_quantity": order.filled_quantity,
        "filled_notional": order.filled_notional,
        "fee": order.fee,
        "fee_currency": order.fee_currency,
        "reject_reasons": ",".join(order.reject_reasons),
        "reject_message": order.reject_message,
        "reject_code": order.reject_code,
        "create_time": order.create_time,
        "update_time": order.update_time,
    }


def _order(row: OrderRow) -> Order:
    return Order(
        order_id=row.order_id,
        client_order_id=row.client_order_id,
        venue=row.venue,
        venue_order_id=row.venue_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        type=OrderType(row.type),
        time_in_force=TimeInForce(row.time_in_force),
        quantity=row.quantity,
        price=row.price,
        post_only=row.post_only,
        reduce_only=row.reduce_only,
        status=OrderStatus(row.status),
        filled_quantity=row.filled_quantity,
        filled_notional=row.filled_notional,
        fee=row.fee,
        fee_currency=row.fee_currency,
        reject_reasons=[r for r in row.reject_reasons.split(",") if r],
        reject_message=row.reject_message,
        reject_code=row.reject_code,
        create_time=row.create_time,
        update_time=row.update_time,
    )


# Writes are synchronous Core statements (no ORM unit of work, no read before the
# write), run by storage.writer.Writer: they sit on SubmitOrder's hot path. Each is
# built once and executed with its parameters: building `update(...).values(...)` per
# call cost SQLAlchemy ~2 ms of statement and cache-key work here, four times the write.
_ORDERS = OrderRow.metadata.tables[OrderRow.__tablename__]
_INSERT_ORDER = insert(_ORDERS)
_UPDATE_ORDER = update(_ORDERS).where(_ORDERS.c.order_id == bindparam("key_order_id"))
_INSERT_EXECUTIONS = insert(ExecutionRow.metadata.tables[ExecutionRow.__tablename__])


def insert_order(connection: Connection, order: Order) -> None:
    """Raises ClientOrderIdTaken when (venue, client_order_id) has an order already."""
    try:
        connection.execute(_INSERT_ORDER, _order_values(order))
    except IntegrityError:
        raise ClientOrderIdTaken(order.venue, order.client_order_id) from None


def save_order(connection: Connection, order: Order) -> None:
    values = _order_values(order)
    values["key_order_id"] = values.pop("order_id")
    connection.execute(_UPDATE_ORDER, values)


def save_order_and_executions(
    connection: Connection, order: Order, executions: Sequence[Execution]
) -> None:
    """An order's new state and the executions that led to it, in one transaction."""
    save_order(connection, order)
    append_executions(connection, executions)


async def get_order(session: AsyncSession, order_id: str) -> Order | None:
    row = await session.get(OrderRow, order_id)
    return None if row is None else _order(row)


async def get_order_by_client_id(
    session: AsyncSession, venue: str, client_order_id: str
) -> Order | None:
    row = await session.scalar(
        select(OrderRow).where(OrderRow.venue == venue, OrderRow.client_order_id == client_order_id)
    )
    return None if row is None else _order(row)


async def list_orders(
    session: AsyncSession,
    *,
    venue: str = "",
    symbol: str = "",
    statuses: Iterable[OrderStatus] = (),
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[Order]:
    """Newest first; `before` is the (create_time, order_id) of the last order of a page."""
    query = select(OrderRow)
    if venue:
        query = query.where(OrderRow.venue == venue)
    if symbol:
        query = query.where(OrderRow.symbol == symbol)
    wanted = [status.value for status in statuses]
    if wanted:
        query = query.where(OrderRow.status.in_(wanted))
    if before is not None:
        time, order_id = before
        query = query.where(
            or_(
                OrderRow.create_time < time,
                (OrderRow.create_time == time) & (OrderRow.order_id < order_id),
            )
        )
    query = query.order_by(OrderRow.create_time.desc(), OrderRow.order_id.desc()).limit(limit)
    return [_order(row) for row in await session.scalars(query)]


async def open_orders(session: AsyncSession, venue: str = "", symbol: str = "") -> list[Order]:
    return await list_orders(
        session, venue=venue, symbol=symbol, statuses=OPEN_STATUSES, limit=1_000_000
    )


# -- executions outbox ----------------------------------------------------------------


def _execution(row: ExecutionRow) -> Execution:
    return Execution(
        sequence=row.sequence,
        venue=row.venue,
        trade_id=row.trade_id,
        order_id=row.order_id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        quantity=row.quantity,
        price=row.price,
        fee=row.fee,
        fee_currency=row.fee_currency,
        liquidity=Liquidity(row.liquidity),
        time=row.time,
    )


def append_executions(connection: Connection, executions: Sequence[Execution]) -> None:
    if not executions:
        return
    connection.execute(
        _INSERT_EXECUTIONS,
        [
            {
                "sequence": e.sequence,
                "venue": e.venue,
                "trade_id": e.trade_id,
                "order_id": e.order_id,
                "client_order_id": e.client_order_id,
                "symbol": e.symbol,
                "side": e.side.value,
                "quantity": e.quantity,
                "price": e.price,
                "fee": e.fee,
                "fee_currency": e.fee_currency,
                "liquidity": e.liquidity.value,
                "time": e.time,
            }
            for e in executions
        ],
    )


async def executions_after(session: AsyncSession, sequence: int, limit: int) -> list[Execution]:
    rows = await session.scalars(
        select(ExecutionRow)
        .where(ExecutionRow.sequence > sequence)
        .order_by(ExecutionRow.sequence)
        .limit(limit)
    )
    return [_execution(row) for row in rows]


async def executions_of_venue(session: AsyncSession, venue: str) -> list[Execution]:
    rows = await session.scalars(
        select(ExecutionRow).where(ExecutionRow.venue == venue).order_by(ExecutionRow.sequence)
    )
    return [_execution(row) for row in rows]


async def last_sequence(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(ExecutionRow.sequence))) or 0)


# -- candles --------------------------------------------------------------------------


async def covered(
    session: AsyncSession, *, venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
) -> bool:
    """Whether [start_ms, end_ms) lies inside one span fetched before."""
    found = await session.scalar(
        select(CandleRangeRow.id).where(
            CandleRangeRow.venue == venue,
            CandleRangeRow.symbol == symbol,
            CandleRangeRow.timeframe == timeframe,
            CandleRangeRow.start_ms <= start_ms,
            CandleRangeRow.end_ms >= end_ms,
        )
    )
    return found is not None


async def cached_candles(
    session: AsyncSession, *, venue: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
) -> list[Candle]:
    rows = await session.scalars(
        select(CandleRow)
        .where(
            CandleRow.venue == venue,
            CandleRow.symbol == symbol,
            CandleRow.timeframe == timeframe,
            CandleRow.open_time_ms >= start_ms,
            CandleRow.open_time_ms < end_ms,
        )
        .order_by(CandleRow.open_time_ms)
    )
    return [Candle(r.open_time_ms, r.open, r.high, r.low, r.close, r.volume) for r in rows]


def store_candles(
    connection: Connection,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    candles: Sequence[Candle],
    span: tuple[int, int],
) -> None:
    """Replaces the candles of `span` [start, end) with `candles` (what the venue answered
    for it) and records the span as covered. Synchronous, for storage.writer.Writer: every
    write of the exchange goes through it."""
    start, end = span
    key = {"venue": venue, "symbol": symbol, "timeframe": timeframe}
    connection.execute(
        delete(CandleRow).where(
            CandleRow.venue == venue,
            CandleRow.symbol == symbol,
            CandleRow.timeframe == timeframe,
            CandleRow.open_time_ms >= start,
            CandleRow.open_time_ms < end,
        )
    )
    if candles:
        connection.execute(
            insert(CandleRow),
            [
                {
                    **key,
                    "open_time_ms": candle.open_time_ms,
                    "open": candle.open,
                    "high": candle.high,
                    "low": candle.low,
                    "close": candle.close,
                    "volume": candle.volume,
                }
                for candle in candles
            ],
        )
    connection.execute(insert(CandleRangeRow), [{**key, "start_ms": start, "end_ms": end}])
