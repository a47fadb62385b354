"""Orders and executions: the domain objects the exchange stores, streams and answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum


class Side(Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(Enum):
    PENDING_NEW = "pending_new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset(
    {
        OrderStatus.PENDING_NEW,
        OrderStatus.OPEN,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
    }
)


class Liquidity(Enum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True)
class OrderIntent:
    """A validated SubmitOrder request: what the caller asks for, before anyone accepted it."""

    venue: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    client_order_id: str


# What a SubmitOrder request asks for, by its field name in the request: a client_order_id
# seen again must ask for the same, else it names another order.
_INTENT_FIELDS = (
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "time_in_force",
    "post_only",
    "reduce_only",
)


def differing_fields(intent: OrderIntent, order: Order) -> list[str]:
    """The request fields in which `intent` asks for something other than `order`.

    Values compare as parsed (Decimal "0.010" equals "0.01"; an unset time_in_force is
    the order type's default), so the same order spelled differently is the same order."""
    return [name for name in _INTENT_FIELDS if getattr(intent, name) != getattr(order, name)]


def describe(value: object) -> str:
    """A field's value as a message shows it: decimals plainly, enums by name."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"
    if isinstance(value, Enum):
        return value.name
    return "none" if value is None else str(value).lower()


@dataclass
class Order:
    order_id: str
    client_order_id: str
    venue: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    post_only: bool
    reduce_only: bool
    status: OrderStatus
    create_time: datetime
    update_time: datetime
    venue_order_id: str = ""
    filled_quantity: Decimal = Decimal(0)
    # Sum of price * quantity over fills; the average is derived from it.
    filled_notional: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    reject_reasons: list[str] = field(default_factory=list)
    reject_message: str = ""
    # The gRPC code name a rejection was answered with ("FAILED_PRECONDITION"), so that
    # an idempotent resubmission answers exactly as the first submission did.
    reject_code: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def average_fill_price(self) -> Decimal | None:
        if not self.filled_quantity:
            return None
        return self.filled_notional / self.filled_quantity


@dataclass(frozen=True)
class Fill:
    """One execution as a venue reports it, before it gets its outbox sequence."""

    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    time: datetime


@dataclass(frozen=True)
class Execution:
    sequence: int
    venue: str
    trade_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    time: datetime


def apply_fill(order: Order, fill: Fill) -> None:
    """Adds `fill` to the order's totals and moves its status on."""
    order.filled_quantity += fill.quantity
    order.filled_notional += fill.quantity * fill.price
    order.fee += fill.fee
    order.fee_currency = fill.fee_currency
    order.update_time = fill.time
    order.status = (
        OrderStatus.FILLED if order.filled_quantity >= order.quantity
        else OrderStatus.PARTIALLY_FILLED
    )  # fmt: skip
