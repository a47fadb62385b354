"""The risk repository on a real, migrated database: limits (global and per account)
and the trading-state audit trail read back as the domain objects written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from common import migrate
from common.database import create_engine, session_factory
from services.risk.limits import Limits, SymbolLimits
from services.risk.storage.repository import RiskRepository
from services.risk.trading_state import TradingState, TradingStateChange

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[RiskRepository]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}"
    # Alembic's environment runs its own event loop: not on this one.
    await asyncio.to_thread(migrate.upgrade, "risk", url)
    engine = create_engine(url)
    yield RiskRepository(session_factory(engine))
    await engine.dispose()


async def test_limits_read_back_global_and_per_account(repository: RiskRepository) -> None:
    assert await repository.load_limits() is None
    assert await repository.load_account_limits() == {}
    tiny = Limits(
        max_var=Decimal("0.0000001"),
        max_open_orders=3,
        loss_cooldown=timedelta(minutes=30),
        loss_cooldown_trades=2,
        symbol_limits={"BTC/USDT": SymbolLimits(max_position_notional=Decimal("5000"))},
    )
    await repository.save_limits(Limits(max_leverage=Decimal(2)), "alice", T0)
    await repository.save_limits(tiny, "alice", T0)  # the second save replaces the first
    await repository.save_limits(Limits(max_open_orders=1), "bob", T0, account_id="okx-live")
    await repository.save_limits(Limits(max_open_orders=2), "bob", T0, account_id="okx-live")
    assert await repository.load_limits() == tiny
    assert await repository.load_account_limits() == {"okx-live": Limits(max_open_orders=2)}


async def test_the_trading_state_trail_keeps_every_change(repository: RiskRepository) -> None:
    changes = [
        TradingStateChange(TradingState.HALTED, "incident", "alice", T0),
        TradingStateChange(TradingState.REDUCING, "okx only", "bob", T0, "okx-live"),
        TradingStateChange(TradingState.ACTIVE, "resolved", "alice", T0 + timedelta(hours=1)),
    ]
    assert await repository.latest_trading_state() is None
    for change in changes:
        await repository.append_trading_state(change)
    assert await repository.latest_trading_state() == changes[2]
    assert await repository.latest_trading_state("okx-live") == changes[1]
    assert await repository.account_trading_states() == {"okx-live": changes[1]}
    assert await repository.trading_state_history(limit=2) == changes[:0:-1]
