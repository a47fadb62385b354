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
from services.exchange.paper.book import LevelChange


@dataclass(frozen=True)
class SnapshotStart:
    """The head of the file: the depth snapshot's id; its levels follow."""

    last_update_id: int


@dataclass(frozen=True)
class SnapshotLevel:
    side: Side
    price: Decimal
    size: Decimal


@dataclass(frozen=True)
class DepthUpdate:
    time_ms: int
    # Binance's first and final update id in the event (U and u).
    first_id: int
    final_id: int
    levels: list[LevelChange]


@dataclass(frozen=True)
class Trade:
    time_ms: int
    price: Decimal
    size: Decimal
    # The side that took liquidity.
    taker_side: Side


Event = SnapshotStart | SnapshotLevel | DepthUpdate | Trade
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
        for item in fields[3:]:
            price, size = item[1:].split(":")
            levels.append((_SIDES[item[0]], Decimal(price), Decimal(size)))
        return DepthUpdate(int(fields[0]), int(fields[1]), int(fields[2]), levels)
    if kind == "S":
        return SnapshotStart(int(fields[0]))
    raise ValueError(f"unknown replay line {line[:40]!r}")


def events(path: Path) -> Iterator[Event]:
    """One pass over the file."""
    with gzip.open(path, "rt", encoding="ascii") as lines:
        for line in lines:
            if line.strip():
                yield parse(line)


class UpdateSequence:
    """Binance's rules for a local book from a snapshot and the diff stream: an update
    whose final id is not above the snapshot's is already in it; the first one applied
    must span the snapshot's id + 1; each next one must start right after the previous.
    A break is reported, not hidden: the book may then hold levels it cannot know are
    gone (the book's crossing rules still keep it sane)."""

    def __init__(self, snapshot_id: int) -> None:
        self.snapshot_id = snapshot_id
        self.last_id: int | None = None

    def accept(self, update: DepthUpdate) -> tuple[bool, str | None]:
        """(apply it?, what broke, if anything)."""
        if update.final_id <= self.snapshot_id:
            return False, None
        problem = None
        if self.last_id is None:
            if not update.first_id <= self.snapshot_id + 1 <= update.final_id:
                problem = (
                    f"the first depth update {update.first_id}..{update.final_id} does not "
                    f"follow the snapshot {self.snapshot_id}"
                )
        elif update.first_id != self.last_id + 1:
            problem = f"depth updates skip from {self.last_id} to {update.first_id}"
        self.last_id = update.final_id
        return True, problem
