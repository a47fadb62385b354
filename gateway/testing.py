"""Support for the gateway's tests and benchmark: the gateway under uvicorn on a free
port, tokens of every scope, and scripted gRPC peers served over real gRPC.

Nothing here is used by the gateway itself (as common/testing.py for the services).

- `serve_gateway`: real HTTP, so streams stream and client disconnects are real.
- `Recorder`: answers every RPC of the four services with an empty response (one
  message, for streams) and records which RPC got which request and metadata: proves
  routing and transcoding without depending on the services' own progress.
- `TickerExchange`: an ExchangeService whose StreamTickers streams tickers until
  cancelled (and records that it was), whose GetTicker and SubmitOrder answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import uvicorn
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from starlette.types import ASGIApp

from common.config import Config, load_config
from common.errors import NotFound
from common.interceptors import ServiceInterceptor
from common.testing import free_port, serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.app import create_app
from gateway.auth import digest
from gateway.bindings import Rpc, bindings_of, service_descriptors

# name -> (plaintext token, scopes, expiry)
TOKENS = {
    "reader": ("eq-test-reader", "read", ""),
    "trader": ("eq-test-trader", "read+trade", ""),
    "admin": ("eq-test-admin", "read+trade+admin", ""),
    "expired": ("eq-test-expired", "read+trade+admin", "2020-01-01T00:00:00+00:00"),
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


def token_entries() -> str:
    """TOKENS as the value of EDGEQUANT_GATEWAY__AUTH__TOKENS."""
    entries = []
    for name, (token, scopes, expires) in TOKENS.items():
        entry = f"{name}:{digest(token)}:{scopes}"
        entries.append(f"{entry}:{expires}" if expires else entry)
    return ",".join(entries)


def config_with(environment: dict[str, str], **overrides: str) -> Config:
    """`environment`'s config with EDGEQUANT_<key>=value overrides."""
    return load_config({**environment, **{f"EDGEQUANT_{k}": v for k, v in overrides.items()}})


@asynccontextmanager
async def serve_asgi(app: ASGIApp, port: int) -> AsyncIterator[None]:
    """`app` under uvicorn on 127.0.0.1:port in this event loop, until the block exits."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event to wait on
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve_gateway(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway for `config` under uvicorn on a free port; yields a client for it."""
    port = free_port()
    async with (
        serve_asgi(create_app(config), port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        yield client


def all_rpcs() -> list[Rpc]:
    return list({b.rpc.full_name: b.rpc for b in bindings_of(service_descriptors())}.values())


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Message, dict[str, str]]] = []

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
        for rpc in all_rpcs():
            service = str(rpc.method.containing_service.full_name)
            by_service.setdefault(service, {})[str(rpc.method.name)] = self._handler(rpc)
        return [grpc.method_handlers_generic_handler(s, m) for s, m in by_service.items()]

    def _handler(self, rpc: Rpc) -> grpc.RpcMethodHandler[Any, Any]:
        def record(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
            self.calls.append((rpc.full_name, request, metadata))

        async def unary(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            record(request, context)
            return rpc.response_class()

        async def stream(
            request: Message, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            record(request, context)
            yield rpc.response_class()

        deserializer = rpc.request_class.FromString
        serializer = rpc.response_class.SerializeToString
        if rpc.server_streaming:
            return grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=deserializer, response_serializer=serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserializer, response_serializer=serializer
        )

    def last(self) -> tuple[str, Message, dict[str, str]]:
        assert self.calls, "no RPC reached the peer"
        return self.calls[-1]


@asynccontextmanager
async def recording() -> AsyncIterator[tuple[Recorder, str]]:
    """A Recorder serving all four services on one address."""
    recorder = Recorder()

    def add(_servicer: object, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers(recorder.handlers())

    async with serving(None, add) as address:
        yield recorder, address


def ticker(symbol: str, last: str, seconds: int) -> exchange_pb2.Ticker:
    return exchange_pb2.Ticker(
        venue="paper", symbol=symbol, bid=last, ask=last, last=last, time=Timestamp(seconds=seconds)
    )


class TickerExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    """Streams tickers of the requested symbols every `interval` seconds until cancelled."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.cancelled = asyncio.Event()
        self.streams_started = 0

    async def StreamTickers(
        self,
        request: exchange_pb2.StreamTickersRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[exchange_pb2.StreamTickersResponse]:
        if request.venue != "paper":
            raise NotFound(f"no venue named {request.venue!r}", reason="UNKNOWN_VENUE")
        self.streams_started += 1
        symbols = list(request.symbols) or ["BTC/USDT"]
        try:
            for index in range(1_000_000):
                symbol = symbols[index % len(symbols)]
                yield exchange_pb2.StreamTickersResponse(
                    ticker=ticker(symbol, f"{60000 + index}.5", 1_700_000_000 + index)
                )
                await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def GetTicker(
        self, request: exchange_pb2.GetTickerRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> exchange_pb2.GetTickerResponse:
        return exchange_pb2.GetTickerResponse(
            ticker=ticker(request.symbol, "60000.5", 1_700_000_000)
        )

    async def SubmitOrder(
        self,
        request: exchange_pb2.SubmitOrderRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> exchange_pb2.SubmitOrderResponse:
        return exchange_pb2.SubmitOrderResponse(
            order=common_pb2.Order(
                order_id="o-1",
                client_order_id=request.client_order_id,
                venue=request.venue,
                symbol=request.symbol,
                side=request.side,
                type=request.type,
                quantity=request.quantity,
                price=request.price,
                status=common_pb2.ORDER_STATUS_OPEN,
            )
        )


@asynccontextmanager
async def ticker_exchange(interval: float = 0.05) -> AsyncIterator[tuple[TickerExchange, str]]:
    exchange = TickerExchange(interval)  # type: ignore[abstract]
    add: Callable[[Any, grpc.aio.Server], None] = (
        exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    )
    async with serving(exchange, add) as address:
        yield exchange, address


async def ticker_exchange_on(port: int) -> None:
    """Serves a TickerExchange, with grpc.health.v1, on 127.0.0.1:port until the process
    ends (the bench's peer, in a process of its own)."""
    server = grpc.aio.server(interceptors=[ServiceInterceptor()])
    exchange_pb2_grpc.add_ExchangeServiceServicer_to_server(
        TickerExchange(),  # type: ignore[abstract]
        server,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.wait_for_termination()
