"""The paper venue: the replayed markets, the matching of simulated orders, the account."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import timeframes
from common.errors import FailedPrecondition, NotFound
from services.exchange.markets import (
    Balance,
    BookSnapshot,
    Candle,
    Market,
    Ticker,
    VenueInfo,
    VenueKind,
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
from services.exchange.paper.history import MinuteBars, PastFile
from services.exchange.paper.market import PaperMarket
from services.exchange.paper.replay import BookModel, Trade
from services.exchange.reasons import Reason
from services.exchange.settings import PaperSettings, dataset_path, parse_balances, project_path
from services.exchange.venue import ReportSink, VenueReport
from services.exchange.wakeup import Wakeup

log = logging.getLogger("edgequant.exchange.paper")

NAME = "paper"
DEFAULT_DEPTH = 20
# A clock this far behind its schedule (the process was stopped or starved) resumes from
# where it is rather than replaying the missed stretch in a burst.
MAX_CATCH_UP_MS = 1000
CLOCK_GRANULARITY_SECONDS = 0.1
MAX_BATCH = 1000  # events applied before the clock lets other tasks run


def market_from(  # noqa: PLR0917 - the six keys a market table has
    symbol: str,
    price_increment: str,
    quantity_increment: str,
    min_notional: str,
    maker_fee: str,
    taker_fee: str,
) -> Market:
    base, _, quote = symbol.partition("/")
    return Market(
        symbol=symbol,
        base=base,
        quote=quote,
        price_increment=Decimal(price_increment),
        quantity_increment=Decimal(quantity_increment),
        min_quantity=Decimal(quantity_increment),
        min_notional=Decimal(min_notional),
        maker_fee=Decimal(maker_fee),
        taker_fee=Decimal(taker_fee),
    )


def _has_depth(path: Path) -> bool:
    """Whether a replay file starts with a depth snapshot (else it holds trades only)."""
    with gzip.open(path, "rt", encoding="ascii") as lines:
        return next(lines, "").startswith("S ")


def build_markets(settings: PaperSettings) -> list[PaperMarket]:
    """The replayed markets: the first from [exchange.paper]'s own keys, then the tables."""
    pace = settings.speed if settings.speed > 0 else 1.0
    first = PaperMarket(
        market_from(
            settings.symbol,
            settings.price_increment,
            settings.quantity_increment,
            settings.min_notional,
            settings.maker_fee,
            settings.taker_fee,
        ),
        dataset=dataset_path(settings),
        past=_past(settings.history),
        pace=pace,
    )
    markets = [first]
    for table in settings.markets:
        market = market_from(
            table.symbol,
            table.price_increment,
            table.quantity_increment,
            table.min_notional,
            table.maker_fee or settings.maker_fee,
            table.taker_fee or settings.taker_fee,
        )
        dataset = project_path(table.dataset)
        model = None
        if not _has_depth(dataset):
            model = BookModel(
                tick=market.price_increment,
                spread_ticks=table.book_spread_ticks,
                levels=table.book_levels,
                step_ticks=table.book_step_ticks,
                level_quantity=Decimal(table.book_level_quantity),
            )
        markets.append(
            PaperMarket(
                market, dataset=dataset, book_model=model, past=_past(table.history), pace=pace
            )
        )
    return markets


def _past(history: Path) -> PastFile | None:
    return None if history == Path("") else PastFile.open(project_path(history))


