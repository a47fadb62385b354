"""ImportDataset's decisions before anything is fetched or stored: what an EXCHANGE import
needs, what a chunk may carry, and that a format must be chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InvalidArgument
from services.backtest.datasets.intake import DatasetIntake, DatasetIntakes
from services.backtest.datasets.store import DatasetStore


async def _never_fetched(*_args: object) -> bytes:
    raise AssertionError("a refused import must not reach the exchange service")


def _intakes(tmp_path: Path) -> DatasetIntakes:
    # These refusals touch neither the database nor the datasets directory.
    store = DatasetStore(None, tmp_path / "datasets", tmp_path / "import")  # type: ignore[arg-type]
    return DatasetIntakes(store, _never_fetched)


def _intake(**fields: object) -> DatasetIntake:
    given: dict[str, object] = {
        "name": "n",
        "source_format": "exchange",
        "content": b"",
        "path": "",
        "symbol": "",
        "timeframe": None,
        "tick_size": 0.0,
        "lot_size": 0.0,
        "calendar": "continuous",
        "adjusted_close": False,
    }
    return DatasetIntake(**{**given, **fields})  # type: ignore[arg-type]


async def _refused(intakes: DatasetIntakes, intake: DatasetIntake) -> list[str]:
    with pytest.raises(InvalidArgument) as raised:
        await intakes.take(intake)
    return [violation.field for violation in raised.value.violations]


async def test_an_exchange_import_names_every_missing_field(tmp_path: Path) -> None:
    fields = await _refused(_intakes(tmp_path), _intake(content=b"[]"))

    assert fields == ["venue", "symbol", "timeframe", "start_time", "content"]


async def test_monthly_candles_are_not_fetched_from_the_exchange(tmp_path: Path) -> None:
    intake = _intake(venue="paper", symbol="BTC/USDT", timeframe="1M", start_ms=0)

    assert await _refused(_intakes(tmp_path), intake) == ["timeframe"]


async def test_a_chunk_carries_content_and_a_format_is_chosen(tmp_path: Path) -> None:
    intakes = _intakes(tmp_path)
    chunk_with_path = _intake(source_format="csv", path="a.csv", more_chunks=True)
    no_format = _intake(source_format="", content=b"time,open\n")

    assert await _refused(intakes, chunk_with_path) == ["upload_id"]
    assert await _refused(intakes, no_format) == ["format"]
    assert not (tmp_path / "datasets" / "uploads").exists()
