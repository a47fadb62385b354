"""What a runner is: its configuration and state, its decisions and events (domain types)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum

from strategies.sizing import Sizing


class RunnerState(Enum):
    STOPPED = "stopped"
    WARMING_UP = "warming_up"
    RUNNING = "running"
    FAILED = "failed"


class Mode(Enum):
    """The venue's kind, from the exchange's ListVenues."""

    PAPER = "paper"
    SANDBOX = "sandbox"
    LIVE = "live"


class OrderStatus(StrEnum):
    """Where a decision's order stands, as the exchange last answered. Stored by name
    (the strategy_decisions.order_status column); converted at the edges (venue.py from
    the exchange's answers, convert.py to the strategy API), never by proto number."""

    PENDING_NEW = "pending_new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        """No later answer changes the order (its fills are all reported)."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)
)
OPEN_STATUSES = frozenset(
    (
        OrderStatus.PENDING_NEW,
        OrderStatus.OPEN,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PARTIALLY_FILLED,
    )
)


class EventKind(Enum):
    STATE = "state"
    DECISION = "decision"
    FILL = "fill"
    SKIPPED_BARS = "skipped_bars"
    ERROR = "error"
    RECONCILED = "reconciled"


ZERO = Decimal(0)


def client_order_id_prefix(runner_id: str) -> str:
    """Every order of a runner carries this prefix: its fills are the runner's own."""
    return f"r-{runner_id}-"


def runner_of(client_order_id: str) -> str | None:
    """The runner id in a runner's client_order_id, or None for any other order."""
    if not client_order_id.startswith("r-"):
        return None
    runner_id, dash, _rest = client_order_id[2:].partition("-")
    return runner_id if dash and runner_id else None


@dataclass(frozen=True)
class Runner:
    runner_id: str
    strategy: str
    parameters: dict[str, float]
    venue: str
    symbol: str
    timeframe: str
    mode: Mode
    capital: Decimal
    sizing: Sizing
    size: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    allow_short: bool
    create_time: datetime
    warmup_bars: int
    backtest_job_id: str = ""
    state: RunnerState = RunnerState.STOPPED
    entries_paused: bool = False
    position: Decimal = ZERO
    cash: Decimal = ZERO
    entry_price: Decimal = ZERO
    # The strategy's wanted position (+1, 0, -1) as of the last decision.
    target: int = 0
    last_bar_time: datetime | None = None
    stop_reason: str = ""
    # Not stored: the loop's liveness.
    heartbeat_time: datetime | None = None
    lateness_seconds: float = 0.0

    @property
    def prefix(self) -> str:
        return client_order_id_prefix(self.runner_id)

    @property
    def active(self) -> bool:
        """Whether the service runs its loop (and resumes it after a restart)."""
        return self.state in (RunnerState.WARMING_UP, RunnerState.RUNNING)

    def but(self, **changes: object) -> Runner:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decision:
    runner_id: str
    bar_time: datetime
    # None: the strategy said NaN (keep the target).
    signal: float | None
    target: int
    position_before: Decimal
    # Signed: negative sells. 0: no order.
    order_quantity: Decimal
    expected_price: Decimal
    reason: str
    decide_time: datetime
    client_order_id: str = ""
    order_id: str = ""
    # None until the exchange answered.
    order_status: OrderStatus | None = None
    filled_quantity: Decimal = ZERO
    filled_notional: Decimal = ZERO
    message: str = ""
    id: int = 0

    @property
    def fill_price(self) -> Decimal | None:
        if self.filled_quantity == 0:
            return None
        return self.filled_notional / self.filled_quantity


@dataclass(frozen=True)
class RunnerEvent:
    runner: Runner
    kind: EventKind
    time: datetime
    message: str = ""
    decision: Decision | None = None


@dataclass(frozen=True)
class Fill:
    """One execution of a runner's order, as the exchange reported it."""

    sequence: int
    runner_id: str
    client_order_id: str
    # Signed: negative for a sell.
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str


@dataclass
class MarketRules:
    """What the runner needs of the venue's market to size and round orders."""

    base: str
    quote: str
    quantity_increment: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    taker_fee: Decimal
    spot: bool = True
    extra: dict[str, str] = field(default_factory=dict)
