"""The paper venue's candle history: a bundled past (history-*-1m.txt.gz, see
services/exchange/data/paper/SOURCES.md) shifted to end where the venue starts, then the
replayed trades as one-minute bars at paper time.

Every candle timeframe is a whole number of minutes, aligned like the minutes, so minute
bars aggregate into any of them exactly. Prices and sizes are kept as integers in arrays:
by default in units of 10^-8 (Binance's precision), 48 bytes a minute; a market with a
bundled past counts prices in its ticks as 32-bit integers and sizes in its lots, 32
bytes a minute (31 days: 1.4 MB). The past is read when candles are first asked for: a
stack that nobody charts does not hold it.
"""

from __future__ import annotations

import asyncio
import gzip
from array import array
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from services.exchange.markets import Candle

MINUTE_MS = 60_000
SCALE = 10**8
WEEK_MINUTES = 7 * 24 * 60


UNIT = Decimal(1) / SCALE
PAST_PRICE_TYPECODE = "i"  # a bundled past counts its prices in ticks, 32-bit


@dataclass(frozen=True)
class PastBars:
    """A bundled history: one bar a minute, oldest first, no minute missing; prices in
    ticks (32-bit), sizes in lots."""

    tick: Decimal
    lot: Decimal
    opens: array[int]
    highs: array[int]
    lows: array[int]
    closes: array[int]
    volumes: array[int]

    def __len__(self) -> int:
        return len(self.opens)


@dataclass(frozen=True)
class PastFile:
    """A bundled history known by its `P` line; its rows are read by `load`."""

    path: Path
    tick: Decimal
    lot: Decimal
    minutes: int

    @classmethod
    def open(cls, path: Path) -> PastFile:
        """Reads the `P` line only (a file without one is refused here, at start)."""
        with gzip.open(path, "rt", encoding="ascii") as lines:
            for line in lines:
                if line.startswith("P "):
                    _, tick, lot, minutes = line.split()
                    return cls(path, Decimal(tick), Decimal(lot), int(minutes))
                if not line.startswith("#") and line.strip():
                    break
        raise ValueError(f"{path} is not a candle history (no 'P' line before its rows)")

    def load(self) -> PastBars:
        return load_past(self.path)


def load_past(path: Path) -> PastBars:
    """Reads scripts/build_paper_history.py's format: `P <tick> <lot> <minutes>`, then per
    minute `<open - previous close> <high - open> <open - low> <close - open> <volume>`
    in ticks and lots."""
    # Sized once from the P line and filled in place: arrays grown by append would leave
    # the freed smaller copies as holes in the heap, and up to 1/16 of each unused.
    opens = highs = lows = closes = volumes = array(PAST_PRICE_TYPECODE)
    tick = lot = Decimal(0)
    previous_close = minute = 0
    with gzip.open(path, "rt", encoding="ascii") as lines:
        for line in lines:
            if line.startswith("#") or not line.strip():
                continue
            if line.startswith("P "):
                _, tick_text, lot_text, minutes = line.split()
                tick, lot = Decimal(tick_text), Decimal(lot_text)
                opens, highs, lows, closes = (
                    array(PAST_PRICE_TYPECODE, [0]) * int(minutes) for _ in range(4)
                )
                volumes = array("q", [0]) * int(minutes)
                continue
            if minute == len(opens):
                raise ValueError(f"{path}: more rows than its 'P' line says, or none")
            open_delta, up, down, move, volume = (int(field) for field in line.split())
            open_ = previous_close + open_delta
            previous_close = open_ + move
            opens[minute] = open_
            highs[minute] = open_ + up
            lows[minute] = open_ - down
            closes[minute] = previous_close
            volumes[minute] = volume
            minute += 1
    if not tick or not minute or minute != len(opens):
        raise ValueError(f"{path} is not a candle history (no 'P' line, or fewer rows)")
    return PastBars(tick, lot, opens, highs, lows, closes, volumes)


