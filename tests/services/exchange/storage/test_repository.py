"""The exchange's repository against a real migrated SQLite file: domain objects in,
the same domain objects out (Decimals exact, times UTC), pages newest first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import migrate
from common.database import create_engine, session_factory
from services.exchange.markets import Candle
from services.exchange.orders import (
    Execution,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from services.exchange.storage import repository

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    path = tmp_path / "exchange.db"
    await asyncio.to_thread(migrate.upgrade, "exchange", f"sqlite+aiosqlite:///{path}")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    yield f"sqlite:///{path}", session_factory(engine)
    await engine.dispose()


def _write(url: str, write: object) -> None:
    engine = create_sync_engine(url)
    with engine.begin() as connection:
        write(connection)  # type: ignore[operator]
    engine.dispose()


def _order(number: int, **changes: object) -> Order:
    order = Order(
        order_id=f"o{number:03d}",
        client_order_id=f"c{number}",
        venue="paper",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=Decimal("0.00125000"),
        price=Decimal("64250.5"),
        post_only=False,
        reduce_only=False,
        status=OrderStatus.OPEN,
        create_time=T0 + timedelta(seconds=number // 2),  # two orders share each second
        update_time=T0,
        reject_reasons=["A", "B"],
    )
    return replace(order, **changes)  # type: ignore[arg-type]


async def test_an_order_comes_back_as_it_was_stored(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = database
    stored = _order(1, filled_quantity=Decimal("0.0005"), filled_notional=Decimal("32.12525"))
    _write(url, lambda connection: repository.insert_order(connection, stored))
    changed = replace(stored, status=OrderStatus.CANCELED, fee=Decimal("0.000001"))
    _write(url, lambda connection: repository.save_order(connection, changed))

    async with sessions() as session:
        by_id = await repository.get_order(session, "o001")
        by_client_id = await repository.get_order_by_client_id(session, "paper", "c1")
        missing = await repository.get_order(session, "nope")

    assert by_id == changed
    assert by_client_id == changed
    assert missing is None
    assert by_id is not None
    assert str(by_id.quantity) == "0.00125000"  # exact, its scale kept
    assert by_id.create_time.tzinfo is not None


async def test_orders_page_newest_first_across_equal_times(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = database
    orders = [_order(n) for n in range(7)]
    orders[3] = replace(orders[3], status=OrderStatus.FILLED)

    def write(connection: object) -> None:
        for order in orders:
            repository.insert_order(connection, order)  # type: ignore[arg-type]

    _write(url, write)
    pages: list[list[str]] = []
    before = None
    async with sessions() as session:
        while True:
            page = await repository.list_orders(session, limit=3, before=before)
            pages.append([o.order_id for o in page])
            if len(page) < 3:
                break
            before = (page[-1].create_time, page[-1].order_id)
        open_ones = await repository.open_orders(session, venue="paper")

    assert pages == [["o006", "o005", "o004"], ["o003", "o002", "o001"], ["o000"]]
    assert [o.order_id for o in open_ones] == ["o006", "o005", "o004", "o002", "o001", "o000"]


async def test_executions_are_read_after_a_sequence(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = database
    _write(url, lambda connection: repository.insert_order(connection, _order(1)))
    executions = [
        Execution(
            sequence=sequence,
            venue="paper",
            trade_id=f"t{sequence}",
            order_id="o001",
            client_order_id="c1",
            symbol="BTC/USDT",
            side=Side.BUY,
            quantity=Decimal("0.0005"),
            price=Decimal("64250.5"),
            fee=Decimal("0.0000005"),
            fee_currency="BTC",
            liquidity=Liquidity.MAKER,
            time=T0,
        )
        for sequence in (1, 2, 3)
    ]
    _write(url, lambda connection: repository.append_executions(connection, executions))

    async with sessions() as session:
        after_one = await repository.executions_after(session, 1, limit=10)
        last = await repository.last_sequence(session)

    assert after_one == executions[1:]
    assert last == 3


async def test_candles_of_a_covered_span_are_served_from_the_cache(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = database
    key = {"venue": "paper", "symbol": "BTC/USDT", "timeframe": "1m"}
    candles = [
        Candle(t, Decimal("1.5"), Decimal("2"), Decimal("1"), Decimal("1.75"), Decimal("10"))
        for t in (0, 60_000, 120_000)
    ]
    _write(
        url,
        lambda connection: repository.store_candles(
            connection, **key, candles=candles, span=(0, 180_000)
        ),
    )

    async with sessions() as session:
        inside = await repository.covered(session, **key, start_ms=60_000, end_ms=180_000)
        beyond = await repository.covered(session, **key, start_ms=60_000, end_ms=240_000)
        cached = await repository.cached_candles(session, **key, start_ms=60_000, end_ms=180_000)

    assert inside
    assert not beyond
    assert cached == candles[1:]
