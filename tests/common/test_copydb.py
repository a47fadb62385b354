"""`python -m common.copydb`: a service's SQLite database moved to a real PostgreSQL server,
read back by the service's own code, checked row for row; a non-empty destination refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from common import migrate
from common.copydb import _metadata
from common.database import create_engine, session_factory
from services.portfolio.accounting import Trade, TradeSide
from services.portfolio.accounts import AccountKind, Opening
from services.portfolio.ledger import Ledger
from services.portfolio.settings import LedgerSettings
from services.portfolio.storage.repository import PortfolioRepository
from services.risk.limits import Limits
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import TradingState, TradingStateChange

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _trade(n: int, side: str, quantity: str, price: str) -> Trade:
    return Trade(
        venue="paper",
        trade_id=f"t-{n}",
        symbol="BTC/USDT",
        side=TradeSide(side),
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal("0.1"),
        fee_currency="USDT",
        time=T0 + timedelta(minutes=n),
        sequence=n,
    )


def _copydb(source: str, destination: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "common.copydb", source, destination],
        capture_output=True,
        text=True,
        check=False,
    )


def _ledger_state(ledger: Ledger) -> object:
    book = ledger.books["paper"]
    positions = {
        symbol: (p.quantity, p.average_price, p.realized_pnl, p.fees, p.open_pnl)
        for symbol, p in book.positions.items()
    }
    return book.account, book.balances, positions, book.last_prices


async def _row_counts(service: str, url: str) -> dict[str, int]:
    engine = create_engine(url)
    async with engine.connect() as connection:
        counts = {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar()
            for table in _metadata(service).sorted_tables
        }
    await engine.dispose()
    return {name: int(count or 0) for name, count in counts.items()}


async def test_the_portfolio_moves_to_postgresql_and_keeps_working_there(
    tmp_path: Path, postgres_url: str
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'portfolio.db'}"
    await asyncio.to_thread(migrate.upgrade, "portfolio", source)
    engine = create_engine(source)
    ledger = Ledger(PortfolioRepository(session_factory(engine)), LedgerSettings())
    await ledger.load()
    assert await ledger.open_account(
        Opening("paper", AccountKind.PAPER, {"USDT": Decimal("10000")})
    )
    trades = [_trade(n, "buy" if n % 3 else "sell", "0.3", str(100 + n)) for n in range(1, 40)]
    await ledger.apply(trades, cursor=39)
    await engine.dispose()

    copied = await asyncio.to_thread(_copydb, source, postgres_url)

    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.splitlines()[-1].endswith("verified row for row")
    counts = await _row_counts("portfolio", postgres_url)
    assert counts == await _row_counts("portfolio", source)
    assert counts["fills"] == 39
    # The service's own code reads the same ledger back from PostgreSQL ...
    engine = create_engine(postgres_url)
    moved = Ledger(PortfolioRepository(session_factory(engine)), LedgerSettings())
    await moved.load()
    assert _ledger_state(moved) == _ledger_state(ledger)
    # ... and appends after the copied ids (the id sequences were moved past them).
    applied = await moved.apply([_trade(40, "sell", "0.1", "150")], cursor=40)
    assert applied.applied == 1
    await engine.dispose()
    assert (await _row_counts("portfolio", postgres_url))["fills"] == 40


async def test_a_non_empty_destination_is_refused_and_left_as_it_was(
    tmp_path: Path, postgres_url: str
) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}"
    await asyncio.to_thread(migrate.upgrade, "risk", source)
    engine = create_engine(source)
    repository = RiskRepository(session_factory(engine))
    await repository.save_limits(Limits(max_open_orders=3), "bob", T0)
    await repository.append_trading_state(
        TradingStateChange(TradingState.HALTED, "drawdown", "risk", T0 + timedelta(hours=1))
    )
    await engine.dispose()
    first = await asyncio.to_thread(_copydb, source, postgres_url)
    assert first.returncode == 0, first.stderr
    engine = create_engine(postgres_url)
    moved = RiskRepository(session_factory(engine))
    assert await moved.load_limits() == Limits(max_open_orders=3)
    latest = await moved.latest_trading_state()
    await engine.dispose()
    assert latest is not None
    assert (latest.state, latest.update_time) == (TradingState.HALTED, T0 + timedelta(hours=1))
    before = await _row_counts("risk", postgres_url)

    again = await asyncio.to_thread(_copydb, source, postgres_url)

    assert again.returncode == 1
    assert again.stdout == ""
    [line] = again.stderr.splitlines()
    assert line.startswith("copydb: ")
    assert "is not empty" in line
    assert await _row_counts("risk", postgres_url) == before
