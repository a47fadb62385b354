"""L2 tick datasets in hftbacktest's own format: an .npz whose `data` is an array of
its event dtype (ev, exch_ts, local_ts, px, qty, order_id, ival, fval; times in ns).

Raw Binance USD-M futures captures convert with hftbacktest's own converter; that
import runs in a child process, the only place hftbacktest is imported besides tick
workers."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from services.backtest.datasets.problems import MalformedDataset

# hftbacktest's event records (a structured array).
Events = npt.NDArray[np.void]

EVENT_FIELDS = ("ev", "exch_ts", "local_ts", "px", "qty", "order_id", "ival", "fval")


@dataclass(frozen=True)
class CheckedTicks:
    events: Events
    start_ms: int
    end_ms: int


def read_npz(content: bytes | Path, field: str) -> Events:
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    try:
        with np.load(source, allow_pickle=False) as archive:
            if "data" not in archive:
                raise MalformedDataset(field, "an hftbacktest .npz needs a `data` array")
            return np.asarray(archive["data"])
    except (OSError, ValueError) as error:
        if isinstance(error, MalformedDataset):
            raise
        raise MalformedDataset(field, f"is not an .npz archive: {error}") from None


def check(events: Events, field: str) -> CheckedTicks:
    names = events.dtype.names or ()
    if tuple(names) != EVENT_FIELDS:
        raise MalformedDataset(
            field, f"events must have the fields {list(EVENT_FIELDS)}, got {list(names)}"
        )
    if len(events) == 0:
        raise MalformedDataset(field, "has no events")
    if not np.isfinite(events["px"]).all() or not np.isfinite(events["qty"]).all():
        raise MalformedDataset(field, "a price or quantity is NaN or infinite")
    local = events["local_ts"]
    return CheckedTicks(events, int(local.min()) // 1_000_000, int(local.max()) // 1_000_000)


def convert_binance_futures(raw_path: Path) -> Events:
    """hftbacktest's converter for raw USD-M futures captures (combined streams)."""
    from hftbacktest.data.utils import binancefutures  # noqa: PLC0415

    return np.asarray(binancefutures.convert(str(raw_path), combined_stream=True))