class PaperVenue:
    """The simulated matching engine and account, over one or more paper markets."""

    # GetCandles asks the venue every time: the history is in memory, and it is shifted
    # onto the wall clock at every start, so a database copy of it would go stale.
    candles_cached = False
    # StreamCandles reads a bar at its close: trades are stamped on this venue's clock, so
    # none can land in a bar once the clock has passed its end.
    candles_final_at_close = True

    def __init__(
        self,
        settings: PaperSettings,
        *,
        name: str = NAME,
        markets: list[PaperMarket] | None = None,
    ) -> None:
        self.settings = settings
        self.info = VenueInfo(name, VenueKind.PAPER, "", available=True)
        self.paper_markets = {
            m.market.symbol: m for m in (build_markets(settings) if markets is None else markets)
        }
        self.account = PaperAccount(
            {symbol: m.market for symbol, m in self.paper_markets.items()},
            parse_balances(settings.balances),
            (Decimal(settings.maker_fee), Decimal(settings.taker_fee)),
        )
        self.resting: dict[str, RestingOrder] = {}
        self.tickers_changed = Wakeup()
        self.order_poll_seconds = 0.0  # fills are reported as the market makes them
        self._jitter = random.Random(settings.seed)
        self._on_report: ReportSink | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # The first market (BTC/USDT by default), as the single-market venue had it.
    @property
    def _first(self) -> PaperMarket:
        return next(iter(self.paper_markets.values()))

    @property
    def book(self) -> OrderBook:
        return self._first.book

    @property
    def market_(self) -> Market:
        return self._first.market

    @property
    def history(self) -> MinuteBars:
        return self._first.history

    @property
    def last_trade(self) -> Trade | None:
        return self._first.last_trade

    @property
    def laps(self) -> int:
        """How many times the first market's replay has started over."""
        return self._first.lap

    # -- lifecycle ---------------------------------------------------------------------

    def restore(self, open_orders: list[Order], executions: list[Execution]) -> None:
        """Rebuilds the account and the resting orders after a restart, from the database."""
        fills_per_order: dict[str, int] = {}
        for execution in executions:
            self.account.settle(
                execution.symbol, execution.side, execution.quantity, execution.price, execution.fee
            )
            fills_per_order[execution.order_id] = fills_per_order.get(execution.order_id, 0) + 1
        for order in open_orders:
            if order.price is None or order.symbol not in self.symbols():
                continue
            self.resting[order.order_id] = RestingOrder(
                order.order_id,
                order.side,
                order.price,
                order.remaining,
                fills_per_order.get(order.order_id, 0),
                order.symbol,
            )

    def symbols(self) -> set[str]:
        """The markets this venue trades, known before it starts."""
        return set(self.paper_markets)

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        for market in self.paper_markets.values():
            market.start_replay()
            if self.settings.speed > 0:
                self._tasks.append(
                    asyncio.create_task(
                        self._run_clock(market), name=f"paper-replay-{market.market.symbol}"
                    )
                )
        self.tickers_changed.notify()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_clock(self, market: PaperMarket) -> None:
        """Replays a market's events at `speed` times their recorded pace, forever. Each
        event is due at its own time on the schedule fixed at the start, so waits do not
        add up into drift. The clock wakes at most every CLOCK_GRANULARITY_SECONDS and
        applies every event due by then in one go: ticker subscribers (portfolio, risk)
        wake once per batch, not once per event (an event is at most that late)."""
        while True:
            wait = market.due_in_seconds(market.next_time_ms())
            if wait > 0:
                await asyncio.sleep(max(wait, CLOCK_GRANULARITY_SECONDS))
            else:
                if -wait * 1000 > MAX_CATCH_UP_MS:
                    market.anchor(market.next_time_ms())
                await asyncio.sleep(0)  # the rest of the service runs between batches
            for _ in range(MAX_BATCH):
                if market.due_in_seconds(market.next_time_ms()) > 0:
                    break
                await self._step(market)

    async def advance(self, count: int = 1, symbol: str = "") -> None:
        """Applies a market's next `count` events (the clock does this; tests call it)."""
        market = self.paper_markets[symbol] if symbol else self._first
        for _ in range(count):
            await self._step(market)

    async def _step(self, market: PaperMarket) -> None:
        trade = market.step()
        if trade is not None:
            market.record_trade(trade, self.clock_ms())
            await self._fill_resting(trade, market.market.symbol)
        self.tickers_changed.notify()

    # -- market data -------------------------------------------------------------------

    def clock_ms(self) -> int:
        return self._clock_us() // 1000

    def _clock_us(self) -> int:
        """Paper time: the wall clock, or a replay's position on it when the replay is
        ahead of it (a stepped clock in tests); never 2024. In microseconds, as orders are
        stamped, so a fill is never stamped before its order."""
        ahead = max((m.paper_ms(m.now_ms) for m in self.paper_markets.values()), default=0)
        return max(time.time_ns() // 1000, ahead * 1000)

    def now(self) -> datetime:
        return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=self._clock_us())

    def _paper_market(self, symbol: str) -> PaperMarket:
        market = self.paper_markets.get(symbol)
        if market is None:
            raise NotFound(
                f"the {self.info.name} venue has no market {symbol!r}", reason=Reason.UNKNOWN_SYMBOL
            )
        return market

    async def markets(self) -> list[Market]:
        return [m.market for m in self.paper_markets.values()]

    async def market(self, symbol: str) -> Market | None:
        market = self.paper_markets.get(symbol)
        return None if market is None else market.market

    async def ticker(self, symbol: str) -> Ticker:
        return self._paper_market(symbol).ticker(self.now())

    async def order_book(self, symbol: str, depth: int) -> BookSnapshot:
        bids, asks = self._paper_market(symbol).book.depth(depth or DEFAULT_DEPTH)
        return BookSnapshot(symbol, bids, asks, self.now())

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        """The bundled past, then the candles of the trades replayed since the venue
        started, at their paper times."""
        market = self._paper_market(symbol)
        await market.history.read_past()
        return market.candles(timeframes.milliseconds(timeframe), since_ms, limit)

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
        paper = self._paper_market(order.symbol)
        self._check_admissible(order, paper)
        limit = order.price if order.type is OrderType.LIMIT else None
        slices = walk(paper.book.liquidity(order.side, limit), order.quantity)
        taken = sum((size for _, size in slices), Decimal(0))
        if order.time_in_force is TimeInForce.FOK and taken < order.quantity:
            return VenueReport(order.order_id, OrderStatus.EXPIRED, self._venue_id(order))
        rests = limit is not None and order.time_in_force is TimeInForce.GTC
        self._check_funds(
            order, paper.market, slices, order.quantity - taken if rests else Decimal(0)
        )
        resting = RestingOrder(
            order.order_id, order.side, limit or Decimal(0), order.quantity, symbol=order.symbol
        )
        fills = [self._fill(resting, price, size, Liquidity.TAKER) for price, size in slices]
        for price, size in slices:
            paper.book.consume(order.side, price, size)
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
                f"order {order.order_id} is not open on the {self.info.name} venue",
                reason=Reason.ORDER_NOT_OPEN,
            )
        return VenueReport(order.order_id, OrderStatus.CANCELED, self._venue_id(order))

    async def refresh(self, order: Order) -> VenueReport | None:  # noqa: ARG002
        return None  # never asked: order_poll_seconds is 0

    @staticmethod
    def _venue_id(order: Order) -> str:
        return f"P{order.order_id}"

    def _check_admissible(self, order: Order, paper: PaperMarket) -> None:
        if (
            order.post_only
            and order.price is not None
            and paper.book.would_take(order.side, order.price)
        ):
            raise FailedPrecondition(
                f"post-only order at {order.price} would take liquidity; it was rejected",
                reason=Reason.POST_ONLY_WOULD_TAKE,
            )
        if order.reduce_only:
            base = paper.market.base
            held = self.account.free(base, self.resting.values())
            if order.side is Side.BUY or order.quantity > held:
                raise FailedPrecondition(
                    "reduce-only order would increase the position: on spot a reduce-only "
                    f"order may only sell what is held ({held} {base} free)",
                    reason=Reason.REDUCE_ONLY_WOULD_INCREASE,
                )

    def _check_funds(
        self, order: Order, market: Market, slices: list[tuple[Decimal, Decimal]], rest: Decimal
    ) -> None:
        if order.side is Side.BUY:
            asset = market.quote
            notional = sum((price * size for price, size in slices), Decimal(0))
            needed = notional * (1 + market.taker_fee)
            if rest and order.price is not None:
                needed += self.account.buy_reserve(market, rest, order.price)
        else:
            asset = market.base
            needed = order.quantity if rest else sum((size for _, size in slices), Decimal(0))
        available = self.account.free(asset, self.resting.values())
        if needed > available:
            raise FailedPrecondition(
                f"insufficient funds: the order needs {needed.normalize():f} {asset}, "
                f"{available.normalize():f} {asset} are free",
                reason=Reason.INSUFFICIENT_FUNDS,
                metadata={"asset": asset, "needed": f"{needed:f}", "free": f"{available:f}"},
            )

    def _fill(
        self, resting: RestingOrder, price: Decimal, size: Decimal, liquidity: Liquidity
    ) -> Fill:
        market = self.account.market_of(resting.symbol)
        rate = market.maker_fee if liquidity is Liquidity.MAKER else market.taker_fee
        resting.fill_count += 1
        resting.remaining -= size
        fee = price * size * rate
        self.account.settle(market.symbol, resting.side, size, price, fee)
        return Fill(
            trade_id=f"{resting.order_id}-{resting.fill_count}",
            quantity=size,
            price=price,
            fee=fee,
            fee_currency=market.quote,
            liquidity=liquidity,
            time=self.now(),
        )

    async def _fill_resting(self, trade: Trade, symbol: str = "") -> None:
        """A trade through a resting order's price fills it, as maker, up to the trade's size."""
        symbol = symbol or self.market_.symbol
        crossed = [
            order
            for order in self.resting.values()
            if self.account.market_of(order.symbol).symbol == symbol
            and (
                (order.side is Side.BUY and trade.price < order.price)
                or (order.side is Side.SELL and trade.price > order.price)
            )
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
