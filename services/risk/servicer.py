"""RiskService: translates each RPC to the risk domain and back.

One method per RPC, named as in protos/edgequant/risk/v1/risk.proto. Until issue
#5 lands, every RPC answers UNIMPLEMENTED with reason NOT_YET_IMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.errors import not_yet_implemented, not_yet_implemented_stream
from common.service import Context, Runtime
from edgequant.risk.v1 import risk_pb2_grpc
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


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def CheckOrder(self, request: CheckOrderRequest, context: Context) -> CheckOrderResponse:
        raise not_yet_implemented("RiskService.CheckOrder", 5)

    async def GetLimits(self, request: GetLimitsRequest, context: Context) -> GetLimitsResponse:
        raise not_yet_implemented("RiskService.GetLimits", 5)

    async def UpdateLimits(
        self, request: UpdateLimitsRequest, context: Context
    ) -> UpdateLimitsResponse:
        raise not_yet_implemented("RiskService.UpdateLimits", 5)

    async def GetTradingState(
        self, request: GetTradingStateRequest, context: Context
    ) -> GetTradingStateResponse:
        raise not_yet_implemented("RiskService.GetTradingState", 5)

    async def SetTradingState(
        self, request: SetTradingStateRequest, context: Context
    ) -> SetTradingStateResponse:
        raise not_yet_implemented("RiskService.SetTradingState", 5)

    async def GetExposure(
        self, request: GetExposureRequest, context: Context
    ) -> GetExposureResponse:
        raise not_yet_implemented("RiskService.GetExposure", 5)

    async def ComputeVaR(self, request: ComputeVaRRequest, context: Context) -> ComputeVaRResponse:
        raise not_yet_implemented("RiskService.ComputeVaR", 5)

    async def RunStressTest(
        self, request: RunStressTestRequest, context: Context
    ) -> RunStressTestResponse:
        raise not_yet_implemented("RiskService.RunStressTest", 5)

    def StreamRiskEvents(
        self, request: StreamRiskEventsRequest, context: Context
    ) -> AsyncIterator[StreamRiskEventsResponse]:
        return not_yet_implemented_stream("RiskService.StreamRiskEvents", 5)
