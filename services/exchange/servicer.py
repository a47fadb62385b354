"""ExchangeService: translates each RPC to the exchange domain and back.

One method per RPC, named as in protos/edgequant/exchange/v1/exchange.proto. Until issue
#3 lands, every RPC answers UNIMPLEMENTED with reason NOT_YET_IMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.errors import not_yet_implemented, not_yet_implemented_stream
from common.service import Context, Runtime
from edgequant.exchange.v1 import exchange_pb2_grpc
from edgequant.exchange.v1.exchange_pb2 import (
    CancelAllOrdersRequest,
    CancelAllOrdersResponse,
    CancelOrderRequest,
    CancelOrderResponse,
    GetBalancesRequest,
    GetBalancesResponse,
    GetCandlesRequest,
    GetCandlesResponse,
    GetOrderBookRequest,
    GetOrderBookResponse,
    GetOrderRequest,
    GetOrderResponse,
    GetTickerRequest,
    GetTickerResponse,
    ListMarketsRequest,
    ListMarketsResponse,
    ListOrdersRequest,
    ListOrdersResponse,
    ListVenuesRequest,
    ListVenuesResponse,
    StreamExecutionsRequest,
    StreamExecutionsResponse,
    StreamOrderUpdatesRequest,
    StreamOrderUpdatesResponse,
    StreamTickersRequest,
    StreamTickersResponse,
    SubmitOrderRequest,
    SubmitOrderResponse,
)


class ExchangeServicer(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def ListVenues(self, request: ListVenuesRequest, context: Context) -> ListVenuesResponse:
        raise not_yet_implemented("ExchangeService.ListVenues", 3)

    async def ListMarkets(
        self, request: ListMarketsRequest, context: Context
    ) -> ListMarketsResponse:
        raise not_yet_implemented("ExchangeService.ListMarkets", 3)

    async def GetTicker(self, request: GetTickerRequest, context: Context) -> GetTickerResponse:
        raise not_yet_implemented("ExchangeService.GetTicker", 3)

    def StreamTickers(
        self, request: StreamTickersRequest, context: Context
    ) -> AsyncIterator[StreamTickersResponse]:
        return not_yet_implemented_stream("ExchangeService.StreamTickers", 3)

    async def GetOrderBook(
        self, request: GetOrderBookRequest, context: Context
    ) -> GetOrderBookResponse:
        raise not_yet_implemented("ExchangeService.GetOrderBook", 3)

    async def GetCandles(self, request: GetCandlesRequest, context: Context) -> GetCandlesResponse:
        raise not_yet_implemented("ExchangeService.GetCandles", 3)

    async def GetBalances(
        self, request: GetBalancesRequest, context: Context
    ) -> GetBalancesResponse:
        raise not_yet_implemented("ExchangeService.GetBalances", 3)

    async def SubmitOrder(
        self, request: SubmitOrderRequest, context: Context
    ) -> SubmitOrderResponse:
        raise not_yet_implemented("ExchangeService.SubmitOrder", 3)

    async def CancelOrder(
        self, request: CancelOrderRequest, context: Context
    ) -> CancelOrderResponse:
        raise not_yet_implemented("ExchangeService.CancelOrder", 3)

    async def CancelAllOrders(
        self, request: CancelAllOrdersRequest, context: Context
    ) -> CancelAllOrdersResponse:
        raise not_yet_implemented("ExchangeService.CancelAllOrders", 3)

    async def GetOrder(self, request: GetOrderRequest, context: Context) -> GetOrderResponse:
        raise not_yet_implemented("ExchangeService.GetOrder", 3)

    async def ListOrders(self, request: ListOrdersRequest, context: Context) -> ListOrdersResponse:
        raise not_yet_implemented("ExchangeService.ListOrders", 3)

    def StreamOrderUpdates(
        self, request: StreamOrderUpdatesRequest, context: Context
    ) -> AsyncIterator[StreamOrderUpdatesResponse]:
        return not_yet_implemented_stream("ExchangeService.StreamOrderUpdates", 3)

    def StreamExecutions(
        self, request: StreamExecutionsRequest, context: Context
    ) -> AsyncIterator[StreamExecutionsResponse]:
        return not_yet_implemented_stream("ExchangeService.StreamExecutions", 3)
