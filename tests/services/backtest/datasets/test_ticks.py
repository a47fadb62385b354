"""hftbacktest .npz datasets: the event layout is checked before anything is stored."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from services.backtest.datasets.problems import MalformedDataset
from services.backtest.datasets.ticks import EVENT_FIELDS, check, read_npz

EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ]
)


def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_events_in_hftbacktests_layout_pass() -> None:
    events = np.zeros(3, EVENT_DTYPE)
    events["local_ts"] = [1_000_000_000, 2_000_000_000, 3_500_000_000]
    events["px"] = [61800.1, 61800.2, 61800.0]
    checked = check(read_npz(_npz(data=events), "content"), "content")
    assert EVENT_DTYPE.names == EVENT_FIELDS
    assert (checked.start_ms, checked.end_ms) == (1000, 3500)


def test_wrong_layouts_are_named() -> None:
    with pytest.raises(MalformedDataset, match="needs a `data` array"):
        read_npz(_npz(events=np.zeros(2)), "content")
    with pytest.raises(MalformedDataset, match=r"is not an \.npz archive"):
        read_npz(b"not a zip", "content")
    with pytest.raises(MalformedDataset, match="events must have the fields"):
        check(np.zeros(2, [("px", "f8"), ("qty", "f8")]), "content")
    with_nan = np.zeros(2, EVENT_DTYPE)
    with_nan["px"][1] = np.nan
    with pytest.raises(MalformedDataset, match="NaN"):
        check(with_nan, "content")
