"""Candle files as users have them: Yahoo/MetaTrader/exchange CSV headers, epoch
seconds or milliseconds, Adj Close, and monthly candles (ccxt's "1M")."""

from __future__ import annotations

import numpy as np
import pytest

from services.backtest.datasets.candle_files import check, parse_csv
from services.backtest.datasets.problems import MalformedDataset

YAHOO = b"""Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,187.15,188.44,183.89,185.64,184.29,82488700
2024-01-03,184.22,185.88,183.43,184.25,182.91,58414500
2024-01-04,182.15,183.09,180.88,181.91,180.59,71983600
2024-01-05,181.99,182.76,180.17,181.18,179.86,62303300
"""
DAY_MS = 86_400_000
JAN_2_MS = 1_704_153_600_000


def test_a_yahoo_file_imports_with_adj_close_ignored() -> None:
    matrix = parse_csv(YAHOO, "content")
    assert matrix[:, 0].tolist() == [JAN_2_MS + k * DAY_MS for k in (0, 1, 2, 3)]
    assert matrix[0, 1:].tolist() == [187.15, 188.44, 183.89, 185.64, 82488700.0]
    checked = check(matrix, "content", None)
    assert checked.timeframe == "1d"
    # Thursday to Friday, then none: four weekdays, no gap.
    assert checked.gaps == ()


def test_adj_close_can_be_chosen_and_scales_the_bar() -> None:
    matrix = parse_csv(YAHOO, "content", adjusted_close=True)
    factor = 184.29 / 185.64
    assert matrix[0, 4] == pytest.approx(184.29)
    np.testing.assert_allclose(matrix[0, 1:4], np.array([187.15, 188.44, 183.89]) * factor)
    check(matrix, "content", None)  # still a valid bar: open and close within [low, high]
    with pytest.raises(MalformedDataset, match="no Adj Close column") as raised:
        parse_csv(b"time,open,high,low,close\n1,1,1,1,1\n", "content", adjusted_close=True)
    assert raised.value.field == "adjusted_close"


@pytest.mark.parametrize(
    ("header", "times"),
    [
        ("timestamp,open,high,low,close,volume", ["1704153600", "1704157200"]),
        ("TIME,OPEN,HIGH,LOW,CLOSE,VOLUME", ["1704153600000", "1704157200000"]),
        ("Datetime,Open,High,Low,Close,Volume", ["2024-01-02 00:00:00", "2024-01-02T01:00Z"]),
        ("Time,Open,High,Low,Close,Volume", ["2024-01-02T01:00:00+01:00", "2024-01-02 01:00"]),
    ],
)
def test_headers_in_any_case_and_times_as_seconds_ms_or_iso(header: str, times: list[str]) -> None:
    lines = [header] + [f"{t},10,11,9,10.5,3" for t in times]
    matrix = parse_csv("\n".join(lines).encode(), "content")
    assert matrix[:, 0].tolist() == [JAN_2_MS, JAN_2_MS + 3_600_000]
    assert check(matrix, "content", None).timeframe == "1h"


def test_columns_in_another_order_semicolons_no_volume_and_extra_columns() -> None:
    text = (
        b"Close;Low;High;Open;Date;Symbol\n10.5;9;11;10;2024-01-02;X\n10.6;9;11;10.5;2024-01-03;X\n"
    )
    matrix = parse_csv(text, "content")
    assert matrix.tolist() == [
        [JAN_2_MS, 10.0, 11.0, 9.0, 10.5, 0.0],
        [JAN_2_MS + DAY_MS, 10.5, 11.0, 9.0, 10.6, 0.0],
    ]


def test_bad_rows_are_named_with_their_number_and_reason() -> None:
    cases = {
        b"Date,Open,High,Low,Close\n2024-01-02,1,2,1,2\n2024-01-03,null,2,1,2\n": (
            "row 2: open 'null' is not a number"
        ),
        b"Date,Open,High,Low,Close\n2024-01-02,1,2,1,2\n2024-13-03,1,2,1,2\n": (
            "row 2: time '2024-13-03' is neither ISO 8601 nor seconds/milliseconds since the epoch"
        ),
        b"Date,Open,High,Low,Close\n2024-01-02,1,2,1,2\n2024-01-03,1,2\n": (
            "row 2: expected 5 columns, got 3"
        ),
    }
    for content, problem in cases.items():
        with pytest.raises(MalformedDataset) as raised:
            parse_csv(content, "content")
        assert raised.value.problem == problem
    with pytest.raises(MalformedDataset, match="the header has no close column"):
        parse_csv(b"Date,Open,High,Low,Price\n", "content")


def monthly_csv(months: list[str]) -> bytes:
    rows = [f"{month}-01T00:00:00Z,10,11,9,10.5,1" for month in months]
    return ("time,open,high,low,close,volume\n" + "\n".join(rows)).encode()


def test_monthly_candles_are_1M_with_their_gaps_in_months() -> None:
    months = ["2023-11", "2023-12", "2024-01", "2024-02", "2024-05", "2024-06"]
    checked = check(parse_csv(monthly_csv(months), "content"), "content", None)
    assert checked.timeframe == "1M"
    assert [(g.missing) for g in checked.gaps] == [2]  # March and April
    gap = checked.gaps[0]
    assert gap.after_ms == int(np.datetime64("2024-02-01", "ms").astype(np.int64))
    assert gap.resume_ms == int(np.datetime64("2024-05-01", "ms").astype(np.int64))
    # Named as ccxt names it, a monthly file is checked on the month grid.
    assert check(parse_csv(monthly_csv(months), "content"), "content", "1M").gaps == checked.gaps
    off_grid = monthly_csv(["2024-01", "2024-02"]).replace(b"2024-02-01T", b"2024-02-02T")
    with pytest.raises(MalformedDataset, match="row 2: time is not the first of a month"):
        check(parse_csv(off_grid, "content"), "content", "1M")
