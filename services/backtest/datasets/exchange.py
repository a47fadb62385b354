"""Candles fetched through the exchange service's GetCandles (its cache, or the venue),
page by page, for ImportDataset with DATASET_FORMAT_EXCHANGE."""

from __future__ import annotations

import json

import grpc

from common import timeframes
from common.channels import peer_channel
from common.config import GrpcSettings
from common.errors import FieldViolation, InvalidArgument, Unavailable
from common.wire import timestamp_ms
from services.backtest.reasons import Reason

PAGE = 1000
# A dataset fetched in one import is at most this long (about 1.9 years of 1m candles).
MAX_CANDLES = 1_000_000
DEADLINE_SECONDS = 30.0


async def fetch_candles(
    address: str,
    grpc_settings: GrpcSettings,
    *,
    venue: str,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
) -> bytes:
    """The candles in [start, end) as a Freqtrade JSON document, oldest first."""
    # The exchange contract (~0.2 MiB with its descriptors) is loaded by the first import
    # from the exchange, not by an idle service.
    from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc  # noqa: PLC0415

    rows: list[list[float]] = []
    cursor = start_ms
    async with peer_channel(address, grpc_settings) as channel:
        exchange = exchange_pb2_grpc.ExchangeServiceStub(channel)
        while cursor < end_ms and len(rows) < MAX_CANDLES:
            request = exchange_pb2.GetCandlesRequest(
                venue=venue,
                symbol=symbol,
                timeframe=timeframes.to_proto(timeframe),  # type: ignore[arg-type]
                start_time=timestamp_ms(cursor),
                end_time=timestamp_ms(end_ms),
                limit=PAGE,
            )
            try:
                response = await exchange.GetCandles(request, timeout=DEADLINE_SECONDS)
            except grpc.aio.AioRpcError as error:
                if error.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
                    raise InvalidArgument(
                        [FieldViolation("symbol", f"the exchange service: {error.details()}")]
                    ) from None
                raise Unavailable(
                    f"the exchange service at {address} did not give candles: "
                    f"{error.code().name} {error.details()}; retry later",
                    reason=Reason.EXCHANGE_UNAVAILABLE,
                ) from None
            page = [
                [
                    float(candle.open_time.ToMilliseconds()),
                    float(candle.open),
                    float(candle.high),
                    float(candle.low),
                    float(candle.close),
                    float(candle.volume),
                ]
                for candle in response.candles
            ]
            rows += [row for row in page if row[0] >= cursor]
            if len(page) < PAGE or not rows:
                break
            cursor = int(rows[-1][0]) + 1
    return json.dumps(rows).encode()
