"""Risk domain objects <-> protobuf messages of the risk contract.

Every enum is translated by an explicit map (the domain's values are its own, not the
proto's numbers), decimals go out in plain notation (common.wire.decimal_text) and
requests are parsed here: bad input raises InvalidArgument naming each field.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from datetime import timedelta
from decimal import Decimal

from common import timeframes
from common.validation import Violations
from common.wire import decimal_text, timestamp
from edgequant.common.v1 import common_pb2
from edgequant.risk.v1 import risk_pb2
from services.risk.closes import VAR_TIMEFRAMES
from services.risk.engine import Exposure
from services.risk.events import RiskEvent, RiskEventType
from services.risk.limits import Limits, RawLimits, to_raw
from services.risk.portfolio_var import VarRequest
from services.risk.risk_book import OrderSide
from services.risk.rules import OrderIntent, Violation
from services.risk.settings import VarSettings
from services.risk.stress import PriceShock, StressResult
from services.risk.trading_state import TradingState, TradingStateChange
from services.risk.var import VarMethod, VarResult

MAX_LOOKBACK = 5000
DEFAULT_SIMULATIONS = 10_000
MIN_SIMULATIONS = 100
DEFAULT_CONFIDENCE = 0.99
ONE_DAY = timedelta(days=1)

SIDE_OF = {common_pb2.SIDE_BUY: OrderSide.BUY, common_pb2.SIDE_SELL: OrderSide.SELL}
TRADING_STATES = {
    TradingState.ACTIVE: risk_pb2.TRADING_STATE_ACTIVE,
    TradingState.REDUCING: risk_pb2.TRADING_STATE_REDUCING,
    TradingState.HALTED: risk_pb2.TRADING_STATE_HALTED,
}
TRADING_STATE_OF = {value: key for key, value in TRADING_STATES.items()}
VAR_METHODS = {
    VarMethod.HISTORICAL: risk_pb2.VAR_METHOD_HISTORICAL,
    VarMethod.PARAMETRIC: risk_pb2.VAR_METHOD_PARAMETRIC,
    VarMethod.MONTE_CARLO: risk_pb2.VAR_METHOD_MONTE_CARLO,
}
VAR_METHOD_OF = {value: key for key, value in VAR_METHODS.items()}
EVENT_TYPES = {
    RiskEventType.ORDER_DENIED: risk_pb2.RISK_EVENT_TYPE_ORDER_DENIED,
    RiskEventType.LIMIT_BREACHED: risk_pb2.RISK_EVENT_TYPE_LIMIT_BREACHED,
    RiskEventType.TRADING_STATE_CHANGED: risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED,
    RiskEventType.LIMITS_UPDATED: risk_pb2.RISK_EVENT_TYPE_LIMITS_UPDATED,
    RiskEventType.ORDER_OUTCOME_UNKNOWN: risk_pb2.RISK_EVENT_TYPE_ORDER_OUTCOME_UNKNOWN,
}
# RawLimits fields that are not copied one to one.
_SHAPED = ("allowed_symbols", "symbol_limits", "loss_cooldown_seconds")

# --- requests ------------------------------------------------------------------------

# Narrower than common.validation's rules (at most 20 integer and 18 decimal digits):
# what it accepts, they accept too.
_PLAIN_DECIMAL = re.compile(r"-?\d{1,20}(?:\.\d{1,18})?")


def order_intent(request: risk_pb2.CheckOrderRequest) -> OrderIntent:
    """The hot path's parse: plain decimals and known enums straight through; anything
    else takes the full validation, which names every bad field."""
    side = SIDE_OF.get(request.side)
    quantity = _plain_decimal(request.quantity)
    limit = request.type == common_pb2.ORDER_TYPE_LIMIT
    price = _plain_decimal(request.price) if limit else None
    if (
        side is None
        or quantity is None
        or (limit and price is None)
        or not (limit or request.type == common_pb2.ORDER_TYPE_MARKET)
        or not request.symbol
    ):
        return _validated_order_intent(request)
    return OrderIntent(
        request.symbol,
        side,
        quantity,
        price,
        request.reduce_only,
        request.order_id,
        request.client_order_id,
    )


def _validated_order_intent(request: risk_pb2.CheckOrderRequest) -> OrderIntent:
    violations = Violations()
    violations.require(bool(request.symbol), "symbol", "is required")
    side = SIDE_OF.get(request.side)
    violations.require(side is not None, "side", "must be SIDE_BUY or SIDE_SELL")
    quantity = violations.decimal("quantity", request.quantity)
    price: Decimal | None = None
    if request.type == common_pb2.ORDER_TYPE_LIMIT:
        price = violations.decimal("price", request.price)
    elif request.type != common_pb2.ORDER_TYPE_MARKET:
        violations.add("type", "must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT")
    violations.raise_if_any()
    assert side is not None
    assert quantity is not None
    return OrderIntent(
        symbol=request.symbol,
        side=side,
        quantity=quantity,
        price=price,
        reduce_only=request.reduce_only,
        order_id=request.order_id,
        client_order_id=request.client_order_id,
    )


def _plain_decimal(text: str) -> Decimal | None:
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else None


def trading_state_of(request: risk_pb2.SetTradingStateRequest, max_reason: int) -> TradingState:
    violations = Violations()
    state = TRADING_STATE_OF.get(request.state)
    violations.require(
        state is not None,
        "state",
        "must be TRADING_STATE_ACTIVE, TRADING_STATE_REDUCING or TRADING_STATE_HALTED",
    )
    violations.require(
        len(request.reason) <= max_reason, "reason", f"must be at most {max_reason} characters"
    )
    violations.raise_if_any()
    assert state is not None
    return state


def var_request(request: risk_pb2.ComputeVaRRequest, settings: VarSettings) -> VarRequest:
    violations = Violations()
    confidence = request.confidence or DEFAULT_CONFIDENCE
    violations.require(0.5 <= confidence < 1, "confidence", "must be in [0.5, 1), e.g. 0.99")
    horizon = (
        violations.duration("horizon", request.horizon) if request.HasField("horizon") else ONE_DAY
    )
    if horizon is not None:
        violations.require(horizon > timedelta(0), "horizon", "must be positive")
    timeframe = settings.timeframe
    if request.timeframe:
        known = timeframes.from_proto(request.timeframe)
        timeframe = known.name if known is not None else ""
    violations.require(timeframe in VAR_TIMEFRAMES, "timeframe", "is not a known timeframe")
    lookback = request.lookback or settings.lookback
    least = settings.min_observations
    violations.require(
        least <= lookback <= MAX_LOOKBACK,
        "lookback",
        f"must be between {least} (risk.var.min_observations) and {MAX_LOOKBACK}",
    )
    simulations = request.simulations or DEFAULT_SIMULATIONS
    violations.require(
        MIN_SIMULATIONS <= simulations <= settings.max_simulations,
        "simulations",
        f"must be between {MIN_SIMULATIONS} and {settings.max_simulations}",
    )
    method = VAR_METHOD_OF.get(request.method or risk_pb2.VAR_METHOD_HISTORICAL)
    violations.require(
        method is not None,
        "method",
        "must be VAR_METHOD_HISTORICAL, VAR_METHOD_PARAMETRIC or VAR_METHOD_MONTE_CARLO",
    )
    violations.raise_if_any()
    # Else a violation was raised.
    assert horizon is not None
    assert method is not None
    return VarRequest(
        method=method,
        confidence=confidence,
        horizon=horizon,
        timeframe=timeframe,
        lookback=lookback,
        simulations=simulations,
        seed=request.seed,
    )


def price_shocks(request: risk_pb2.RunStressTestRequest) -> list[PriceShock]:
    violations = Violations()
    shocks = []
    for index, shock in enumerate(request.shocks):
        field = f"shocks[{index}]"
        violations.require(bool(shock.target), f"{field}.target", "is required")
        if not math.isfinite(shock.change) or shock.change <= -1:
            violations.add(f"{field}.change", "must be a finite fraction above -1 (-0.2 is -20%)")
            continue
        shocks.append(PriceShock(shock.target, Decimal(repr(shock.change))))
    violations.raise_if_any()
    return shocks


def limits_from_proto(limits: risk_pb2.Limits) -> RawLimits:
    """The request's limits, unchecked (validate_limits checks them)."""
    values = {
        spec.name: getattr(limits, spec.name)
        for spec in fields(RawLimits)
        if spec.name not in _SHAPED
    }
    return RawLimits(
        allowed_symbols=tuple(limits.allowed_symbols),
        symbol_limits={
            symbol: (item.max_position_quantity, item.max_position_notional)
            for symbol, item in limits.symbol_limits.items()
        },
        # From the parts: ToTimedelta overflows on a Duration past its valid range.
        loss_cooldown_seconds=limits.loss_cooldown.seconds + limits.loss_cooldown.nanos / 1e9,
        **values,
    )


