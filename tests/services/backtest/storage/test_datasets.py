"""The datasets repository against a real migrated SQLite file: Dataset objects in, the
same Dataset objects out, oldest first, deleted once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common import migrate
from common.database import create_engine, session_factory
from services.backtest.datasets.dataset import Dataset
from services.backtest.storage.datasets import DatasetRepository

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[DatasetRepository]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'backtest.db'}"
    await asyncio.to_thread(migrate.upgrade, "backtest", url)
    engine = create_engine(url)
    yield DatasetRepository(session_factory(engine))
    await engine.dispose()


def _dataset(number: int, **changes: object) -> Dataset:
    dataset = Dataset(
        dataset_id=f"d{number}",
        name=f"ETH/BTC {number}",
        kind="candles",
        source_format="freqtrade_json",
        symbol="ETH/BTC",
        timeframe="1M",
        rows=1440,
        start_ms=1_700_000_000_000,
        end_ms=1_700_086_340_000,
        size_bytes=69_120,
        gaps=((1_700_000_060_000, 1_700_000_240_000, 2),),
        tick_size=0.0,
        lot_size=0.0,
        calendar="continuous",
        file_name=f"d{number}.npy",
        create_time=T0 + timedelta(minutes=number % 3),  # two share a time
    )
    return replace(dataset, **changes)  # type: ignore[arg-type]


async def test_a_dataset_comes_back_as_it_was_added(repository: DatasetRepository) -> None:
    added = _dataset(1)
    await repository.add(added)

    assert await repository.get("d1") == added
    assert await repository.get("nope") is None


async def test_datasets_page_oldest_first(repository: DatasetRepository) -> None:
    for number in (5, 4, 3, 2, 1):  # times: d3 first, then d1 and d4 (tie), then d2 and d5
        await repository.add(_dataset(number))

    first = await repository.page(0, 2)
    rest = await repository.page(2, 10)

    assert [d.dataset_id for d in first + rest] == ["d3", "d1", "d4", "d2", "d5"]


async def test_a_dataset_is_deleted_once(repository: DatasetRepository) -> None:
    await repository.add(_dataset(1))

    assert await repository.delete("d1") == _dataset(1)
    assert await repository.delete("d1") is None
    assert await repository.get("d1") is None
