"""What the order flow and the servicer need from a venue, paper or ccxt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from common.errors import FailedPrecondition
from services.exchange.markets import Balance, BookSnapshot, Candle, Market, Ticker, VenueInfo
from services.exchange.orders import Fill, Order, OrderStatus
from services.exchange.reasons import Reason
from services.exchange.wakeup import Wakeup


@dataclass
class VenueReport:
    """What a venue says happened to an order: its new status and any new fills."""

    order_id: str
    status: OrderStatus
    venue_order_id: str = ""
    fills: list[Fill] = field(default_factory=list)


# Called by a venue for what happens to an order later (a resting limit order filled).
ReportSink = Callable[[VenueReport], Awaitable[None]]


class Venue(Protocol):
    info: VenueInfo
    # Set on every market data change; StreamTickers waits on it.
    tickers_changed: Wakeup
    # How often the order flow asks `refresh` about open orders; 0: the venue reports
    # changes itself through the ReportSink (paper).
    order_poll_seconds: float

    async def start(self, on_report: ReportSink) -> None: ...
    async def close(self) -> None: ...
    def clock_ms(self) -> int:
        """The venue's time: wall time for ccxt, the replay's clock for paper."""
        ...

    async def markets(self) -> list[Market]: ...
    async def market(self, symbol: str) -> Market | None: ...
    async def ticker(self, symbol: str) -> Ticker: ...
    async def order_book(self, symbol: str, depth: int) -> BookSnapshot: ...
    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]: ...
    async def balances(self) -> list[Balance]: ...
    async def submit(self, order: Order) -> VenueReport: ...
    async def cancel(self, order: Order) -> VenueReport: ...
    async def refresh(self, order: Order) -> VenueReport | None:
        """The order's state at the venue now; None when the venue cannot tell."""
        ...


def require_trading(venue: Venue) -> None:
    """Raises VENUE_READ_ONLY for a market-data-only venue (`trading = false`)."""
    if getattr(venue, "read_only", False):
        raise FailedPrecondition(
            f"venue {venue.info.name} is market data only (trading = false): it takes no "
            "orders and has no account here",
            reason=Reason.VENUE_READ_ONLY,
        )
