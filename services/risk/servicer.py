"""RiskService: translates each RPC to the risk domain and back.

One method per RPC, named as in protos/edgequant/risk/v1/risk.proto. Requests are
checked here (bad input raises InvalidArgument naming each field and changes nothing);
the decisions are the engine's (services.risk.engine) and the rules'. An account_id
names a venue account (its venue's name); empty means the global kill switch, the
global default limits or, for exposure, the sum over every account. `ready` is the
server's readiness hook (common.server): health says SERVING once it returns.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator
from dataclasses import fields, replace
from datetime import timedelta
from decimal import Decimal

from google.protobuf.duration_pb2 import Duration

from common.service import Context
from common.validation import Violations
from common.wire import timestamp
from edgequant.common.v1 import common_pb2
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from edgequant.risk.v1.risk_pb2 import (
    CheckOrderRequest,
    CheckOrderResponse,
    ComputeVaRRequest,
    ComputeVaRResponse,
    GetExposureRequest,
    GetExposureResponse,
    GetLimitsRequest,
    GetLimitsResponse,
    GetTradingStateRequest,
    GetTradingStateResponse,
    RunStressTestRequest,
    RunStressTestResponse,
    SetTradingStateRequest,
    SetTradingStateResponse,
    StreamRiskEventsRequest,
    StreamRiskEventsResponse,
    UpdateLimitsRequest,
    UpdateLimitsResponse,
)
from services.risk.book import ZERO, Side
from services.risk.candles import TIMEFRAME_NAMES, TIMEFRAMES, Timeframe
from services.risk.engine import AccountRisk, Exposure, RiskEngine
from services.risk.events import EventHub, RiskEvent
from services.risk.limits import LIMIT_FIELDS, Limits, RawLimits, to_raw, validate_limits
from services.risk.portfolio_var import PortfolioVar, VarRequest
from services.risk.rules import OrderIntent, Violation
from services.risk.settings import VarSettings
from services.risk.stress import PriceShock, run_stress_test
from services.risk.trading_state import TradingState, TradingStateChange
from services.risk.var import VarMethod

log = logging.getLogger("edgequant.risk")

# Who changed limits or the trading state: the gateway passes the token's name here.
ACTOR_HEADER = "x-actor"
DEFAULT_ACTOR = "grpc"
MAX_REASON_LENGTH = 500
MAX_LOOKBACK = 5000
DEFAULT_SIMULATIONS = 10_000
DEFAULT_CONFIDENCE = 0.99
ONE_DAY = timedelta(days=1)

_SIDES = {common_pb2.SIDE_BUY: Side.BUY, common_pb2.SIDE_SELL: Side.SELL}
_APPROVED = CheckOrderResponse(decision=risk_pb2.DECISION_APPROVE)


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(
        self,
        engine: RiskEngine,
        events: EventHub,
        portfolio_var: PortfolioVar,
        var_settings: VarSettings,
        default_account: str,
        *,
        ready_timeout_seconds: float | None = None,
    ) -> None:
        self.engine = engine
        self.events = events
        self.portfolio_var = portfolio_var
        self.var_settings = var_settings
        self.default_account = default_account
        self.ready_timeout_seconds = ready_timeout_seconds

    async def ready(self) -> None:
        """Returns once every venue account's book has synced once (common.server then
        reports SERVING), or after `ready_timeout_seconds`: an account that cannot sync
        must not keep the others from trading (its orders stay denied RISK_STATE_STALE)."""
        try:
            await asyncio.wait_for(self.engine.synced(), self.ready_timeout_seconds)
        except TimeoutError:
            log.warning(
                "serving before every account synced: their orders are denied until they do",
                extra={
                    "accounts": ", ".join(self.engine.unsynced_accounts())
                    or "venues not listed yet"
                },
            )

    def _account(self, account_id: str) -> AccountRisk:
        return self.engine.account(account_id or self.default_account)

    async def CheckOrder(self, request: CheckOrderRequest, context: Context) -> CheckOrderResponse:
        check = self.engine.preview if request.dry_run else self.engine.check
        violations = check(self._order_intent(request), request.venue or self.default_account)
        if not violations:
            return _APPROVED
        return CheckOrderResponse(
            decision=risk_pb2.DECISION_DENY, violations=[_violation(v) for v in violations]
        )

    async def GetLimits(self, request: GetLimitsRequest, context: Context) -> GetLimitsResponse:
        limits = (
            self.engine.account(request.account_id).limits
            if request.account_id
            else self.engine.limits
        )
        return GetLimitsResponse(limits=limits_to_proto(limits))

    async def UpdateLimits(
        self, request: UpdateLimitsRequest, context: Context
    ) -> UpdateLimitsResponse:
        violations = Violations()
        paths = tuple(request.update_mask.paths) or LIMIT_FIELDS
        for path in paths:
            violations.require(
                path in LIMIT_FIELDS,
                "update_mask",
                f"unknown limit {path[:60]!r}; known: {', '.join(LIMIT_FIELDS)}",
            )
        violations.raise_if_any()
        account_id = request.account_id
        current = to_raw(
            self.engine.account(account_id).limits if account_id else self.engine.limits
        )
        wanted = limits_from_proto(request.limits)
        merged = replace(
            current, **{_raw_name(path): getattr(wanted, _raw_name(path)) for path in paths}
        )
        limits = validate_limits(merged, violations)
        violations.raise_if_any()
        updated = await self.engine.update_limits(limits, _actor(context), account_id)
        return UpdateLimitsResponse(limits=limits_to_proto(updated))

    async def GetTradingState(
        self, request: GetTradingStateRequest, context: Context
    ) -> GetTradingStateResponse:
        if request.account_id:
            account = self.engine.account(request.account_id)
            return GetTradingStateResponse(trading_state=_trading_state(account.trading_state))
        return GetTradingStateResponse(
            trading_state=_trading_state(self.engine.trading_state),
            accounts=[
                _trading_state(account.trading_state)
                for _, account in sorted(self.engine.accounts.items())
            ],
        )

    async def SetTradingState(
        self, request: SetTradingStateRequest, context: Context
    ) -> SetTradingStateResponse:
        violations = Violations()
        violations.require(
            request.state in {state.value for state in TradingState},
            "state",
            "must be TRADING_STATE_ACTIVE, TRADING_STATE_REDUCING or TRADING_STATE_HALTED",
        )
        violations.require(
            len(request.reason) <= MAX_REASON_LENGTH,
            "reason",
            f"must be at most {MAX_REASON_LENGTH} characters",
        )
        violations.raise_if_any()
        change = await self.engine.set_trading_state(
            TradingState(request.state), request.reason, _actor(context), request.account_id
        )
        return SetTradingStateResponse(trading_state=_trading_state(change))

    async def GetExposure(
        self, request: GetExposureRequest, context: Context
    ) -> GetExposureResponse:
        return GetExposureResponse(exposure=_exposure(self.engine.exposure(request.account_id)))

    async def ComputeVaR(self, request: ComputeVaRRequest, context: Context) -> ComputeVaRResponse:
        parsed = self._var_request(request)
        account = self._account(request.account_id)
        result = await self.portfolio_var.compute(parsed, account.book, account.account_id)
        horizon = Duration()
        horizon.FromTimedelta(parsed.horizon)
        return ComputeVaRResponse(
            method=risk_pb2.VarMethod.ValueType(parsed.method.value),
            confidence=parsed.confidence,
            horizon=horizon,
            value_at_risk=result.value_at_risk,
            conditional_value_at_risk=result.conditional_value_at_risk,
            observations=result.observations,
        )

    async def RunStressTest(
        self, request: RunStressTestRequest, context: Context
    ) -> RunStressTestResponse:
        violations = Violations()
        shocks = []
        for index, shock in enumerate(request.shocks):
            field = f"shocks[{index}]"
            violations.require(bool(shock.target), f"{field}.target", "is required")
            if not math.isfinite(shock.change) or shock.change <= -1:
                violations.add(
                    f"{field}.change", "must be a finite fraction above -1 (-0.2 is -20%)"
                )
                continue
            shocks.append(PriceShock(shock.target, Decimal(repr(shock.change))))
        violations.raise_if_any()
        results = run_stress_test(self._account(request.account_id).book, shocks)
        return RunStressTestResponse(
            results=[
                risk_pb2.StressResult(
                    symbol=r.symbol,
                    quantity=str(r.quantity),
                    mark_price=str(r.mark_price),
                    shocked_price=str(r.shocked_price),
                    pnl=str(r.pnl),
                )
                for r in results
            ],
            total_pnl=str(sum((r.pnl for r in results), ZERO)),
        )

    async def StreamRiskEvents(
        self, request: StreamRiskEventsRequest, context: Context
    ) -> AsyncIterator[StreamRiskEventsResponse]:
        async for event in self.events.subscribe():
            yield StreamRiskEventsResponse(event=_event(event))

    # --- requests ------------------------------------------------------------------------

    def _order_intent(self, request: CheckOrderRequest) -> OrderIntent:
        """The hot path's parse: plain decimals and known enums straight through; anything
        else takes the full validation, which names every bad field."""
        side = _SIDES.get(request.side)
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
            return self._validated_order_intent(request)
        return OrderIntent(
            request.symbol,
            side,
            quantity,
            price,
            request.reduce_only,
            request.order_id,
            request.client_order_id,
        )

    def _validated_order_intent(self, request: CheckOrderRequest) -> OrderIntent:
        violations = Violations()
        violations.require(bool(request.symbol), "symbol", "is required")
        side = _SIDES.get(request.side)
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

    def _var_request(self, request: ComputeVaRRequest) -> VarRequest:
        violations = Violations()
        confidence = request.confidence or DEFAULT_CONFIDENCE
        violations.require(0.5 <= confidence < 1, "confidence", "must be in [0.5, 1), e.g. 0.99")
        horizon = (
            violations.duration("horizon", request.horizon)
            if request.HasField("horizon")
            else ONE_DAY
        )
        if horizon is not None:
            violations.require(horizon > timedelta(0), "horizon", "must be positive")
        timeframe = request.timeframe or self._default_timeframe()
        violations.require(timeframe in TIMEFRAMES, "timeframe", "is not a known timeframe")
        lookback = request.lookback or self.var_settings.lookback
        least = self.var_settings.min_observations
        violations.require(
            least <= lookback <= MAX_LOOKBACK,
            "lookback",
            f"must be between {least} (risk.var.min_observations) and {MAX_LOOKBACK}",
        )
        simulations = request.simulations or DEFAULT_SIMULATIONS
        violations.require(
            100 <= simulations <= self.var_settings.max_simulations,
            "simulations",
            f"must be between 100 and {self.var_settings.max_simulations}",
        )
        method = request.method or risk_pb2.VAR_METHOD_HISTORICAL
        violations.require(
            method in {known.value for known in VarMethod},
            "method",
            "must be VAR_METHOD_HISTORICAL, VAR_METHOD_PARAMETRIC or VAR_METHOD_MONTE_CARLO",
        )
        violations.raise_if_any()
        assert horizon is not None  # else a violation was raised
        return VarRequest(
            method=VarMethod(method),
            confidence=confidence,
            horizon=horizon,
            timeframe=timeframe,
            lookback=lookback,
            simulations=simulations,
            seed=request.seed,
        )

    def _default_timeframe(self) -> Timeframe:
        return TIMEFRAME_NAMES[self.var_settings.timeframe]


# --- proto <-> domain ------------------------------------------------------------------------


def limits_from_proto(limits: risk_pb2.Limits) -> RawLimits:
    """The request's limits, unchecked (validate_limits checks them)."""
    values = {
        spec.name: getattr(limits, spec.name)
        for spec in fields(RawLimits)
        if spec.name not in ("allowed_symbols", "symbol_limits", "loss_cooldown_seconds")
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


def limits_to_proto(limits: Limits) -> risk_pb2.Limits:
    raw = to_raw(limits)
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
            if spec.name not in ("allowed_symbols", "symbol_limits", "loss_cooldown_seconds")
        },
    )
    if raw.loss_cooldown_seconds:
        message.loss_cooldown.FromTimedelta(timedelta(seconds=raw.loss_cooldown_seconds))
    return message


