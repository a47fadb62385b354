"""The strategy service's client of the exchange over real gRPC (the scripted venue):
order statuses arrive as the domain's, and only the exchange's ORDER_NOT_FOUND reads as
"the exchange never saw that order" (the one answer that lets a lost order be sent again)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import grpc
import pytest

from common.errors import NotFound
from common.testing import serving
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.exchange.reasons import Reason as ExchangeRegistry
from services.strategy.reasons import ExchangeReason
from services.strategy.runners import OrderStatus
from services.strategy.testing import CandleVenue, load_candles
from services.strategy.venue import Exchange


class UnknownVenue(CandleVenue):
    """Answers GetOrder as the exchange does for a venue it does not know."""

    async def GetOrder(
        self, request: exchange_pb2.GetOrderRequest, context: Any
    ) -> exchange_pb2.GetOrderResponse:
        raise NotFound("unknown venue", reason=ExchangeRegistry.UNKNOWN_VENUE)


def test_the_recognised_reasons_are_the_exchanges() -> None:
    assert {reason.value for reason in ExchangeReason} <= {
        reason.value for reason in ExchangeRegistry
    }


async def test_order_statuses_arrive_as_the_domains_and_unknown_orders_as_none() -> None:
    venue = CandleVenue(load_candles(count=10))  # type: ignore[abstract]
    await venue.release()
    async with (
        serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        exchange = Exchange(channel, timeout=5)
        submitted = await exchange.submit_market("paper", "ADA/BTC", Decimal(5), "r-abc-1")
        assert submitted.status is OrderStatus.FILLED
        assert submitted.filled_quantity == 5
        found = await exchange.order("paper", "r-abc-1")
        assert found is not None
        assert found.status is OrderStatus.FILLED
        assert await exchange.order("paper", "r-abc-2") is None


async def test_not_found_for_another_reason_is_no_unsent_order() -> None:
    venue = UnknownVenue(load_candles(count=10))  # type: ignore[abstract]
    async with (
        serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await Exchange(channel, timeout=5).order("elsewhere", "r-abc-1")
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
