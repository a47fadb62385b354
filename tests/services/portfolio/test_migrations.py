"""The portfolio revisions on a real SQLite file holding data: up, down, up keeps it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from common import migrate

ACCOUNT = "INSERT INTO accounts VALUES ('paper', 'paper', 'paper', 'USDT', 1)"
FILL = (
    "INSERT INTO fills (account_id, venue, trade_id, order_id, client_order_id, symbol, side,"
    " quantity, price, fee, fee_currency, liquidity, time, sequence) VALUES"
    " ('paper', 'paper', 't-1', 'o-1', '', 'BTC/USDT', 'buy', '0.00125', '60000.01',"
    " '0.075000013', 'USDT', 'taker', 1700000000000000, 7)"
)
POSITION = (
    "INSERT INTO positions (account_id, symbol, quantity, average_price, realized_pnl, fees,"
    " update_time) VALUES ('paper', 'BTC/USDT', '0.00125', '60000.01', '0', '0.075000013', 1)"
)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql))


def _version(path: Path) -> str:
    return str(_rows(path, "SELECT version_num FROM alembic_version")[0][0])


def test_up_down_up_keeps_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "portfolio.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade("portfolio", url, "portfolio_0002_ledger")
    with sqlite3.connect(path) as connection:
        for statement in (ACCOUNT, FILL, POSITION):
            connection.execute(statement)
        connection.execute("INSERT INTO ingestion_cursors VALUES ('exchange', 7)")
    fills_before = _rows(path, "SELECT * FROM fills")

    # 0003 rebuilds `positions` (SQLite batch mode)
    migrate.upgrade("portfolio", url, "portfolio_0003_performance")
    assert _version(path) == "portfolio_0003_performance"
    assert _rows(path, "SELECT quantity, average_price, open_pnl, open_time FROM positions") == [
        ("0.00125", "60000.01", "0", None)
    ]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO equity_snapshots (account_id, time, equity, cash) "
            "VALUES ('paper', 2, '10000.5', '9925')"
        )

    migrate.downgrade("portfolio", url, "portfolio_0002_ledger")
    assert _rows(path, "SELECT * FROM fills") == fills_before
    assert _rows(path, "SELECT quantity, fees FROM positions") == [("0.00125", "0.075000013")]
    assert _rows(path, "SELECT * FROM ingestion_cursors") == [("exchange", 7)]

    migrate.upgrade("portfolio", url, "portfolio_0003_performance")
    assert _version(path) == "portfolio_0003_performance"
    assert _rows(path, "SELECT * FROM fills") == fills_before
    assert _rows(path, "SELECT symbol, quantity, open_pnl FROM positions") == [
        ("BTC/USDT", "0.00125", "0")
    ]
    # The unique key of the ledger survived the table rebuilds.
    with sqlite3.connect(path) as connection, pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        connection.execute(FILL)


def test_account_opening_up_down_up_keeps_the_accounts(tmp_path: Path) -> None:
    """An account from before 0004 keeps what it has: opened after no execution, with
    no holdings recorded (its opening cash is in its balances already)."""
    path = tmp_path / "portfolio.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade("portfolio", url, "portfolio_0003_performance")
    with sqlite3.connect(path) as connection:
        for statement in (ACCOUNT, FILL, POSITION):
            connection.execute(statement)
    fills_before = _rows(path, "SELECT * FROM fills")

    migrate.upgrade("portfolio", url, "portfolio_0004_account_opening")
    assert _version(path) == "portfolio_0004_account_opening"
    assert _rows(
        path, "SELECT account_id, kind, opening_sequence, opening_holdings FROM accounts"
    ) == [("paper", "paper", 0, "")]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO accounts VALUES ('binance', 'binance', 'live', 'USDT', 2, 41, 'USDT=5')"
        )

        connection.execute("INSERT INTO opening_positions VALUES ('binance', 'BTC/USDT', '1', '5')")

    migrate.downgrade("portfolio", url, "portfolio_0003_performance")
    assert "opening_positions" not in str(_rows(path, "SELECT name FROM sqlite_master"))
    assert _rows(path, "SELECT account_id, kind FROM accounts ORDER BY account_id") == [
        ("binance", "live"),
        ("paper", "paper"),
    ]
    assert _rows(path, "SELECT * FROM fills") == fills_before
    migrate.upgrade("portfolio", url, "portfolio_0004_account_opening")
    assert _rows(path, "SELECT account_id, opening_sequence FROM accounts ORDER BY account_id") == [
        ("binance", 0),
        ("paper", 0),
    ]
    assert _rows(path, "SELECT * FROM fills") == fills_before


def test_transfers_up_down_up_keeps_the_snapshots(tmp_path: Path) -> None:
    """Snapshots from before 0005 had no transfers (0); down drops the transfers only."""
    path = tmp_path / "portfolio.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade("portfolio", url, "portfolio_0003_performance")
    snapshot = (
        "INSERT INTO equity_snapshots (account_id, time, equity, cash) "
        "VALUES ('paper', 2, '10000.5', '9925')"
    )
    with sqlite3.connect(path) as connection:
        for statement in (ACCOUNT, FILL, POSITION, snapshot):
            connection.execute(statement)
    migrate.upgrade("portfolio", url, "portfolio_0004_account_opening")
    fills_before = _rows(path, "SELECT * FROM fills")

    migrate.upgrade("portfolio", url)
    assert _version(path) == "portfolio_0005_transfers"
    assert _rows(path, "SELECT equity, net_transfers FROM equity_snapshots") == [("10000.5", "0")]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO transfers (account_id, asset, amount, value, time, as_of_sequence) "
            "VALUES ('paper', 'USDT', '-250', '-250', 3, 7)"
        )

    migrate.downgrade("portfolio", url, "portfolio_0004_account_opening")
    assert "transfers" not in str(_rows(path, "SELECT name FROM sqlite_master"))
    assert _rows(path, "SELECT equity, cash FROM equity_snapshots") == [("10000.5", "9925")]
    assert _rows(path, "SELECT * FROM fills") == fills_before

    migrate.upgrade("portfolio", url)
    assert _version(path) == "portfolio_0005_transfers"
    assert _rows(path, "SELECT count(*) FROM transfers") == [(0,)]
    assert _rows(path, "SELECT * FROM fills") == fills_before