# Narrower than common.validation's rules (at most 20 integer and 18 decimal digits):
# what it accepts, they accept too.
_PLAIN_DECIMAL = re.compile(r"-?\d{1,20}(?:\.\d{1,18})?")


def _plain_decimal(text: str) -> Decimal | None:
    return Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else None


def _raw_name(path: str) -> str:
    return "loss_cooldown_seconds" if path == "loss_cooldown" else path


def _actor(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_HEADER and isinstance(value, str) and value:
            return value[:128]
    return DEFAULT_ACTOR


def _violation(violation: Violation) -> risk_pb2.Violation:
    return risk_pb2.Violation(
        reason=violation.reason,
        message=violation.message,
        limit=violation.limit,
        actual=violation.actual,
    )


def _trading_state(change: TradingStateChange) -> risk_pb2.TradingStateInfo:
    return risk_pb2.TradingStateInfo(
        state=risk_pb2.TradingState.ValueType(change.state.value),
        reason=change.reason,
        updated_by=change.updated_by,
        update_time=timestamp(change.update_time),
        account_id=change.account_id,
    )


def _exposure(exposure: Exposure) -> risk_pb2.Exposure:
    return risk_pb2.Exposure(
        gross=str(exposure.gross),
        net=str(exposure.net),
        equity=str(exposure.equity),
        leverage=""
        if exposure.leverage is None
        else str(exposure.leverage.quantize(Decimal("0.0001"))),
        symbols=[
            risk_pb2.SymbolExposure(
                symbol=row.symbol,
                quantity=str(row.quantity),
                mark_price="" if row.mark_price is None else str(row.mark_price),
                notional=str(row.notional),
                open_order_notional=str(row.open_order_notional),
                account_id=row.account_id,
            )
            for row in exposure.symbols
        ],
        account_id=exposure.account_id,
    )


def _event(event: RiskEvent) -> risk_pb2.RiskEvent:
    message = risk_pb2.RiskEvent(
        type=risk_pb2.RiskEventType.ValueType(event.type.value),
        time=timestamp(event.time),
        message=event.message,
        violations=[_violation(v) for v in event.violations],
        order_id=event.order_id,
        client_order_id=event.client_order_id,
        account_id=event.account_id,
    )
    if event.trading_state is not None:
        message.trading_state.CopyFrom(_trading_state(event.trading_state))
    return message
