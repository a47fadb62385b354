"""The gateway's overhead: the same calls through HTTP/JSON and straight to gRPC.

GET of a ticker and POST of an order, at 1 and at 50 concurrent clients, against a
scripted ExchangeService peer (gateway.testing.TickerExchange: it answers at once, so
what is measured is the gateway and gRPC, not a venue). Three processes: the peer, the
gateway (`python -m gateway`, auth on, access log on, as deployed), and this one, the
load. The HTTP load is a minimal keep-alive HTTP/1.1 client on raw asyncio streams, so
the client costs as little as the grpc.aio client of the baseline does.

Reported per case: p50 and p99 latency and requests/s, the direct gRPC call beside it;
the p50 of the floor (`serve_floor`: uvicorn as the gateway runs it, making the same gRPC
call and answering a fixed body, with none of the gateway's work) beside it too, so
what the gateway's own work costs reads as the distance from the floor; and the
gateway's peak RSS while under the 50-client load.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc

from bench.http import HttpConnection, raw_request, wait_for_http
from bench.report import Row
from bench.section import sized
from common.config import load_config
from common.logs import new_request_id
from common.memory import MIB, rss_bytes
from common.testing import free_port, isolated_config, wait_until_serving
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.auth import digest

SECTION = "gateway"
TOKEN = "eq-bench-trader"  # noqa: S105 - a throwaway token of a temporary stack
REQUESTS_PER_CLIENT = sized({1: 1000, 50: 120}, {1: 20, 50: 2})
WARMUP = sized(200, 10)
ORDER = {
    "venue": "paper",
    "symbol": "BTC/USDT",
    "side": "SIDE_BUY",
    "type": "ORDER_TYPE_LIMIT",
    "quantity": "0.01",
    "price": "60000.00",
    "clientOrderId": "bench-1",
}
PEER = """
import asyncio, sys
from gateway.testing import ticker_exchange_on
asyncio.run(ticker_exchange_on(int(sys.argv[1])))
"""
FLOOR = """
import sys
from bench.gateway import serve_floor
serve_floor(int(sys.argv[1]))
"""
FLOOR_BODY = b'{"floor":true}'

Call = Callable[[], Awaitable[None]]


async def _measure(calls: list[Call], per_client: int) -> tuple[float, float, float]:
    """p50 ms, p99 ms and requests/s with one task per call (client)."""
    latencies: list[float] = []

    async def client(call: Call) -> None:
        for _ in range(per_client):
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(call) for call in calls))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return quantiles[49] * 1000, quantiles[98] * 1000, len(latencies) / elapsed


async def _http_calls(
    port: int, clients: int, raw: bytes
) -> tuple[list[Call], list[HttpConnection]]:
    connections = [await HttpConnection.open(port) for _ in range(clients)]
    return [partial(connection.request, raw) for connection in connections], connections


def _grpc_calls(stub: Any, operation: str, clients: int) -> list[Call]:
    """`stub` is an ExchangeServiceStub on a grpc.aio channel (its stubs type sync calls)."""

    async def ticker() -> None:
        await stub.GetTicker(exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT"))

    order_request = exchange_pb2.SubmitOrderRequest(
        venue="paper", symbol="BTC/USDT", quantity="0.01", price="60000.00", client_order_id="b-1"
    )

    async def order() -> None:
        await stub.SubmitOrder(order_request)

    return [ticker if operation == "ticker" else order] * clients


class _RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.05)

    def __enter__(self) -> _RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, rss_bytes(self.pid))


def serve_floor(port: int) -> None:
    """uvicorn on uvloop and httptools, as gateway.main runs it, with an ASGI app that
    makes the gateway's gRPC call (its channel options, metadata and deadline: GET is
    GetTicker, POST SubmitOrder) and answers a fixed body: no middleware, routing, auth,
    transcoding, metrics or log. The lower bound of a gateway made of these parts."""
    import uvloop  # noqa: PLC0415 - only the floor's process serves

    uvloop.run(_floor(port))


async def _floor(port: int) -> None:
    import uvicorn  # noqa: PLC0415 - only the floor's process serves

    from common.channels import peer_channel  # noqa: PLC0415

    config = load_config()
    channel = peer_channel(config.service("exchange").address, config.grpc)
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
    ticker = exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT")
    order = exchange_pb2.SubmitOrderRequest(
        venue="paper", symbol="BTC/USDT", quantity="0.01", price="60000.00", client_order_id="b-1"
    )
    metadata = (("x-request-id", new_request_id()), ("x-actor", "bench"))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            while (await receive()).get("more_body"):
                pass
            await stub.SubmitOrder(order, metadata=metadata, timeout=10.0)
        else:
            await stub.GetTicker(ticker, metadata=metadata, timeout=10.0)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": FLOOR_BODY})

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
        )
    )
    await server.serve()


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-gateway-") as directory:
        peer_port = free_port()
        peer_address = f"127.0.0.1:{peer_port}"
        environment = isolated_config(
            Path(directory),
            EXCHANGE__ADDRESS=peer_address,
            GATEWAY__AUTH__TOKENS=f"bench:{digest(TOKEN)}:read+trade",
            GATEWAY__LIMITS__RATE_PER_SECOND="1000000",
            GATEWAY__LIMITS__BURST="1000000",
        )
        port = load_config(environment).gateway.port
        floor_port = free_port()
        peer = await _start([sys.executable, "-c", PEER, str(peer_port)], environment)
        gateway = await _start([sys.executable, "-m", "gateway"], environment)
        floor = await _start([sys.executable, "-c", FLOOR, str(floor_port)], environment)
        try:
            await wait_until_serving(peer_address)
            await wait_for_http(f"http://127.0.0.1:{port}/openapi.json")
            await wait_for_http(f"http://127.0.0.1:{floor_port}/")
            return await _cases(port, floor_port, peer_address, gateway.pid)
        finally:
            for process in (floor, gateway, peer):
                process.terminate()
                await process.wait()


async def _start(command: list[str], environment: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _cases(port: int, floor_port: int, peer_address: str, gateway_pid: int) -> list[Row]:
    requests = {
        "ticker": raw_request("GET", "/v1/venues/paper/tickers/BTC/USDT", port, TOKEN),
        "order": raw_request("POST", "/v1/orders", port, TOKEN, json.dumps(ORDER).encode()),
    }
    labels = {"ticker": "GET ticker", "order": "POST order"}
    rows: list[Row] = []
    peak_rss = 0
    async with grpc.aio.insecure_channel(peer_address) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        for operation, raw in requests.items():
            for clients, per_client in REQUESTS_PER_CLIENT.items():
                warmup = max(1, WARMUP // clients)
                http_calls, connections = await _http_calls(port, clients, raw)
                direct_calls = _grpc_calls(stub, operation, clients)
                await _measure(http_calls, warmup)
                await _measure(direct_calls, warmup)
                with _RssSampler(gateway_pid) as rss:
                    gateway = await _measure(http_calls, per_client)
                peak_rss = max(peak_rss, rss.peak)
                direct = await _measure(direct_calls, per_client)
                # Opened now: uvicorn closes a connection idle for 5 s.
                floor_calls, floor_connections = await _http_calls(floor_port, clients, raw)
                await _measure(floor_calls, warmup)
                floor = await _measure(floor_calls, per_client)
                for connection in connections + floor_connections:
                    connection.close()
                name = f"{labels[operation]}, {clients} client{'s' if clients > 1 else ''}"
                target_p50 = f"<= {1.5 * direct[0]:.2f} (1.5x direct)"
                rows += [
                    Row(
                        SECTION,
                        f"{name}: p50",
                        "ms",
                        gateway[0],
                        direct[0],
                        "direct gRPC",
                        target_p50,
                    ),
                    Row(
                        SECTION,
                        f"{name}: p50 beside the floor",
                        "ms",
                        gateway[0],
                        floor[0],
                        "floor: uvicorn + the gRPC call",
                    ),
                    Row(SECTION, f"{name}: p99", "ms", gateway[1], direct[1], "direct gRPC"),
                    Row(
                        SECTION,
                        f"{name}: throughput",
                        "req/s",
                        gateway[2],
                        direct[2],
                        "direct gRPC",
                        ">= 2000" if clients > 1 else "",
                    ),
                ]
    rows.append(
        Row(SECTION, "gateway RSS under load (peak)", "MiB", peak_rss / MIB, target="<= 96")
    )
    return rows


if __name__ == "__main__":  # `python -m bench.gateway`: this section alone
    from bench.report import table

    os.environ.setdefault("EDGEQUANT_LOG_LEVEL", "INFO")
    print(table(asyncio.run(run())))
