from common import timeframes
from edgequant.common.v1 import common_pb2


def test_every_proto_timeframe_has_exactly_one_name() -> None:
    values = [
        value for name, value in common_pb2.Timeframe.items() if name != "TIMEFRAME_UNSPECIFIED"
    ]
    assert sorted(values) == sorted(timeframe.proto for timeframe in timeframes.TIMEFRAMES)
    assert len(set(timeframes.NAMES)) == len(timeframes.TIMEFRAMES)


def test_minute_and_month_differ_only_by_case_as_in_ccxt() -> None:
    minute = timeframes.from_proto(common_pb2.TIMEFRAME_1M)
    month = timeframes.from_proto(common_pb2.TIMEFRAME_1MO)
    assert minute is not None
    assert month is not None
    assert (minute.name, minute.milliseconds) == ("1m", 60_000)
    assert (month.name, month.milliseconds) == ("1M", None)


def test_names_and_proto_values_translate_both_ways() -> None:
    for timeframe in timeframes.TIMEFRAMES:
        assert timeframes.to_proto(timeframe.name) == timeframe.proto
        assert timeframes.by_name(timeframe.name) == timeframe
    assert timeframes.from_proto(common_pb2.TIMEFRAME_UNSPECIFIED) is None
    assert timeframes.to_proto("7m") == common_pb2.TIMEFRAME_UNSPECIFIED


def test_candle_spacing_names_its_timeframe() -> None:
    assert timeframes.of_step(4 * 3_600_000) == "4h"
    assert timeframes.of_step(29 * 86_400_000) == "1M"
    assert timeframes.of_step(7 * 60_000) is None
