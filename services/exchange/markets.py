"""Markets and the market data a venue answers with, as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum


class VenueKind(Enum):
    PAPER = "paper"
    SANDBOX = "sandbox"
    LIVE = "live"


@dataclass(frozen=True)
class VenueInfo:
    name: str
    kind: VenueKind
    exchange_id: str
    available: bool


@dataclass(frozen=True)
class Market:
    symbol: str
    base: str
    quote: str
    price_increment: Decimal
    quantity_increment: Decimal
    min_quantity: Decimal | None = None
    max_quantity: Decimal | None = None
    min_notional: Decimal | None = None
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal(0)
    active: bool = True
    type: str = "spot"

    def fits_price(self, price: Decimal) -> bool:
        return price % self.price_increment == 0

    def fits_quantity(self, quantity: Decimal) -> bool:
        return quantity % self.quantity_increment == 0


@dataclass(frozen=True)
class Ticker:
    symbol: str
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None
    high: Decimal | None
    low: Decimal | None
    base_volume: Decimal | None
    quote_volume: Decimal | None
    time: datetime

    def quotes_as(self, other: Ticker | None) -> bool:
        """Everything but the time is the same as in `other`."""
        return other is not None and replace(other, time=self.time) == self


@dataclass(frozen=True)
class BookSnapshot:
    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    time: datetime


@dataclass(frozen=True)
class Candle:
    open_time_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked
