"""The strategy revisions on a real SQLite file holding data: decisions stored with the
proto's order-status numbers (before 0003) load as the domain's statuses after it, and
go back to the same numbers on the way down."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from common import migrate
from common.database import create_engine, session_factory
from services.strategy.runners import OrderStatus
from services.strategy.storage.repository import StrategyRepository

RUNNER = (
    "INSERT INTO strategy_runners VALUES ('abc', 'sma_cross', '{}', 'paper', 'BTC/USDT', '1m',"
    " 'paper', 'running', 0, '1000', 'fraction_of_equity', '1', '', '', 0, '0', '1000', '',"
    " 1, NULL, '', '', 10, '2026-11-30 00:00:00')"
)
# (client_order_id, order_status as stored before 0003): filled, rejected, unanswered.
DECISIONS = [("r-abc-1", 4), ("r-abc-2", 7), ("r-abc-3", 0)]


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql))


async def _statuses(url: str) -> dict[str, OrderStatus | None]:
    engine = create_engine(url)
    try:
        decisions = await StrategyRepository(session_factory(engine)).decisions("abc", 0, 10)
    finally:
        await engine.dispose()
    return {decision.client_order_id: decision.order_status for decision in decisions}


async def test_stored_status_numbers_load_as_statuses_and_go_back(tmp_path: Path) -> None:
    path = tmp_path / "strategy.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, "strategy", url, "strategy_0002_runners")
    with sqlite3.connect(path) as connection:
        connection.execute(RUNNER)
        for client_order_id, status in DECISIONS:
            connection.execute(
                "INSERT INTO strategy_decisions (runner_id, bar_time, signal, target,"
                " position_before, order_quantity, client_order_id, order_id, order_status,"
                " expected_price, filled_quantity, filled_notional, reason, message,"
                " decide_time) VALUES ('abc', '2026-11-30 00:00:00', 1.0, 1, '0', '1', ?,"
                " 'o', ?, '1', '0', '0', 'signal', '', '2026-11-30 00:00:01')",
                (client_order_id, status),
            )

    await asyncio.to_thread(migrate.upgrade, "strategy", url)
    assert await _statuses(url) == {
        "r-abc-1": OrderStatus.FILLED,
        "r-abc-2": OrderStatus.REJECTED,
        "r-abc-3": None,
    }

    await asyncio.to_thread(migrate.downgrade, "strategy", url, "strategy_0002_runners")
    assert _rows(path, "SELECT client_order_id, order_status FROM strategy_decisions") == (
        DECISIONS
    )
