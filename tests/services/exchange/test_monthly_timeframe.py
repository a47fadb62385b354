"""TIMEFRAME_1MO (a calendar month, added for backtest datasets) is not a candle
interval the exchange service serves: it is refused as INVALID_ARGUMENT, not a crash."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from tests.services.exchange.exchange_testing import Exchange


async def test_monthly_candles_are_invalid_argument(exchange: Exchange) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await exchange.stub.GetCandles(
            exchange_pb2.GetCandlesRequest(
                venue="paper", symbol="BTC/USDT", timeframe=common_pb2.TIMEFRAME_1MO, limit=3
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    assert status is not None
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [violation.field for violation in bad.field_violations]
    assert fields == ["timeframe"]
