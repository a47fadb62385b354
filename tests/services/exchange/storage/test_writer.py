"""The writer commits each transaction as one call, and moves the write-ahead log into the
database file (the checkpoint) off the event loop, so nothing is left only in the log."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from common import migrate
from common import writer as writer_module
from common.database import create_engine
from services.exchange.storage.writer import Writer

CANDLE = (
    "INSERT INTO candle_ranges (venue, symbol, timeframe, start_ms, end_ms) "
    "VALUES ('paper', 'BTC/USDT', '1m', :start, :end)"
)


def _insert_range(number: int) -> writer_module.Transaction[None]:
    def transaction(connection: Connection) -> None:
        connection.execute(text(CANDLE), {"start": number, "end": number + 1})

    return transaction


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "exchange.db"
    migrate.upgrade("exchange", f"sqlite+aiosqlite:///{path}")
    return path


def _rows_in_database_file_alone(path: Path) -> int:
    """What a reader finds with the write-ahead log set aside: the checkpointed rows."""
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())  # the -wal file is not copied
    with sqlite3.connect(copy) as connection:
        (count,) = connection.execute("SELECT count(*) FROM candle_ranges").fetchone()
    return int(count)


async def test_commits_are_visible_at_once_and_checkpointed_in_the_background(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 10)
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    writer = Writer(url, engine)
    try:
        for number in range(9):
            await writer.run(_insert_range(number))
        with sqlite3.connect(database) as reader:
            (visible,) = reader.execute("SELECT count(*) FROM candle_ranges").fetchone()
        assert visible == 9
        assert _rows_in_database_file_alone(database) == 0  # all still in the log

        await writer.run(_insert_range(9))  # the tenth commit starts a checkpoint
    finally:
        writer.close()  # waits for the checkpoint thread
        await engine.dispose()

    assert _rows_in_database_file_alone(database) == 10


def _half_then_fail(start_ms: int) -> Callable[[Connection], None]:
    """A transaction that inserts a row, then fails (as a venue's refusal would)."""

    def transaction(connection: Connection) -> None:
        _insert_range(start_ms)(connection)
        raise RuntimeError("the venue said no")

    return transaction


async def test_a_failed_transaction_commits_nothing(database: Path) -> None:
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    writer = Writer(url, engine)

    try:
        with pytest.raises(RuntimeError):
            await writer.run(_half_then_fail(1))
    finally:
        writer.close()
        await engine.dispose()

    with sqlite3.connect(database) as reader:
        assert reader.execute("SELECT count(*) FROM candle_ranges").fetchone() == (0,)


async def test_the_writer_commits_again_after_a_failed_transaction(database: Path) -> None:
    url = f"sqlite+aiosqlite:///{database}"
    engine = create_engine(url)
    writer = Writer(url, engine)

    try:
        await writer.run(_insert_range(0))
        with pytest.raises(RuntimeError):
            await writer.run(_half_then_fail(1))
        await writer.run(_insert_range(2))
        with sqlite3.connect(database) as reader:
            starts = [row[0] for row in reader.execute("SELECT start_ms FROM candle_ranges")]
    finally:
        writer.close()
        await engine.dispose()

    # What committed before and after the failure, and nothing of the failed one.
    assert sorted(starts) == [0, 2]


async def test_on_postgresql_the_writer_commits_through_the_async_engine(
    postgres_url: str,
) -> None:
    # Alembic's environment runs its own event loop: not on this one.
    await asyncio.to_thread(migrate.upgrade, "exchange", postgres_url)
    engine = create_engine(postgres_url)
    writer = Writer(postgres_url, engine)

    try:
        for number in range(3):
            await writer.run(_insert_range(number))
        with pytest.raises(RuntimeError):
            await writer.run(_half_then_fail(100))
        async with engine.connect() as reader:
            starts = (await reader.execute(text("SELECT start_ms FROM candle_ranges"))).scalars()
            assert sorted(starts) == [0, 1, 2]
    finally:
        writer.close()
        await engine.dispose()
