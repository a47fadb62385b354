"""PortfolioService: translates each RPC to the portfolio domain and back.

One method per RPC, named as in protos/edgequant/portfolio/v1/portfolio.proto. Until issue
#4 lands, every RPC answers UNIMPLEMENTED with reason NOT_YET_IMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.errors import not_yet_implemented, not_yet_implemented_stream
from common.service import Context, Runtime
from edgequant.portfolio.v1 import portfolio_pb2_grpc
from edgequant.portfolio.v1.portfolio_pb2 import (
    GetEquityHistoryRequest,
    GetEquityHistoryResponse,
    GetPerformanceRequest,
    GetPerformanceResponse,
    GetPnLRequest,
    GetPnLResponse,
    GetPortfolioRequest,
    GetPortfolioResponse,
    ImportFillsRequest,
    ImportFillsResponse,
    ListAccountsRequest,
    ListAccountsResponse,
    ListFillsRequest,
    ListFillsResponse,
    ListPositionsRequest,
    ListPositionsResponse,
    StreamPositionsRequest,
    StreamPositionsResponse,
)


class PortfolioServicer(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def ListAccounts(
        self, request: ListAccountsRequest, context: Context
    ) -> ListAccountsResponse:
        raise not_yet_implemented("PortfolioService.ListAccounts", 4)

    async def GetPortfolio(
        self, request: GetPortfolioRequest, context: Context
    ) -> GetPortfolioResponse:
        raise not_yet_implemented("PortfolioService.GetPortfolio", 4)

    async def ListPositions(
        self, request: ListPositionsRequest, context: Context
    ) -> ListPositionsResponse:
        raise not_yet_implemented("PortfolioService.ListPositions", 4)

    async def ListFills(self, request: ListFillsRequest, context: Context) -> ListFillsResponse:
        raise not_yet_implemented("PortfolioService.ListFills", 4)

    async def GetPnL(self, request: GetPnLRequest, context: Context) -> GetPnLResponse:
        raise not_yet_implemented("PortfolioService.GetPnL", 4)

    async def GetEquityHistory(
        self, request: GetEquityHistoryRequest, context: Context
    ) -> GetEquityHistoryResponse:
        raise not_yet_implemented("PortfolioService.GetEquityHistory", 4)

    async def GetPerformance(
        self, request: GetPerformanceRequest, context: Context
    ) -> GetPerformanceResponse:
        raise not_yet_implemented("PortfolioService.GetPerformance", 4)

    def StreamPositions(
        self, request: StreamPositionsRequest, context: Context
    ) -> AsyncIterator[StreamPositionsResponse]:
        return not_yet_implemented_stream("PortfolioService.StreamPositions", 4)

    async def ImportFills(
        self, request: ImportFillsRequest, context: Context
    ) -> ImportFillsResponse:
        raise not_yet_implemented("PortfolioService.ImportFills", 4)
