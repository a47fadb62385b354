"""The ledger on a real, migrated database (a SQLite file, and PostgreSQL): exactly-once
appends, one transaction per batch, and a restart that reads back the same state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import migrate
from common.database import create_engine, session_factory, upgrade_in_child
from services.portfolio.accounting import Trade, TradeSide
from services.portfolio.accounts import AccountKind, Opening, OpeningPosition
from services.portfolio.ledger import Ledger
from services.portfolio.settings import LedgerSettings
from services.portfolio.storage.models import FillRow, RoundTripRow
from services.portfolio.storage.repository import PortfolioRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def trade(n: int, side: str, quantity: str, price: str, **extra: Any) -> Trade:
    fields: dict[str, Any] = {
        "venue": "paper",
        "trade_id": f"t-{n}",
        "symbol": "BTC/USDT",
        "side": TradeSide(side),
        "quantity": Decimal(quantity),
        "price": Decimal(price),
        "fee": Decimal("0.1"),
        "fee_currency": "USDT",
        "time": T0 + timedelta(minutes=n),
        "sequence": n,
    }
    fields.update(extra)
    return Trade(**fields)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        # Alembic's environment runs its own event loop: not on this one.
        await asyncio.to_thread(migrate.upgrade, "portfolio", url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'portfolio.db'}"
        await upgrade_in_child("portfolio", url)
    engine = create_engine(url)
    yield session_factory(engine)
    await engine.dispose()


async def open_paper(ledger: Ledger, cash: str = "10000") -> None:
    assert await ledger.open_account(Opening("paper", AccountKind.PAPER, {"USDT": Decimal(cash)}))


def _state(ledger: Ledger) -> object:
    book = ledger.books["paper"]
    positions = {
        s: (p.quantity, p.average_price, p.realized_pnl, p.fees, p.open_pnl)
        for s, p in book.positions.items()
    }
    return positions, dict(book.balances), ledger.cursor


async def test_apply_persists_and_reloads(sessions: async_sessionmaker[AsyncSession]) -> None:
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await ledger.load()
    await open_paper(ledger, "1000")
    result = await ledger.apply(
        [trade(1, "buy", "2", "100"), trade(2, "sell", "0.5", "120")], cursor=2
    )
    assert (result.applied, result.duplicates) == (2, 0)
    book = ledger.books["paper"]
    assert book.account.kind is AccountKind.PAPER
    # 1000 - 200 - 0.1 + 60 - 0.1
    assert book.balances == {"USDT": Decimal("859.8"), "BTC": Decimal("1.5")}
    assert book.positions["BTC/USDT"].realized_pnl == 10

    reloaded = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await reloaded.load()
    assert _state(reloaded) == _state(ledger)
    assert reloaded.books["paper"].last_prices == {"BTC/USDT": Decimal("120")}


async def test_applying_twice_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    trades = [trade(n, "buy" if n % 3 else "sell", "0.3", str(100 + n)) for n in range(1, 40)]
    await ledger.apply(trades, cursor=39)
    before = _state(ledger)
    again = await ledger.apply(trades, cursor=39)
    # Without the look-up first, the unique key catches them and the batch is redone.
    unlooked = await ledger.apply(trades[:5], cursor=39, duplicates_expected=False)
    assert (unlooked.applied, unlooked.duplicates) == (0, 5)
    assert _state(ledger) == before
    # Twice in one batch is once too.
    doubled = await ledger.apply([trade(99, "buy", "1", "1"), trade(99, "buy", "1", "1")])
    assert (again.applied, again.duplicates) == (0, 39)
    assert (doubled.applied, doubled.duplicates) == (1, 1)
    assert _state(ledger)[0] != before[0]  # type: ignore[index]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FillRow)) == 40


async def test_a_failed_batch_changes_neither_memory_nor_database(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await ledger.apply([trade(1, "buy", "1", "100")], cursor=1)
    before = _state(ledger)
    real_write = Ledger._write

    async def write_then_crash(self: Ledger, *args: Any) -> None:
        await real_write(self, *args)  # the fills and positions are written ...
        raise OSError("disk gone")  # ... and the commit never happens

    monkeypatch.setattr(Ledger, "_write", write_then_crash)
    with pytest.raises(OSError, match="disk gone"):
        await ledger.apply([trade(2, "sell", "1", "110")], cursor=2)
    assert _state(ledger) == before
    monkeypatch.undo()
    reloaded = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await reloaded.load()
    assert _state(reloaded) == before
    # And the batch goes through when retried.
    assert (await ledger.apply([trade(2, "sell", "1", "110")], cursor=2)).applied == 1
    async with sessions() as session:
        trips = (await session.scalars(select(RoundTripRow))).all()
    assert [(t.pnl, t.close_time) for t in trips] == [(Decimal("9.8"), T0 + timedelta(minutes=2))]


async def test_accounts_are_kept_apart_by_venue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await open_paper(ledger)
    await ledger.apply(
        [trade(1, "buy", "1", "100"), trade(1, "buy", "2", "100", venue="binance-live")]
    )
    # The same trade id on two venues is two fills.
    assert ledger.books["paper"].positions["BTC/USDT"].quantity == 1
    assert ledger.books["binance-live"].positions["BTC/USDT"].quantity == 2
    assert ledger.books["binance-live"].account.kind is AccountKind.LIVE
    # An account no venue opened (imported fills) starts from nothing.
    assert ledger.books["binance-live"].balances["USDT"] == Decimal("-200.1")
    assert ledger.books["paper"].balances["USDT"] == Decimal("9899.9")


async def test_an_account_opens_once_from_the_venue_holdings(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Holdings become balances, a base asset a position at the mark; a second opening
    (a reconnect, a restart) changes nothing."""
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    opening = Opening(
        "paper",
        AccountKind.PAPER,
        {"USDT": Decimal(100000), "BTC": Decimal(1)},
        positions=[OpeningPosition("BTC/USDT", Decimal(1), Decimal("61662.005"))],
    )
    live = Opening("binance-live", AccountKind.LIVE, {}, sequence=41)
    assert await ledger.open_account(opening)
    assert await ledger.open_account(live)
    assert not await ledger.open_account(Opening("paper", AccountKind.PAPER, {"USDT": Decimal(5)}))
    reloaded = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await reloaded.load()
    paper = reloaded.books["paper"]
    assert paper.account.kind is AccountKind.PAPER
    assert paper.account.opening_holdings == "BTC=1,USDT=100000"
    assert paper.balances == {"USDT": Decimal(100000), "BTC": Decimal(1)}
    btc = paper.positions["BTC/USDT"]
    assert (btc.quantity, btc.average_price, btc.realized_pnl, btc.fees) == (
        Decimal(1),
        Decimal("61662.005"),
        Decimal(0),
        Decimal(0),
    )
    assert paper.openings == {"BTC/USDT": (Decimal(1), Decimal("61662.005"))}
    assert reloaded.books["binance-live"].account.kind is AccountKind.LIVE
    assert reloaded.books["binance-live"].account.opening_sequence == 41
    assert reloaded.books["binance-live"].balances == {}


async def test_a_commit_moves_the_version_of_the_accounts_it_changes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ledger = Ledger(PortfolioRepository(sessions), LedgerSettings())
    await open_paper(ledger)
    await ledger.open_account(Opening("binance-live", AccountKind.LIVE, {}))
    paper, live = ledger.books["paper"].version, ledger.books["binance-live"].version

    await ledger.apply([trade(1, "buy", "1", "100")])
    assert ledger.books["paper"].version > paper
    assert ledger.books["binance-live"].version == live

    paper = ledger.books["paper"].version
    await ledger.apply([trade(1, "buy", "1", "100")])  # a duplicate: nothing changes
    assert ledger.books["paper"].version == paper
