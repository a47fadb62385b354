"""The paper venue: the replayed market, the matching of simulated orders, the account."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common.errors import FailedPrecondition, NotFound
from services.exchange.markets import (
    Balance,
    BookSnapshot,
    Candle,
    Market,
    Ticker,
    VenueInfo,
    VenueKind,
    timeframe_ms,
)
from services.exchange.orders import (
    Execution,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from services.exchange.paper.account import PaperAccount, RestingOrder
from services.exchange.paper.book import OrderBook, walk
from services.exchange.paper.history import MinuteBars
from services.exchange.paper.replay import (
    DepthUpdate,
    Event,
    SnapshotLevel,
    SnapshotStart,
    Trade,
    UpdateSequence,
    events,
)
from services.exchange.settings import PaperSettings, dataset_path, parse_balances
from services.exchange.signal import Signal
from services.exchange.venue import ReportSink, VenueReport

log = logging.getLogger("edgequant.exchange.paper")

NAME = "paper"
DEFAULT_DEPTH = 20
# A clock this far behind its schedule (the process was stopped or starved) resumes from
# where it is rather than replaying the missed stretch in a burst.
MAX_CATCH_UP_MS = 1000


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def market_from(settings: PaperSettings) -> Market:
    base, _, quote = settings.symbol.partition("/")
    return Market(
        symbol=settings.symbol,
        base=base,
        quote=quote,
        price_increment=Decimal(settings.price_increment),
        quantity_increment=Decimal(settings.quantity_increment),
        min_quantity=Decimal(settings.quantity_increment),
        min_notional=Decimal(settings.min_notional),
        maker_fee=Decimal(settings.maker_fee),
        taker_fee=Decimal(settings.taker_fee),
    )


class PaperVenue:
    def __init__(self, settings: PaperSettings) -> None:
        self.settings = settings
        self.info = VenueInfo(NAME, VenueKind.PAPER, "", available=True)
        self.market_ = market_from(settings)
        self.book = OrderBook()
        self.account = PaperAccount(self.market_, parse_balances(settings.balances))
        self.resting: dict[str, RestingOrder] = {}
        self.tickers_changed = Signal()
        self.order_poll_seconds = 0.0  # fills are reported as the replay makes them
        self._path: Path = dataset_path(settings)
        self._jitter = random.Random(settings.seed)
        self._events: Iterator[Event] = iter(())
        self._pending: Event | None = None
        self._sequence = UpdateSequence(0)
        self._lap = 0
        self._loop_offset_ms = 0
        self._span_ms = 0
        self._first_ms: int | None = None
        self._now_ms = 0  # the replay's position: the capture's time plus the laps played
        # Paper time is the replay shifted onto the wall clock (and scaled by `speed`): the
        # replay time `_anchor_replay_ms` is the wall time `_anchor_wall_ms`.
        self._pace = settings.speed if settings.speed > 0 else 1.0
        self._anchor_replay_ms = 0
        self._anchor_wall_ms = 0
        self._anchor_monotonic = 0.0
        self.last_trade: Trade | None = None
        self.history = MinuteBars()
        self._last: Decimal | None = None
        self._high: Decimal | None = None
        self._low: Decimal | None = None
        self._base_volume = Decimal(0)
        self._quote_volume = Decimal(0)
        self._on_report: ReportSink | None = None
        self._clock: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def restore(self, open_orders: list[Order], executions: list[Execution]) -> None:
        """Rebuilds the account and the resting orders after a restart, from the database."""
        fills_per_order: dict[str, int] = {}
        for execution in executions:
            self.account.settle(execution.side, execution.quantity, execution.price, execution.fee)
            fills_per_order[execution.order_id] = fills_per_order.get(execution.order_id, 0) + 1
        for order in open_orders:
            if order.price is None:
                continue
            self.resting[order.order_id] = RestingOrder(
                order.order_id,
                order.side,
                order.price,
                order.remaining,
                fills_per_order.get(order.order_id, 0),
            )

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        self._rewind()
        self._anchor(self._now_ms)
        if self.settings.speed > 0:
            self._clock = asyncio.create_task(self._run_clock(), name="paper-replay")

    async def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock

    def _rewind(self) -> None:
        """Loads the snapshot at the head of the file; the next event is the first update.
        At the loop's seam the whole book is replaced by the snapshot: nothing of the last
        lap's book survives into the next."""
        if self._first_ms is not None:
            self._lap += 1
            self._loop_offset_ms = self._lap * self._span_ms
        self.book.clear()
        self._events = events(self._path)
        for event in self._events:
            if isinstance(event, SnapshotStart):
                self._sequence = UpdateSequence(event.last_update_id)
            elif isinstance(event, SnapshotLevel):
                self.book.set_level(event.side, event.price, event.size)
            else:
                self._pending = event
                break
        if self._first_ms is None and self._pending is not None:
            self._first_ms = self._pending.time_ms  # type: ignore[union-attr]
            self._now_ms = self._first_ms
        self.tickers_changed.notify()

    def _anchor(self, replay_ms: int) -> None:
        """Pins replay time `replay_ms` to this instant of the wall clock."""
        self._anchor_replay_ms = replay_ms
        self._anchor_wall_ms = _wall_ms()
        self._anchor_monotonic = time.monotonic()

    def _paper_ms(self, replay_ms: int) -> int:
        return self._anchor_wall_ms + int((replay_ms - self._anchor_replay_ms) / self._pace)

    async def _run_clock(self) -> None:
        """Replays events at `speed` times their recorded pace, forever. Each event is
        due at its own time on the schedule fixed at the start, so waits do not add up
        into drift."""
        while True:
            due_ms = self._next_time_ms()
            due = self._anchor_monotonic + (due_ms - self._anchor_replay_ms) / self._pace / 1000
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif -wait * 1000 > MAX_CATCH_UP_MS:
                self._anchor(due_ms)
            await self.advance(1)

    def _next_time_ms(self) -> int:
        event = self._pending
        assert isinstance(event, DepthUpdate | Trade)
        return event.time_ms + self._loop_offset_ms

    async def advance(self, count: int = 1) -> None:
        """Applies the next `count` market events (the clock does this; tests call it)."""
        for _ in range(count):
            event = self._pending
            assert isinstance(event, DepthUpdate | Trade)
            # Out of order across streams by a few ms at most: the replay never goes back.
            self._now_ms = max(self._now_ms, event.time_ms + self._loop_offset_ms)
            self._pending = next(self._events, None)
            if self._pending is None:
                self._span_ms = self._now_ms - self._loop_offset_ms - (self._first_ms or 0) + 1
            if isinstance(event, DepthUpdate):
                apply, problem = self._sequence.accept(event)
                if problem is not None:
                    log.warning("paper replay: %s", problem)
                if apply:
                    self.book.apply_update(event.levels, event.time_ms + self._loop_offset_ms)
            else:
                self.book.apply_trade(
                    event.price, event.taker_side, event.time_ms + self._loop_offset_ms
                )
                self._record_trade(event)
                await self._fill_resting(event)
            if self._pending is None:
                self._rewind()
            self.tickers_changed.notify()

    # -- market data -------------------------------------------------------------------

    def _record_trade(self, trade: Trade) -> None:
        self.history.add(self.clock_ms(), trade.price, trade.size)
        self.last_trade = trade
        self._last = trade.price
        self._high = trade.price if self._high is None else max(self._high, trade.price)
        self._low = trade.price if self._low is None else min(self._low, trade.price)
        self._base_volume += trade.size
        self._quote_volume += trade.size * trade.price

    @property
    def laps(self) -> int:
        """How many times the replay has started over."""
        return self._lap

    def clock_ms(self) -> int:
        return self._clock_us() // 1000

    def _clock_us(self) -> int:
        """Paper time: the wall clock, or the replay's position on it when the replay is
        ahead of it (a stepped clock in tests); never 2024. In microseconds, as orders are
        stamped, so a fill is never stamped before its order."""
        return max(time.time_ns() // 1000, self._paper_ms(self._now_ms) * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=self._clock_us())

    def _check_symbol(self, symbol: str) -> None:
        if symbol != self.market_.symbol:
            raise NotFound(f"the paper venue has no market {symbol!r}", reason="UNKNOWN_SYMBOL")

    async def markets(self) -> list[Market]:
        return [self.market_]

    async def market(self, symbol: str) -> Market | None:
        return self.market_ if symbol == self.market_.symbol else None

    async def ticker(self, symbol: str) -> Ticker:
        self._check_symbol(symbol)
        bid, ask = self.book.best_bid(), self.book.best_ask()
        return Ticker(
            symbol=symbol,
            bid=bid[0] if bid else None,
            bid_size=bid[1] if bid else None,
            ask=ask[0] if ask else None,
            ask_size=ask[1] if ask else None,
            last=self._last,
            high=self._high,
            low=self._low,
            base_volume=self._base_volume,
            quote_volume=self._quote_volume,
            time=self.now(),
        )

    async def order_book(self, symbol: str, depth: int) -> BookSnapshot:
        self._check_symbol(symbol)
        bids, asks = self.book.depth(depth or DEFAULT_DEPTH)
        return BookSnapshot(symbol, bids, asks, self.now())

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        """Candles of the trades replayed since the venue started, at their paper times."""
        self._check_symbol(symbol)
        return self.history.candles(timeframe_ms(timeframe), since_ms, limit)

    async def balances(self) -> list[Balance]:
        return self.account.balances(self.resting.values())

    # -- orders ------------------------------------------------------------------------

    async def submit(self, order: Order) -> VenueReport:
        delay_ms = self.settings.latency_ms + self._jitter.uniform(
            0, self.settings.latency_jitter_ms
        )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        # From here to the return nothing awaits: the book does not move under the match.
        self._check_admissible(order)
        limit = order.price if order.type is OrderType.LIMIT else None
        slices = walk(self.book.liquidity(order.side, limit), order.quantity)
        taken = sum((size for _, size in slices), Decimal(0))
        if order.time_in_force is TimeInForce.FOK and taken < order.quantity:
            return VenueReport(order.order_id, OrderStatus.EXPIRED, self._venue_id(order))
        rests = limit is not None and order.time_in_force is TimeInForce.GTC
        self._check_funds(order, slices, order.quantity - taken if rests else Decimal(0))
        resting = RestingOrder(order.order_id, order.side, limit or Decimal(0), order.quantity)
        fills = [self._fill(resting, price, size, Liquidity.TAKER) for price, size in slices]
        for price, size in slices:
            self.book.consume(order.side, price, size)
        if resting.remaining <= 0:
            status = OrderStatus.FILLED
        elif rests:
            self.resting[order.order_id] = resting
            status = OrderStatus.PARTIALLY_FILLED if fills else OrderStatus.OPEN
        else:
            status = OrderStatus.EXPIRED
        if fills:
            self.tickers_changed.notify()
        return VenueReport(order.order_id, status, self._venue_id(order), fills)

    async def cancel(self, order: Order) -> VenueReport:
        if self.resting.pop(order.order_id, None) is None:
            raise FailedPrecondition(
                f"order {order.order_id} is not open on the paper venue", reason="ORDER_NOT_OPEN"
            )
        return VenueReport(order.order_id, OrderStatus.CANCELED, self._venue_id(order))

    async def refresh(self, order: Order) -> VenueReport | None:  # noqa: ARG002
        return None  # never asked: order_poll_seconds is 0

    @staticmethod
    def _venue_id(order: Order) -> str:
        return f"P{order.order_id}"

    def _check_admissible(self, order: Order) -> None:
        if (
            order.post_only
            and order.price is not None
            and self.book.would_take(order.side, order.price)
        ):
            raise FailedPrecondition(
                f"post-only order at {order.price} would take liquidity; it was rejected",
                reason="POST_ONLY_WOULD_TAKE",
            )
        if order.reduce_only:
            held = self.account.free(self.market_.base, self.resting.values())
            if order.side is Side.BUY or order.quantity > held:
                raise FailedPrecondition(
                    "reduce-only order would increase the position: on spot a reduce-only "
                    f"order may only sell what is held ({held} {self.market_.base} free)",
                    reason="REDUCE_ONLY_WOULD_INCREASE",
                )

    def _check_funds(
        self, order: Order, slices: list[tuple[Decimal, Decimal]], rest: Decimal
    ) -> None:
        market = self.market_
        if order.side is Side.BUY:
            asset = market.quote
            notional = sum((price * size for price, size in slices), Decimal(0))
            needed = notional * (1 + market.taker_fee)
            if rest and order.price is not None:
                needed += self.account.buy_reserve(rest, order.price)
        else:
            asset = market.base
            needed = order.quantity if rest else sum((size for _, size in slices), Decimal(0))
        available = self.account.free(asset, self.resting.values())
        if needed > available:
            raise FailedPrecondition(
                f"insufficient funds: the order needs {needed.normalize():f} {asset}, "
                f"{available.normalize():f} {asset} are free",
                reason="INSUFFICIENT_FUNDS",
                metadata={"asset": asset, "needed": f"{needed:f}", "free": f"{available:f}"},
            )

    def _fill(
        self, resting: RestingOrder, price: Decimal, size: Decimal, liquidity: Liquidity
    ) -> Fill:
        rate = self.market_.maker_fee if liquidity is Liquidity.MAKER else self.market_.taker_fee
        resting.fill_count += 1
        resting.remaining -= size
        fee = price * size * rate
        self.account.settle(resting.side, size, price, fee)
        return Fill(
            trade_id=f"{resting.order_id}-{resting.fill_count}",
            quantity=size,
            price=price,
            fee=fee,
            fee_currency=self.market_.quote,
            liquidity=liquidity,
            time=self.now(),
        )

    async def _fill_resting(self, trade: Trade) -> None:
        """A trade through a resting order's price fills it, as maker, up to the trade's size."""
        crossed = [
            order
            for order in self.resting.values()
            if (order.side is Side.BUY and trade.price < order.price)
            or (order.side is Side.SELL and trade.price > order.price)
        ]
        # Best price first; dicts keep arrival order, so ties go to the older order.
        crossed.sort(key=lambda o: -o.price if o.side is Side.BUY else o.price)
        available = trade.size
        for order in crossed:
            if available <= 0:
                break
            size = min(available, order.remaining)
            available -= size
            fill = self._fill(order, order.price, size, Liquidity.MAKER)
            if order.remaining <= 0:
                del self.resting[order.order_id]
                status = OrderStatus.FILLED
            else:
                status = OrderStatus.PARTIALLY_FILLED
            if self._on_report is not None:
                await self._on_report(
                    VenueReport(order.order_id, status, f"P{order.order_id}", [fill])
                )
