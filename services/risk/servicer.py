"""RiskService: translates each RPC to the risk domain and back.

One method per RPC, named as in protos/edgequant/risk/v1/risk.proto. Requests are
parsed and answers built by services.risk.convert (bad input raises InvalidArgument
naming each field and changes nothing); the decisions are the engine's
(services.risk.engine) and the rules'. An account_id
names a venue account (its venue's name); empty means the global kill switch, the
global default limits or, for exposure, the sum over every account. `ready` is the
server's readiness hook (common.server): health says SERVING once it returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from common.service import Context
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
from services.risk import convert
from services.risk.engine import AccountRisk, RiskEngine
from services.risk.events import RiskEvents
from services.risk.limits import updated_limits
from services.risk.portfolio_var import PortfolioVar
from services.risk.settings import VarSettings
from services.risk.stress import run_stress_test

log = logging.getLogger("edgequant.risk")

# Who changed limits or the trading state: the gateway passes the token's name here.
ACTOR_HEADER = "x-actor"
DEFAULT_ACTOR = "grpc"
MAX_REASON_LENGTH = 500

_APPROVED = CheckOrderResponse(decision=risk_pb2.DECISION_APPROVE)


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(
        self,
        engine: RiskEngine,
        events: RiskEvents,
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
        violations = check(convert.order_intent(request), request.venue or self.default_account)
        if not violations:
            return _APPROVED
        return CheckOrderResponse(
            decision=risk_pb2.DECISION_DENY,
            violations=[convert.violation_to_proto(v) for v in violations],
        )

    async def GetLimits(self, request: GetLimitsRequest, context: Context) -> GetLimitsResponse:
        if not request.account_id:
            return GetLimitsResponse(limits=convert.limits_to_proto(self.engine.limits))
        account = self.engine.account(request.account_id)
        return GetLimitsResponse(
            limits=convert.limits_to_proto(account.limits),
            account_id=account.account_id,
            follows_global_defaults=not account.own_limits,
        )

    async def UpdateLimits(
        self, request: UpdateLimitsRequest, context: Context
    ) -> UpdateLimitsResponse:
        account_id = request.account_id
        current = self.engine.account(account_id).limits if account_id else self.engine.limits
        limits = updated_limits(
            current, convert.limits_from_proto(request.limits), tuple(request.update_mask.paths)
        )
        updated = await self.engine.update_limits(limits, _actor(context), account_id)
        return UpdateLimitsResponse(limits=convert.limits_to_proto(updated))

    async def GetTradingState(
        self, request: GetTradingStateRequest, context: Context
    ) -> GetTradingStateResponse:
        if request.account_id:
            account = self.engine.account(request.account_id)
            return GetTradingStateResponse(
                trading_state=convert.trading_state_to_proto(account.trading_state)
            )
        return GetTradingStateResponse(
            trading_state=convert.trading_state_to_proto(self.engine.trading_state),
            accounts=[
                convert.trading_state_to_proto(account.trading_state)
                for _, account in sorted(self.engine.accounts.items())
            ],
        )

    async def SetTradingState(
        self, request: SetTradingStateRequest, context: Context
    ) -> SetTradingStateResponse:
        state = convert.trading_state_of(request, MAX_REASON_LENGTH)
        change = await self.engine.set_trading_state(
            state, request.reason, _actor(context), request.account_id
        )
        return SetTradingStateResponse(trading_state=convert.trading_state_to_proto(change))

    async def GetExposure(
        self, request: GetExposureRequest, context: Context
    ) -> GetExposureResponse:
        exposure = self.engine.exposure(request.account_id)
        return GetExposureResponse(exposure=convert.exposure_to_proto(exposure))

    async def ComputeVaR(self, request: ComputeVaRRequest, context: Context) -> ComputeVaRResponse:
        parsed = convert.var_request(request, self.var_settings)
        account = self._account(request.account_id)
        result = await self.portfolio_var.compute(parsed, account.book, account.account_id)
        return convert.var_to_proto(parsed, result)

    async def RunStressTest(
        self, request: RunStressTestRequest, context: Context
    ) -> RunStressTestResponse:
        shocks = convert.price_shocks(request)
        results = run_stress_test(self._account(request.account_id).book, shocks)
        return convert.stress_to_proto(results)

    async def StreamRiskEvents(
        self, request: StreamRiskEventsRequest, context: Context
    ) -> AsyncIterator[StreamRiskEventsResponse]:
        async with self.events.subscribed() as events:
            # Headers once subscribed: a client that awaits them and then reads
            # GetTradingState misses no change in between.
            await context.send_initial_metadata(())
            async for event in events:
                yield StreamRiskEventsResponse(event=convert.event_to_proto(event))


def _actor(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == ACTOR_HEADER and isinstance(value, str) and value:
            return value[:128]
    return DEFAULT_ACTOR
