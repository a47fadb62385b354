"""Proto <-> domain maps of the backtest contract: explicit, complete, and a bad enum
value in a request becomes a field violation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from common.errors import InvalidArgument
from common.validation import Violations
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.common.v1 import common_pb2
from services.backtest import convert
from services.backtest.datasets.dataset import Dataset


@pytest.mark.parametrize(
    ("enum", "mapped"),
    [
        (pb.Engine, convert.ENGINES),
        (pb.Calendar, convert.CALENDARS),
        (pb.EndOfData, convert.END_OF_DATA),
        (pb.FillTiming, convert.FILL_TIMINGS),
        (pb.Sizing, convert.SIZINGS),
        (pb.ExportTable, convert.EXPORT_TABLES),
    ],
)
def test_every_request_enum_value_is_mapped(enum: object, mapped: dict[int, object]) -> None:
    assert set(mapped) == set(enum.values())  # type: ignore[attr-defined]


def test_every_job_state_and_exit_reason_has_a_proto_value() -> None:
    assert set(convert.STATES.values()) == set(pb.JobState.values()) - {pb.JOB_STATE_UNSPECIFIED}
    assert set(convert.EXIT_REASONS) == set(pb.ExitReason.values()) - {pb.EXIT_REASON_UNSPECIFIED}


def test_unknown_enum_values_are_field_violations() -> None:
    request = pb.SubmitBacktestRequest(engine=99)  # type: ignore[arg-type]
    request.bar_settings.end_of_data = 42  # type: ignore[assignment]
    problems = Violations()
    convert.submission(request, problems)
    convert.job_states([pb.JOB_STATE_RUNNING, 77], problems)
    convert.export_table(9, problems)
    imported = pb.ImportDatasetRequest(timeframe=55)  # type: ignore[arg-type]
    convert.dataset_intake(imported, problems)

    with pytest.raises(InvalidArgument) as raised:
        problems.raise_if_any()
    assert [v.field for v in raised.value.violations] == [
        "engine",
        "bar_settings.end_of_data",
        "states",
        "table",
        "timeframe",
    ]


@pytest.mark.parametrize(
    ("timeframe", "ccxt_timeframe", "name"),
    [
        (common_pb2.TIMEFRAME_1M, "", "1m"),
        (common_pb2.TIMEFRAME_1MO, "", "1M"),
        (common_pb2.TIMEFRAME_UNSPECIFIED, "1M", "1M"),
        (common_pb2.TIMEFRAME_UNSPECIFIED, "", None),
    ],
)
def test_a_dataset_timeframe_is_read_from_the_enum_or_ccxt_spelling(
    timeframe: int, ccxt_timeframe: str, name: str | None
) -> None:
    request = pb.ImportDatasetRequest(timeframe=timeframe, ccxt_timeframe=ccxt_timeframe)  # type: ignore[arg-type]
    problems = Violations()

    assert convert.dataset_intake(request, problems).timeframe == name
    assert not problems


def test_a_monthly_dataset_goes_out_as_timeframe_1mo() -> None:
    dataset = Dataset(
        dataset_id="d1",
        name="monthly",
        kind="candles",
        source_format="csv",
        symbol="SPY",
        timeframe="1M",
        rows=12,
        start_ms=0,
        end_ms=1,
        size_bytes=576,
        gaps=((0, 2, 1),),
        tick_size=0.0,
        lot_size=0.0,
        calendar="trading_days",
        file_name="d1.npy",
        create_time=datetime(2026, 11, 30, tzinfo=UTC),
    )

    message = convert.dataset(dataset)

    assert message.timeframe == common_pb2.TIMEFRAME_1MO
    assert message.kind == pb.DATASET_KIND_CANDLES
    assert message.calendar == pb.CALENDAR_TRADING_DAYS
    assert message.gaps[0].missing_candles == 1