# --- answers -------------------------------------------------------------------------


def limits_to_proto(limits: Limits) -> risk_pb2.Limits:
    raw = to_raw(limits)  # decimals in plain notation already
    message = risk_pb2.Limits(
        allowed_symbols=raw.allowed_symbols,
        symbol_limits={
            symbol: risk_pb2.SymbolLimits(
                max_position_quantity=quantity, max_position_notional=notional
            )
            for symbol, (quantity, notional) in raw.symbol_limits.items()
        },
        **{
            spec.name: getattr(raw, spec.name)
            for spec in fields(RawLimits)
            if spec.name not in _SHAPED
        },
    )
    # Set even when zero: an unset Duration is left out of the JSON, and a client reading
    # the limits would find no loss_cooldown at all where it is "0s".
    message.loss_cooldown.FromTimedelta(timedelta(seconds=raw.loss_cooldown_seconds))
    return message


def violation_to_proto(violation: Violation) -> risk_pb2.Violation:
    return risk_pb2.Violation(
        reason=violation.reason,
        message=violation.message,
        limit=violation.limit,
        actual=violation.actual,
    )


def trading_state_to_proto(change: TradingStateChange) -> risk_pb2.TradingStateInfo:
    return risk_pb2.TradingStateInfo(
        state=TRADING_STATES[change.state],
        reason=change.reason,
        updated_by=change.updated_by,
        update_time=timestamp(change.update_time),
        account_id=change.account_id,
    )


