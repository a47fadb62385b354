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
from services.exchange.paper.book import LevelChange, OrderBook


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


def _other(side: Side) -> Side:
    return Side.SELL if side is Side.BUY else Side.BUY


def mirrored(event: Event, pivot: Decimal) -> Event:
    """The event as it plays on a mirrored lap: every price p becomes `pivot - p`, so a
    rise is a fall of the same size; bids become asks and a buyer taking liquidity a
    seller. A lap from first trade price a to last trade price b, mirrored with pivot
    a + b, runs from b to a: laps then alternate and join without a jump or a drift."""
    if isinstance(event, SnapshotLevel):
        return SnapshotLevel(_other(event.side), pivot - event.price, event.size)
    if isinstance(event, DepthUpdate):
        levels = [(_other(side), pivot - price, size) for side, price, size in event.levels]
        return DepthUpdate(event.time_ms, event.first_id, event.final_id, levels)
    if isinstance(event, Trade):
        return Trade(event.time_ms, pivot - event.price, event.size, _other(event.taker_side))
    return event


def trade_span(path: Path) -> tuple[Decimal, Decimal]:
    """The first and the last trade price of a replay file (one pass)."""
    first = last = None
    with gzip.open(path, "rt", encoding="ascii") as lines:
        for line in lines:
            if line.startswith("T "):
                last = Decimal(line.split(maxsplit=3)[2])
                first = last if first is None else first
    if first is None or last is None:
        raise ValueError(f"{path} holds no trade")
    return first, last


@dataclass(frozen=True)
class BookModel:
    """The book around the last trade, for a replay without depth: the trade's price is
    the best level of the side it took from, the other side's best is `spread_ticks`
    away, `levels` levels a side `step_ticks` apart with `level_quantity` each."""

    tick: Decimal
    spread_ticks: int
    levels: int
    step_ticks: int
    level_quantity: Decimal

    def rebuild(self, book: OrderBook, trade: Trade, time_ms: int) -> None:
        spread = self.spread_ticks * self.tick
        if trade.taker_side is Side.BUY:
            ask, bid = trade.price, trade.price - spread
        else:
            bid, ask = trade.price, trade.price + spread
        step = self.step_ticks * self.tick
        book.clear()
        for level in range(self.levels):
            book.set_level(Side.SELL, ask + level * step, self.level_quantity, time_ms)
            if bid - level * step > 0:
                book.set_level(Side.BUY, bid - level * step, self.level_quantity, time_ms)