class MinuteStarts:
    """The bars' minute starts, ascending. The preloaded past's are arithmetic (first +
    i * MINUTE_MS), so only the minutes added after it are stored: a month of past costs
    nothing here rather than 8 bytes a minute."""

    def __init__(self) -> None:
        self.first = 0  # the past's first minute (once trimmed, its first kept minute)
        self.past = 0  # how many minutes of the past are kept
        self.added = array("q")

    def put_past_before(self, first: int, minutes: int) -> None:
        """The past's minutes go in front of those added so far (all after it)."""
        self.first, self.past = first, minutes

    def __len__(self) -> int:
        return self.past + len(self.added)

    def __getitem__(self, index: int) -> int:
        if index < 0:
            index += len(self)
        if 0 <= index < self.past:
            return self.first + index * MINUTE_MS
        return self.added[index - self.past]

    def bisect_left(self, time_ms: int, low: int = 0) -> int:
        """The first index from `low` whose minute starts at or after `time_ms`."""
        if time_ms < self.first + self.past * MINUTE_MS:
            found = max(0, -((self.first - time_ms) // MINUTE_MS))  # minutes, rounded up
        else:
            found = self.past + bisect_left(self.added, time_ms)
        return max(low, found)

    def append(self, minute: int) -> None:
        self.added.append(minute)

    def keep_last(self, count: int) -> None:
        dropped = len(self) - count
        from_past = min(dropped, self.past)
        self.first += from_past * MINUTE_MS
        self.past -= from_past
        del self.added[: dropped - from_past]


class MinuteBars:
    def __init__(
        self,
        capacity: int = WEEK_MINUTES,
        *,
        tick: Decimal = UNIT,
        lot: Decimal = UNIT,
        price_typecode: str = "q",
    ) -> None:
        """Prices count `tick`s, sizes `lot`s; 32-bit prices ("i") only where they fit."""
        self.capacity = capacity
        self.tick, self.lot = tick, lot
        self._starts = MinuteStarts()
        self._opens = array(price_typecode)
        self._highs = array(price_typecode)
        self._lows = array(price_typecode)
        self._closes = array(price_typecode)
        self._volumes = array("q")
        self._unread_past: tuple[PastFile, int] | None = None  # and its first minute
        self._reading: asyncio.Future[PastBars] | None = None

    def _columns(self) -> tuple[array[int], ...]:
        return (self._opens, self._highs, self._lows, self._closes, self._volumes)

    def preload(self, past: PastFile, end_ms: int) -> None:
        """Puts `past` in front: its last minute is the one before the minute of `end_ms`
        (when the replay starts). Room is made for it and a week more. It is read when
        candles are first asked for; the trades added until then go after it."""
        end_minute = end_ms - end_ms % MINUTE_MS
        self.capacity = max(self.capacity, past.minutes + WEEK_MINUTES)
        self._unread_past = (past, end_minute - past.minutes * MINUTE_MS)

    @property
    def past_read(self) -> bool:
        return self._unread_past is None

    async def read_past(self) -> None:
        """Reads the past, once, in a worker thread: its ~0.1 s of parsing would stall
        the event loop, and every order behind it, on the first chart."""
        if self._unread_past is None:
            return
        if self._reading is None:
            self._reading = asyncio.ensure_future(asyncio.to_thread(self._unread_past[0].load))
        past = await asyncio.shield(self._reading)
        if self._unread_past is not None:
            self._put_past_in_front(past)

    def _put_past_in_front(self, past: PastBars) -> None:
        assert self._unread_past is not None
        past_file, first = self._unread_past
        if len(past) != past_file.minutes:
            raise ValueError(f"{past_file.path} changed since the venue started")
        # The past's arrays themselves, not copies, with the minutes added so far after.
        columns = (past.opens, past.highs, past.lows, past.closes, past.volumes)
        for column, added in zip(columns, self._columns(), strict=True):
            column.extend(added)
        self._opens, self._highs, self._lows, self._closes, self._volumes = columns
        self._starts.put_past_before(first, past_file.minutes)
        self._unread_past = None
        self._trim()

    def add(self, time_ms: int, price: Decimal, size: Decimal) -> None:
        minute = time_ms - time_ms % MINUTE_MS
        scaled_price, scaled_size = int(price / self.tick), int(size / self.lot)
        if self._starts and minute <= self._starts[-1]:
            # The current minute (or, if the wall clock stepped back, the newest bar).
            self._highs[-1] = max(self._highs[-1], scaled_price)
            self._lows[-1] = min(self._lows[-1], scaled_price)
            self._closes[-1] = scaled_price
            self._volumes[-1] += scaled_size
            return
        self._starts.append(minute)
        for column, value in zip(
            self._columns(),
            (scaled_price, scaled_price, scaled_price, scaled_price, scaled_size),
            strict=True,
        ):
            column.append(value)
        self._trim()

    def _trim(self) -> None:
        if len(self._starts) > self.capacity + self.capacity // 8:
            self._starts.keep_last(self.capacity)
            for column in self._columns():  # trimmed in chunks: a del is O(n)
                del column[: len(column) - self.capacity]

    def candles(self, width_ms: int, since_ms: int | None, limit: int) -> list[Candle]:
        """With `since_ms`, the first `limit` candles opening at or after it; without, the
        latest `limit` (the one still forming included)."""
        if limit <= 0:
            return []
        if self._unread_past is not None:  # not through read_past: read it here
            self._put_past_in_front(self._unread_past[0].load())
        if since_ms is None:
            if not self._starts:
                return []
            # The latest `limit` candles hold at most this many bars; from the start of
            # the candle the first of them falls in.
            earliest = self._starts[max(0, len(self._starts) - limit * (width_ms // MINUTE_MS))]
            first = self._starts.bisect_left(earliest - earliest % width_ms)
            return self._aggregate(first, width_ms, None)[-limit:]
        return self._aggregate(self._starts.bisect_left(since_ms), width_ms, limit)

    def _aggregate(self, first: int, width_ms: int, limit: int | None) -> list[Candle]:
        """Candle by candle: each one's minutes found by bisection and reduced by
        max/min/sum over array slices (C loops), not minute by minute in Python."""
        candles: list[Candle] = []
        starts, count = self._starts, len(self._starts)
        index = first
        while index < count and len(candles) != limit:
            start = starts[index] - starts[index] % width_ms
            end = starts.bisect_left(start + width_ms, index + 1)
            bar = [
                start,
                self._opens[index],
                max(self._highs[index:end]),
                min(self._lows[index:end]),
                self._closes[end - 1],
                sum(self._volumes[index:end]),
            ]
            candles.append(self._candle(bar))
            index = end
        return candles

    def _candle(self, bar: list[int]) -> Candle:
        start, *prices, volume = bar
        open_, high, low, close = (_times(value, self.tick) for value in prices)
        return Candle(start, open_, high, low, close, _times(volume, self.lot))


def _times(count: int, unit: Decimal) -> Decimal:
    # Divided, not multiplied, for the 10^-8 unit: 10050000000 units read "100.5".
    return Decimal(count) / SCALE if unit == UNIT else count * unit
