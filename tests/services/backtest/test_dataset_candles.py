"""ListDatasetCandles: a candle dataset's candles as decimal strings, paged by open time
(a walk returns each candle exactly once), filtered by a time range; bad paging or
times are field violations, an unknown dataset NOT_FOUND."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from common.paging import page_token
from common.wire import decimal_text
from edgequant.backtest.v1 import backtest_pb2 as pb
from services.backtest.convert import float_text
from tests.services.backtest.test_servicer import _error_info, _serve

if TYPE_CHECKING:
    from edgequant.backtest.v1.backtest_pb2_grpc import BacktestServiceAsyncStub as Stub

START_MS = 1_700_000_040_000  # a whole minute
COUNT = 2345


def _rows() -> list[tuple[int, str, str, str, str, str]]:
    """Prices and volumes as a user writes them: one decimal place, 0.001 steps."""
    return [
        (
            START_MS + index * 60_000,
            f"{100 + index / 10:.1f}",
            f"{101 + index / 10:.1f}",
            f"{99 + index / 10:.1f}",
            f"{100.5 + index / 10:.1f}",
            f"{(index % 7 + 1) / 1000:.3f}",
        )
        for index in range(COUNT)
    ]


def _expected() -> list[tuple[int, str, str, str, str, str]]:
    """The rows in their wire form: plain decimal strings without trailing zeros."""
    return [
        (time, *(decimal_text(Decimal(value)) for value in values))  # type: ignore[misc]
        for time, *values in _rows()
    ]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Stub, pb.Dataset]]:
    lines = ["time,open,high,low,close,volume"] + [",".join(map(str, r)) for r in _rows()]
    async for stub in _serve(tmp_path):
        response = await stub.ImportDataset(
            pb.ImportDatasetRequest(
                name="walk",
                format=pb.DATASET_FORMAT_CSV,
                content="\n".join(lines).encode(),
                symbol="ETH/USDT",
            )
        )
        yield stub, response.dataset


def _stamp(milliseconds: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


def _wire(candle: object) -> tuple[int, str, str, str, str, str]:
    assert hasattr(candle, "open_time")
    return (
        candle.open_time.ToMilliseconds(),
        candle.open,  # type: ignore[attr-defined]
        candle.high,  # type: ignore[attr-defined]
        candle.low,  # type: ignore[attr-defined]
        candle.close,  # type: ignore[attr-defined]
        candle.volume,  # type: ignore[attr-defined]
    )


async def test_paging_walks_the_whole_dataset_exactly_once(
    served: tuple[Stub, pb.Dataset],
) -> None:
    stub, dataset = served
    assert dataset.rows == COUNT
    seen: list[tuple[int, str, str, str, str, str]] = []
    sizes, token = [], ""
    while True:
        page = await stub.ListDatasetCandles(
            pb.ListDatasetCandlesRequest(
                dataset_id=dataset.dataset_id, page_size=1000, page_token=token
            )
        )
        sizes.append(len(page.candles))
        seen += [_wire(candle) for candle in page.candles]
        token = page.next_page_token
        if not token:
            break
    assert sizes == [1000, 1000, 345]
    # Every candle once, in time order, as the numbers the file had ("100.0" is "100").
    assert seen == _expected()
    assert seen[1] == (START_MS + 60_000, "100.1", "101.1", "99.1", "100.6", "0.002")


async def test_a_time_range_and_the_default_page(served: tuple[Stub, pb.Dataset]) -> None:
    stub, dataset = served
    rows = _expected()
    ranged = await stub.ListDatasetCandles(
        pb.ListDatasetCandlesRequest(
            dataset_id=dataset.dataset_id,
            start_time=_stamp(rows[10][0]),
            end_time=_stamp(rows[20][0]),  # exclusive
        )
    )
    assert [_wire(c) for c in ranged.candles] == rows[10:20]
    assert ranged.next_page_token == ""
    # A range paged: the token carries on within it and stops at its end.
    first = await stub.ListDatasetCandles(
        pb.ListDatasetCandlesRequest(
            dataset_id=dataset.dataset_id, page_size=6, start_time=_stamp(rows[10][0] - 1)
        )
    )
    second = await stub.ListDatasetCandles(
        pb.ListDatasetCandlesRequest(
            dataset_id=dataset.dataset_id,
            page_size=6,
            page_token=first.next_page_token,
            start_time=_stamp(rows[10][0] - 1),
            end_time=_stamp(rows[20][0]),
        )
    )
    assert [_wire(c) for c in [*first.candles, *second.candles]] == rows[10:20]
    assert second.next_page_token == ""
    default = await stub.ListDatasetCandles(
        pb.ListDatasetCandlesRequest(dataset_id=dataset.dataset_id)
    )
    assert len(default.candles) == 1000


async def _violations(stub: Stub, request: pb.ListDatasetCandlesRequest) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListDatasetCandles(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return _error_info(raised.value)[1]


async def test_bad_paging_and_times_are_field_violations(
    served: tuple[Stub, pb.Dataset],
) -> None:
    stub, dataset = served
    dataset_id = dataset.dataset_id
    assert await _violations(
        stub, pb.ListDatasetCandlesRequest(dataset_id=dataset_id, page_size=-1)
    ) == ["page_size: must not be negative"]
    assert [
        v.split(":")[0]
        for v in await _violations(
            stub,
            pb.ListDatasetCandlesRequest(dataset_id=dataset_id, page_token="not-ours"),  # noqa: S106
        )
    ] == ["page_token"]
    # Another dataset's token, or another listing's, is not taken.
    for foreign in (
        page_token("dataset_candles", "another-dataset", str(START_MS)),
        page_token("dataset_candles", dataset_id, "soon"),
        page_token("orders", dataset_id, str(START_MS)),
    ):
        violations = await _violations(
            stub, pb.ListDatasetCandlesRequest(dataset_id=dataset_id, page_token=foreign)
        )
        assert [v.split(":")[0] for v in violations] == ["page_token"], foreign
    assert await _violations(
        stub,
        pb.ListDatasetCandlesRequest(
            dataset_id=dataset_id, start_time=_stamp(START_MS), end_time=_stamp(START_MS)
        ),
    ) == ["end_time: must be after start_time"]
    bad_time = Timestamp(seconds=10**12)
    violations = await _violations(
        stub, pb.ListDatasetCandlesRequest(dataset_id=dataset_id, start_time=bad_time)
    )
    assert [v.split(":")[0] for v in violations] == ["start_time"]
    assert await _violations(stub, pb.ListDatasetCandlesRequest()) == ["dataset_id: is required"]


async def test_an_unknown_dataset_is_not_found(served: tuple[Stub, pb.Dataset]) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListDatasetCandles(
            pb.ListDatasetCandlesRequest(dataset_id="00000000-0000-0000-0000-000000000000")
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert _error_info(raised.value)[0].reason == "DATASET_NOT_FOUND"


@pytest.mark.parametrize(
    ("stored", "wire"),
    [
        (100.0, "100"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (1e-05, "0.00001"),
        (1.5e-07, "0.00000015"),
        (1e22, "10000000000000000000000"),
        (64123.45, "64123.45"),
    ],
)
def test_stored_floats_are_plain_decimal_strings(stored: float, wire: str) -> None:
    assert float_text(stored) == wire