def exposure_to_proto(exposure: Exposure) -> risk_pb2.Exposure:
    return risk_pb2.Exposure(
        gross=decimal_text(exposure.gross),
        net=decimal_text(exposure.net),
        equity=decimal_text(exposure.equity),
        leverage=""
        if exposure.leverage is None
        else decimal_text(exposure.leverage.quantize(Decimal("0.0001"))),
        symbols=[
            risk_pb2.SymbolExposure(
                symbol=row.symbol,
                quantity=decimal_text(row.quantity),
                mark_price=decimal_text(row.mark_price),
                notional=decimal_text(row.notional),
                open_order_notional=decimal_text(row.open_order_notional),
                account_id=row.account_id,
            )
            for row in exposure.symbols
        ],
        account_id=exposure.account_id,
    )


def var_to_proto(request: VarRequest, result: VarResult) -> risk_pb2.ComputeVaRResponse:
    response = risk_pb2.ComputeVaRResponse(
        method=VAR_METHODS[request.method],
        confidence=request.confidence,
        value_at_risk=result.value_at_risk,
        conditional_value_at_risk=result.conditional_value_at_risk,
        observations=result.observations,
    )
    response.horizon.FromTimedelta(request.horizon)
    return response


def stress_to_proto(results: list[StressResult]) -> risk_pb2.RunStressTestResponse:
    return risk_pb2.RunStressTestResponse(
        results=[
            risk_pb2.StressResult(
                symbol=r.symbol,
                quantity=decimal_text(r.quantity),
                mark_price=decimal_text(r.mark_price),
                shocked_price=decimal_text(r.shocked_price),
                pnl=decimal_text(r.pnl),
            )
            for r in results
        ],
        total_pnl=decimal_text(sum((r.pnl for r in results), Decimal(0))),
    )


def event_to_proto(event: RiskEvent) -> risk_pb2.RiskEvent:
    message = risk_pb2.RiskEvent(
        type=EVENT_TYPES[event.type],
        time=timestamp(event.time),
        message=event.message,
        violations=[violation_to_proto(v) for v in event.violations],
        order_id=event.order_id,
        client_order_id=event.client_order_id,
        account_id=event.account_id,
    )
    if event.trading_state is not None:
        message.trading_state.CopyFrom(trading_state_to_proto(event.trading_state))
    return message
