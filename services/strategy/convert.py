"""Proto <-> domain for the strategy service (the servicer's only translation)."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from common import timeframes
from edgequant.common.v1 import common_pb2
from edgequant.strategy.v1 import strategy_pb2
from services.strategy.runners import (
    Decision,
    EventKind,
    Mode,
    OrderStatus,
    Runner,
    RunnerEvent,
    RunnerState,
)
from strategies.sizing import Sizing

STATES = {
    RunnerState.STOPPED: strategy_pb2.RUNNER_STATE_STOPPED,
    RunnerState.WARMING_UP: strategy_pb2.RUNNER_STATE_WARMING_UP,
    RunnerState.RUNNING: strategy_pb2.RUNNER_STATE_RUNNING,
    RunnerState.FAILED: strategy_pb2.RUNNER_STATE_FAILED,
}
MODES = {
    Mode.PAPER: strategy_pb2.RUNNER_MODE_PAPER,
    Mode.SANDBOX: strategy_pb2.RUNNER_MODE_SANDBOX,
    Mode.LIVE: strategy_pb2.RUNNER_MODE_LIVE,
}
SIZINGS = {
    Sizing.FRACTION_OF_EQUITY: strategy_pb2.SIZING_FRACTION_OF_EQUITY,
    Sizing.FIXED_QUANTITY: strategy_pb2.SIZING_FIXED_QUANTITY,
    Sizing.ALL_IN_WHOLE_UNITS: strategy_pb2.SIZING_ALL_IN_WHOLE_UNITS,
}
SIZING_OF = {value: key for key, value in SIZINGS.items()}
ORDER_STATUSES = {
    OrderStatus.PENDING_NEW: common_pb2.ORDER_STATUS_PENDING_NEW,
    OrderStatus.OPEN: common_pb2.ORDER_STATUS_OPEN,
    OrderStatus.PARTIALLY_FILLED: common_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    OrderStatus.FILLED: common_pb2.ORDER_STATUS_FILLED,
    OrderStatus.PENDING_CANCEL: common_pb2.ORDER_STATUS_PENDING_CANCEL,
    OrderStatus.CANCELED: common_pb2.ORDER_STATUS_CANCELED,
    OrderStatus.REJECTED: common_pb2.ORDER_STATUS_REJECTED,
    OrderStatus.EXPIRED: common_pb2.ORDER_STATUS_EXPIRED,
}
KINDS = {
    EventKind.STATE: strategy_pb2.RUNNER_EVENT_KIND_STATE,
    EventKind.DECISION: strategy_pb2.RUNNER_EVENT_KIND_DECISION,
    EventKind.FILL: strategy_pb2.RUNNER_EVENT_KIND_FILL,
    EventKind.SKIPPED_BARS: strategy_pb2.RUNNER_EVENT_KIND_SKIPPED_BARS,
    EventKind.ERROR: strategy_pb2.RUNNER_EVENT_KIND_ERROR,
    EventKind.RECONCILED: strategy_pb2.RUNNER_EVENT_KIND_RECONCILED,
}


def _stamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _decimal(value: object) -> str:
    text = format(value, "f")
    return "0" if text in ("-0", "0E-8") else text


def runner_message(runner: Runner) -> strategy_pb2.Runner:
    return strategy_pb2.Runner(
        runner_id=runner.runner_id,
        strategy=runner.strategy,
        parameters=runner.parameters,
        venue=runner.venue,
        symbol=runner.symbol,
        timeframe=timeframes.to_proto(runner.timeframe),  # type: ignore[arg-type]
        mode=MODES[runner.mode],
        state=STATES[runner.state],
        entries_paused=runner.entries_paused,
        capital=_decimal(runner.capital),
        sizing=SIZINGS[runner.sizing],
        size=_decimal(runner.size),
        stop_loss=_decimal(runner.stop_loss) if runner.stop_loss else "",
        take_profit=_decimal(runner.take_profit) if runner.take_profit else "",
        allow_short=runner.allow_short,
        position=_decimal(runner.position),
        cash=_decimal(runner.cash),
        entry_price=_decimal(runner.entry_price) if runner.entry_price else "",
        target=runner.target,
        last_bar_time=_stamp(runner.last_bar_time),
        heartbeat_time=_stamp(runner.heartbeat_time),
        lateness_seconds=runner.lateness_seconds,
        stop_reason=runner.stop_reason,
        backtest_job_id=runner.backtest_job_id,
        create_time=_stamp(runner.create_time),
        client_order_id_prefix=runner.prefix,
        warmup_bars=runner.warmup_bars,
    )


def decision_message(decision: Decision) -> strategy_pb2.Decision:
    fill = decision.fill_price
    return strategy_pb2.Decision(
        runner_id=decision.runner_id,
        bar_time=_stamp(decision.bar_time),
        signal=float("nan") if decision.signal is None else decision.signal,
        target=decision.target,
        position_before=_decimal(decision.position_before),
        order_quantity=_decimal(decision.order_quantity),
        client_order_id=decision.client_order_id,
        order_id=decision.order_id,
        order_status=(
            common_pb2.ORDER_STATUS_UNSPECIFIED
            if decision.order_status is None
            else ORDER_STATUSES[decision.order_status]
        ),
        expected_price=_decimal(decision.expected_price) if decision.expected_price else "",
        fill_price=_decimal(fill) if fill is not None else "",
        reason=decision.reason,
        message=decision.message,
        decide_time=_stamp(decision.decide_time),
    )


def event_message(event: RunnerEvent) -> strategy_pb2.RunnerEvent:
    return strategy_pb2.RunnerEvent(
        runner_id=event.runner.runner_id,
        kind=KINDS[event.kind],
        time=_stamp(event.time),
        message=event.message,
        runner=runner_message(event.runner),
        decision=decision_message(event.decision) if event.decision else None,
    )
