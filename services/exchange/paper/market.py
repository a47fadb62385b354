"""One paper market: its book, candles and ticker figures, and the replay that moves them.

A replay plays its file in laps, forever. Every second lap is mirrored (replay.mirrored):
lap 0 runs from the file's first trade price a to its last b, lap 1 from b back to a,
lap 2 as lap 0 again: the price never jumps at a seam and the market does not drift away
lap after lap. Replay time goes on across laps (each lap is shifted by the file's span).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from services.exchange.markets import Candle, Market, Ticker
from services.exchange.paper.book import OrderBook
from services.exchange.paper.history import PAST_PRICE_TYPECODE, MinuteBars, PastFile
from services.exchange.paper.replay import (
    BookModel,
    DepthUpdate,
    Event,
    SnapshotLevel,
    SnapshotStart,
    Trade,
    UpdateSequence,
    events,
    mirrored,
    trade_span,
)

log = logging.getLogger("edgequant.exchange.paper")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class TradeStats:
    last: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    base_volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)

    def add(self, price: Decimal, size: Decimal) -> None:
        self.last = price
        self.high = price if self.high is None else max(self.high, price)
        self.low = price if self.low is None else min(self.low, price)
        self.base_volume += size
        self.quote_volume += size * price


class PaperMarket:
    """A market's state; the replay fields stay unused when a live feed moves it."""

    def __init__(
        self,
        market: Market,
        *,
        dataset: Path | None = None,
        book_model: BookModel | None = None,
        past: PastFile | None = None,
        pace: float = 1.0,
    ) -> None:
        self.market = market
        self.book = OrderBook()
        self.history = (
            MinuteBars()
            if past is None
            else MinuteBars(tick=past.tick, lot=past.lot, price_typecode=PAST_PRICE_TYPECODE)
        )
        self.past = past
        self.stats = TradeStats()
        self.last_trade: Trade | None = None
        self.book_model = book_model
        self._path = dataset
        self._pivot = Decimal(0)
        if dataset is not None:
            first, last = trade_span(dataset)
            self._pivot = first + last
        self._events: Iterator[Event] = iter(())
        self.pending: Event | None = None
        self._sequence = UpdateSequence(0)
        self.lap = 0
        self.loop_offset_ms = 0
        self._span_ms = 0
        self._first_ms: int | None = None
        self.now_ms = 0  # the replay's position: the capture's time plus the laps played
        # Paper time is the replay shifted onto the wall clock (and scaled by `pace`):
        # replay time `_anchor_replay_ms` is the wall time `_anchor_wall_ms`.
        self._pace = pace
        self._anchor_replay_ms = 0
        self._anchor_wall_ms = 0
        self.anchor_monotonic = 0.0

    # -- replay ------------------------------------------------------------------------

    def start_replay(self) -> None:
        self.rewind()
        self.anchor(self.now_ms)
        if self.past is not None:
            self.history.preload(self.past, self._anchor_wall_ms)
            self.past = None  # once: the bars hold it now

    @property
    def mirrored(self) -> bool:
        return self.lap % 2 == 1

    def _events_of_lap(self) -> Iterator[Event]:
        assert self._path is not None
        if not self.mirrored:
            return events(self._path)
        return (mirrored(event, self._pivot) for event in events(self._path))

    def rewind(self) -> None:
        """Loads the snapshot at the head of the file (if any); the next event is the
        first update or trade. At a seam the whole book is replaced by the snapshot."""
        if self._first_ms is not None:
            self.lap += 1
            self.loop_offset_ms = self.lap * self._span_ms
        self.book.clear()
        self._events = self._events_of_lap()
        for event in self._events:
            if isinstance(event, SnapshotStart):
                self._sequence = UpdateSequence(event.last_update_id)
            elif isinstance(event, SnapshotLevel):
                self.book.set_level(event.side, event.price, event.size)
            else:
                self.pending = event
                break
        if self._first_ms is None and self.pending is not None:
            self._first_ms = self.pending.time_ms  # type: ignore[union-attr]
            self.now_ms = self._first_ms

    def anchor(self, replay_ms: int) -> None:
        """Pins replay time `replay_ms` to this instant of the wall clock."""
        self._anchor_replay_ms = replay_ms
        self._anchor_wall_ms = wall_ms()
        self.anchor_monotonic = time.monotonic()

    def paper_ms(self, replay_ms: int) -> int:
        return self._anchor_wall_ms + int((replay_ms - self._anchor_replay_ms) / self._pace)

    def due_in_seconds(self, due_ms: int) -> float:
        due = self.anchor_monotonic + (due_ms - self._anchor_replay_ms) / self._pace / 1000
        return due - time.monotonic()

    def next_time_ms(self) -> int:
        event = self.pending
        assert isinstance(event, DepthUpdate | Trade)
        return event.time_ms + self.loop_offset_ms

    def step(self) -> Trade | None:
        """Applies the next event to the book; the trade, if it was one (the venue records
        it and fills resting orders with it)."""
        event = self.pending
        assert isinstance(event, DepthUpdate | Trade)
        event_ms = event.time_ms + self.loop_offset_ms
        # Out of order across streams by a few ms at most: the replay never goes back.
        self.now_ms = max(self.now_ms, event_ms)
        self.pending = next(self._events, None)
        if self.pending is None:
            self._span_ms = self.now_ms - self.loop_offset_ms - (self._first_ms or 0) + 1
        trade = None
        if isinstance(event, DepthUpdate):
            apply, problem = self._sequence.accept(event)
            if problem is not None:
                log.warning("paper replay %s: %s", self.market.symbol, problem)
            if apply:
                self.book.apply_update(event.levels, event_ms)
        else:
            if self.book_model is not None:
                self.book_model.rebuild(self.book, event, event_ms)
            else:
                self.book.apply_trade(event.price, event.taker_side, event_ms)
            trade = event
        if self.pending is None:
            self.rewind()
        return trade

    # -- market data -------------------------------------------------------------------

    def record_trade(self, trade: Trade, paper_ms: int) -> None:
        self.history.add(paper_ms, trade.price, trade.size)
        self.last_trade = trade
        self.stats.add(trade.price, trade.size)

    def ticker(self, now: datetime) -> Ticker:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        return Ticker(
            symbol=self.market.symbol,
            bid=bid[0] if bid else None,
            bid_size=bid[1] if bid else None,
            ask=ask[0] if ask else None,
            ask_size=ask[1] if ask else None,
            last=self.stats.last,
            high=self.stats.high,
            low=self.stats.low,
            base_volume=self.stats.base_volume,
            quote_volume=self.stats.quote_volume,
            time=now,
        )

    def candles(self, width_ms: int, since_ms: int | None, limit: int) -> list[Candle]:
        return self.history.candles(width_ms, since_ms, limit)
