"""Candle files: parsed, checked, their gaps found; malformed ones named precisely."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from services.backtest.datasets.candle_files import (
    check,
    parse_csv,
    parse_freqtrade_json,
)
from services.backtest.datasets.problems import MalformedDataset

DATA = Path(__file__).parents[1] / "data"

HEADER = "time,open,high,low,close,volume\n"


def real_rows() -> list[list[float]]:
    with gzip.open(DATA / "ETH_BTC-1m.json.gz", "rt") as source:
        rows: list[list[float]] = json.load(source)
    return rows


def test_freqtrade_file_with_its_real_gap() -> None:
    rows = real_rows()
    checked = check(parse_freqtrade_json(json.dumps(rows).encode(), "content"), "content", None)
    assert checked.timeframe == "1m"
    assert len(checked.matrix) == len(rows)
    # Found independently: every step longer than a minute.
    expected = [
        (rows[i][0], rows[i + 1][0], (rows[i + 1][0] - rows[i][0]) // 60_000 - 1)
        for i in range(len(rows) - 1)
        if rows[i + 1][0] - rows[i][0] > 60_000
    ]
    assert [(g.after_ms, g.resume_ms, g.missing) for g in checked.gaps] == expected
    assert expected  # the real file does skip minutes


def test_csv_with_iso_times_equals_the_json() -> None:
    rows = real_rows()[:50]
    lines = [HEADER] + [
        f"{np.datetime64(int(r[0]), 'ms')}Z,{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n" for r in rows
    ]
    parsed = parse_csv("".join(lines).encode(), "content")
    np.testing.assert_array_equal(parsed, np.array(rows))


def _csv(rows: list[list[float]]) -> bytes:
    return (HEADER + "".join(",".join(str(v) for v in row) + "\n" for row in rows)).encode()


def _problem(rows: list[list[float]]) -> str:
    with pytest.raises(MalformedDataset) as raised:
        check(parse_csv(_csv(rows), "content"), "content", None)
    assert raised.value.field == "content"
    return raised.value.problem


def test_malformed_candles_are_named() -> None:
    good = [[60_000.0 * k, 10.0, 11.0, 9.0, 10.5, 1.0] for k in range(1, 6)]
    unsorted = [row[:] for row in good]
    unsorted[2][0], unsorted[3][0] = unsorted[3][0], unsorted[2][0]
    duplicate = [row[:] for row in good]
    duplicate[3][0] = duplicate[2][0]
    with_nan = [row[:] for row in good]
    with_nan[1][4] = float("nan")
    inverted = [row[:] for row in good]
    inverted[4][2], inverted[4][3] = 8.0, 12.0

    assert _problem(unsorted) == "row 4: time goes backwards (rows must be sorted)"
    assert _problem(duplicate) == "row 4: duplicate timestamp"
    assert _problem(with_nan) == "row 2: a value is NaN or infinite"
    assert _problem(inverted) == "row 5: high is below low"


def test_wrong_columns_are_named() -> None:
    with pytest.raises(MalformedDataset, match="the header has no open, high, low, close column"):
        parse_csv(b"date,price\n1,2\n", "content")
    with pytest.raises(MalformedDataset, match="row 2: expected 6 columns"):
        parse_freqtrade_json(b"[[1,2,3,4,5,6],[1,2,3]]", "content")
