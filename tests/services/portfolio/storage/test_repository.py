"""The portfolio repository on a real, migrated database: what a transaction writes
reads back as the same domain objects, newest-first listings page by (time, id), and a
transaction that fails leaves nothing behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import migrate
from common.database import create_engine, session_factory, upgrade_in_child
from services.portfolio.accounting import AverageCost, Position, RoundTrip, Trade, TradeSide
from services.portfolio.accounts import Account, AccountKind, EquityPoint, Transfer
from services.portfolio.storage.repository import DuplicateFill, PortfolioRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PAPER = Account("paper", "paper", AccountKind.PAPER, "USDT", T0, 0, "USDT=1000")
SOURCE = "exchange.executions"


def trade(n: int, side: str = "buy", price: str = "100", *, symbol: str = "BTC/USDT") -> Trade:
    return Trade(
        venue="paper",
        trade_id=f"t-{n}",
        symbol=symbol,
        side=TradeSide(side),
        quantity=Decimal("0.00000001"),  # the smallest step: stored exactly
        price=Decimal(price),
        fee=Decimal("0.1"),
        fee_currency="USDT",
        time=T0 + timedelta(microseconds=n),  # microseconds apart: kept exactly
        order_id=f"o-{n}",
        liquidity="maker",
        sequence=n,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        await asyncio.to_thread(migrate.upgrade, "portfolio", url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'portfolio.db'}"
        await upgrade_in_child("portfolio", url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


async def with_paper(sessions: async_sessionmaker[AsyncSession]) -> PortfolioRepository:
    repository = PortfolioRepository(sessions)
    async with repository.transaction() as transaction:
        await transaction.add_accounts([PAPER])
    return repository


async def test_a_ledger_written_reads_back_the_same(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = await with_paper(sessions)
    btc = Position(
        "BTC/USDT", AverageCost(Decimal("1.5"), Decimal("100")), open_time=T0, update_time=T0
    )
    async with repository.transaction() as transaction:
        await transaction.add_fills([("paper", trade(1)), ("paper", trade(2, price="120"))])
        await transaction.save_positions({("paper", "BTC/USDT"): btc})
        await transaction.save_balances({"paper": {"USDT": Decimal("850"), "BTC": Decimal(1)}})
        await transaction.add_openings("paper", {"ETH/USDT": (Decimal(2), Decimal("50"))})
        await transaction.add_transfers(
            [
                Transfer("paper", "USDT", Decimal(100), Decimal(100), T0, as_of_sequence=2),
                Transfer("paper", "BNB", Decimal(1), None, T0, as_of_sequence=2),
            ]
        )
        await transaction.save_cursor(SOURCE, 2, stored=False)
    # The second save of a row updates it (the repository knows it is stored).
    async with repository.transaction() as transaction:
        await transaction.save_balances({"paper": {"USDT": Decimal("700.5")}})
        await transaction.save_cursor(SOURCE, 3, stored=True)

    stored = await PortfolioRepository(sessions).load_ledger()
    paper = stored.accounts["paper"]
    assert paper.account == PAPER
    assert paper.balances == {"USDT": Decimal("700.5"), "BTC": Decimal(1)}
    assert paper.positions["BTC/USDT"].quantity == Decimal("1.5")
    assert paper.positions["BTC/USDT"].open_time == T0
    assert paper.openings == {"ETH/USDT": (Decimal(2), Decimal(50))}
    assert paper.last_prices == {"BTC/USDT": Decimal(120)}  # the last fill's
    assert paper.net_transfers == 100  # the valued ones only
    assert stored.cursors == {SOURCE: 3}


async def test_fills_list_newest_first_and_page_by_time_and_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = await with_paper(sessions)
    trades = [trade(n, symbol="ETH/USDT" if n % 2 else "BTC/USDT") for n in range(1, 6)]
    async with repository.transaction() as transaction:
        await transaction.add_fills([("paper", t) for t in trades])
    first = await repository.list_fills("paper", limit=2)
    assert [f.trade for f in first] == [trades[4], trades[3]]  # the same Trade back
    last = first[-1]
    rest = await repository.list_fills("paper", before=(last.trade.time, last.fill_id))
    assert [f.trade.trade_id for f in rest] == ["t-3", "t-2", "t-1"]
    btc = await repository.list_fills("paper", symbol="BTC/USDT")
    assert [f.trade.trade_id for f in btc] == ["t-4", "t-2"]
    window = await repository.list_fills("paper", start=trades[1].time, end=trades[3].time)
    assert [f.trade.trade_id for f in window] == ["t-3", "t-2"]
    in_order = await repository.trades_in_ledger_order("paper", "ETH/USDT")
    assert [t.trade_id for t in in_order] == ["t-1", "t-3", "t-5"]
    assert await repository.list_fills("nobody") == []


async def test_a_fill_stored_twice_is_refused_and_nothing_of_its_batch_stays(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = await with_paper(sessions)
    async with repository.transaction() as transaction:
        await transaction.add_fills([("paper", trade(1))])
    async with repository.transaction() as transaction:
        assert await transaction.known_trades([trade(1), trade(2)]) == {("paper", "t-1")}
    btc = Position("BTC/USDT", AverageCost(Decimal(1), Decimal(100)), update_time=T0)

    async def batch_with_a_stored_fill() -> None:
        async with repository.transaction() as transaction:
            await transaction.save_positions({("paper", "BTC/USDT"): btc})
            await transaction.add_fills([("paper", trade(2)), ("paper", trade(1))])

    with pytest.raises(DuplicateFill):
        await batch_with_a_stored_fill()
    assert [f.trade.trade_id for f in await repository.list_fills("paper")] == ["t-1"]
    # The position of the failed batch was never stored: saving it now inserts it.
    async with repository.transaction() as transaction:
        await transaction.save_positions({("paper", "BTC/USDT"): btc})
    assert (await repository.load_ledger()).accounts["paper"].positions["BTC/USDT"].quantity == 1


async def test_transfers_list_newest_first_with_their_ids(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = await with_paper(sessions)
    transfers = [
        Transfer("paper", "USDT", Decimal(n), Decimal(n), T0 + timedelta(hours=n), n)
        for n in (1, 2, 3)
    ]
    async with repository.transaction() as transaction:
        await transaction.add_transfers(transfers)
    listed = await repository.list_transfers("paper", limit=2)
    assert [(t.amount, t.as_of_sequence) for t in listed] == [(Decimal(3), 3), (Decimal(2), 2)]
    assert all(t.transfer_id > 0 for t in listed)
    last = listed[-1]
    rest = await repository.list_transfers("paper", before=(last.time, last.transfer_id))
    assert [t.amount for t in rest] == [1]


async def test_round_trips_and_equity_points_read_back_within_a_window(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    repository = await with_paper(sessions)
    trips = [
        RoundTrip("BTC/USDT", T0, T0 + timedelta(days=day), Decimal(pnl))
        for day, pnl in ((1, "5"), (2, "-2.5"), (3, "1"))
    ]
    async with repository.transaction() as transaction:
        await transaction.add_round_trips([("paper", trip) for trip in trips])
    window = await repository.round_trip_pnls(
        "paper", T0 + timedelta(days=2), T0 + timedelta(days=3)
    )
    assert window == [Decimal("-2.5")]
    assert await repository.round_trip_pnls("paper") == [5, Decimal("-2.5"), 1]

    points = [
        EquityPoint(T0 + timedelta(minutes=m), Decimal(1000 + m), Decimal(900), Decimal(m))
        for m in (2, 0, 1)
    ]
    await repository.add_equity_points(("paper", point) for point in points)
    await repository.add_equity_points([])  # nothing to write: nothing written
    read = await repository.equity_points("paper", start=T0 + timedelta(minutes=1))
    assert read == sorted(points[:1] + points[2:], key=lambda point: point.time)
