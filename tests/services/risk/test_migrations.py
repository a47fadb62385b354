"""The risk revisions on a real SQLite file holding data: the global kill switch and
limits survive up, down and up again; an account's own rows go on the way down (they
would read as global ones before 0003)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common import migrate

LIMITS = "INSERT INTO risk_limits VALUES (1, '{\"max_open_orders\": 3}', 'bob', '2026-11-22')"
GLOBAL_HALT = (
    "INSERT INTO risk_trading_state_changes (state, reason, updated_by, update_time)"
    " VALUES ('HALTED', 'incident', 'alice', '2026-11-22 12:00:00')"
)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql))


def test_up_down_up_keeps_the_global_state_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade("risk", url, "risk_0002_limits_trading_state")
    with sqlite3.connect(path) as connection:
        connection.execute(LIMITS)
        connection.execute(GLOBAL_HALT)

    migrate.upgrade("risk", url, "risk_0003_account_risk")
    # Every change before was the global switch's.
    assert _rows(path, "SELECT account_id, state FROM risk_trading_state_changes") == [
        ("", "HALTED")
    ]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO risk_trading_state_changes (account_id, state, reason, updated_by,"
            " update_time) VALUES ('okx', 'REDUCING', 'exit', 'risk', '2026-11-22 13:00:00')"
        )
        connection.execute(
            "INSERT INTO risk_account_limits VALUES ('okx', '{}', 'bob', '2026-11-22')"
        )

    migrate.downgrade("risk", url, "risk_0002_limits_trading_state")
    assert _rows(path, "SELECT state, reason FROM risk_trading_state_changes") == [
        ("HALTED", "incident")
    ]
    assert _rows(path, "SELECT id, updated_by FROM risk_limits") == [(1, "bob")]
    assert not _rows(path, "SELECT name FROM sqlite_master WHERE name = 'risk_account_limits'")

    migrate.upgrade("risk", url, "risk_0003_account_risk")
    assert _rows(path, "SELECT account_id, state FROM risk_trading_state_changes") == [
        ("", "HALTED")
    ]
