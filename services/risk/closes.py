"""Close prices from the exchange's candles (ExchangeService.GetCandles), for VaR.

A client of the exchange (transport): timeframes go over the wire as the proto enum
and are spoken here by name ("1h", common.timeframes).
"""

from __future__ import annotations

from datetime import timedelta

import grpc

from common import timeframes
from common.errors import Unavailable
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.risk.reasons import Reason

# The month has no fixed length: VaR scales by candle length, so it takes the others.
VAR_TIMEFRAMES: tuple[str, ...] = tuple(timeframes.FIXED_MS)


def candle_length(timeframe: str) -> timedelta:
    """The length of a VaR timeframe (one of VAR_TIMEFRAMES)."""
    return timedelta(milliseconds=timeframes.milliseconds(timeframe))


class CloseSource:
    def __init__(self, exchange: grpc.aio.Channel, timeout: float) -> None:
        self.exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange)
        self.timeout = timeout

    async def closes(
        self, venue: str, symbol: str, timeframe: str, limit: int
    ) -> list[tuple[int, float]]:
        """(open time in epoch seconds, close) of the latest `limit` candles, oldest first.
        Floats: VaR is analytics, not money."""
        try:
            response = await self.exchange.GetCandles(
                exchange_pb2.GetCandlesRequest(
                    venue=venue,
                    symbol=symbol,
                    timeframe=common_pb2.Timeframe.ValueType(timeframes.to_proto(timeframe)),
                    limit=limit,
                ),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            # The exchange's failure, not ours: said as such, not as INTERNAL.
            raise Unavailable(
                f"the exchange did not give {symbol}'s {timeframe} candles "
                f"({error.code().name}: {error.details()}); retry shortly",
                reason=Reason.VAR_CANDLES_UNAVAILABLE,
                metadata={"symbol": symbol, "code": error.code().name},
            ) from None
        return [(c.open_time.seconds, float(c.close)) for c in response.candles]
