"""Close prices from the exchange's candles (ExchangeService.GetCandles), for VaR."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeAlias

import grpc

from common.errors import Unavailable
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc

Timeframe: TypeAlias = common_pb2.Timeframe.ValueType

TIMEFRAMES: dict[Timeframe, timedelta] = {
    common_pb2.TIMEFRAME_1M: timedelta(minutes=1),
    common_pb2.TIMEFRAME_3M: timedelta(minutes=3),
    common_pb2.TIMEFRAME_5M: timedelta(minutes=5),
    common_pb2.TIMEFRAME_15M: timedelta(minutes=15),
    common_pb2.TIMEFRAME_30M: timedelta(minutes=30),
    common_pb2.TIMEFRAME_1H: timedelta(hours=1),
    common_pb2.TIMEFRAME_2H: timedelta(hours=2),
    common_pb2.TIMEFRAME_4H: timedelta(hours=4),
    common_pb2.TIMEFRAME_6H: timedelta(hours=6),
    common_pb2.TIMEFRAME_8H: timedelta(hours=8),
    common_pb2.TIMEFRAME_12H: timedelta(hours=12),
    common_pb2.TIMEFRAME_1D: timedelta(days=1),
    common_pb2.TIMEFRAME_1W: timedelta(weeks=1),
}


def timeframe_name(timeframe: Timeframe) -> str:
    """ccxt's name of a timeframe ("1h"), as configs/ and messages spell it."""
    return common_pb2.Timeframe.Name(timeframe).removeprefix("TIMEFRAME_").lower()


TIMEFRAME_NAMES = {timeframe_name(value): value for value in TIMEFRAMES}


class CandleSource:
    def __init__(self, exchange: grpc.aio.Channel, timeout: float) -> None:
        self.exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange)
        self.timeout = timeout

    async def closes(
        self, venue: str, symbol: str, timeframe: Timeframe, limit: int
    ) -> list[tuple[int, float]]:
        """(open time in epoch seconds, close) of the latest `limit` candles, oldest first.
        Floats: VaR is analytics, not money."""
        try:
            response = await self.exchange.GetCandles(
                exchange_pb2.GetCandlesRequest(
                    venue=venue, symbol=symbol, timeframe=timeframe, limit=limit
                ),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            # The exchange's failure, not ours: said as such, not as INTERNAL.
            raise Unavailable(
                f"the exchange did not give {symbol}'s {timeframe_name(timeframe)} candles "
                f"({error.code().name}: {error.details()}); retry shortly",
                reason="VAR_CANDLES_UNAVAILABLE",
                metadata={"symbol": symbol, "code": error.code().name},
            ) from None
        return [(c.open_time.seconds, float(c.close)) for c in response.candles]
