"""A fake Binance spot REST API on 127.0.0.1 for the real ccxt client.

It answers with Binance's own recorded bodies (data/binance_spot.json), keeps the
orders it is sent (so a duplicate would show), and can be told to fail the next calls
of a route: HTTP 429, a 5xx, garbage instead of JSON, or no answer in time (before or
after placing the order).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from common.testing import free_port

DATA = json.loads((Path(__file__).parent / "data" / "binance_spot.json").read_text())
_NO_SYMBOLS = {"timezone": "UTC", "serverTime": 1, "symbols": []}
# Routes answered with a recorded body, whatever the query.
RECORDED: dict[str, Any] = {
    "GET /api/v3/exchangeInfo": {**_NO_SYMBOLS, "symbols": [DATA["exchangeInfoSymbol"]]},
    "GET /fapi/v1/exchangeInfo": _NO_SYMBOLS,
    "GET /dapi/v1/exchangeInfo": _NO_SYMBOLS,
    "GET /api/v3/time": {"serverTime": 1},
    "GET /api/v3/ticker/24hr": DATA["ticker"],
    "GET /api/v3/depth": DATA["depth"],
    "GET /api/v3/klines": DATA["klines"],
    "GET /api/v3/account": DATA["account"],
}
# How long a "timeout" fault keeps the client waiting (tests set ccxt's timeout below it).
HANG_SECONDS = 2.5


@dataclass
class FakeBinance:
    url: str = ""
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    # route ("GET /api/v3/ticker/24hr") -> faults to play, one per call
    faults: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    calls: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    next_order_id: int = 1000

    def fail(self, route: str, *faults: str) -> None:
        self.faults[route].extend(faults)

    # -- routes -------------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        route = f"{request.method} {request.url.path}"
        body = (await request.body()).decode()
        self.calls[route] += 1
        fault = self.faults[route].pop(0) if self.faults[route] else ""
        if fault == "429":
            return JSONResponse({"code": -1003, "msg": "Too many requests."}, status_code=429)
        if fault == "500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if fault == "503":
            return PlainTextResponse("Service Unavailable", status_code=503)
        if fault == "garbage":
            return PlainTextResponse("<html><body>upstream error", status_code=200)
        if fault == "timeout":
            await asyncio.sleep(HANG_SECONDS)
        response = self._answer(route, request.url.query, body)
        if fault == "timeout-after":
            await asyncio.sleep(HANG_SECONDS)
        return response

    def _answer(self, route: str, query_string: str, body: str) -> Response:
        query = {key: values[-1] for key, values in parse_qs(query_string).items()}
        if route in RECORDED:
            return JSONResponse(RECORDED[route])
        if route.startswith("GET /sapi/"):
            return JSONResponse([])  # currencies, margin pairs: none on this fake
        if route == "POST /api/v3/order":
            form = {key: values[-1] for key, values in parse_qs(body).items()}
            return JSONResponse(self._create(form))
        order = (
            self._find(query) if route in ("GET /api/v3/order", "DELETE /api/v3/order") else None
        )
        if order is None:
            return JSONResponse({"code": -2013, "msg": "Order does not exist."}, status_code=400)
        if route.startswith("DELETE"):
            order["status"] = "CANCELED"
        return JSONResponse(order)

    def _create(self, form: dict[str, str]) -> dict[str, Any]:
        order: dict[str, Any] = copy.deepcopy(DATA["order"])
        self.next_order_id += 1
        quantity = Decimal(form["quantity"])
        order.update(
            symbol=form["symbol"],
            orderId=str(self.next_order_id),
            clientOrderId=form.get("newClientOrderId", ""),
            side=form["side"],
            type=form["type"],
            origQty=form["quantity"],
            price=form.get("price", "0.00000000"),
            timeInForce=form.get("timeInForce", "GTC"),
            icebergQty="0.00000000",
        )
        if form["type"] == "MARKET":
            price = Decimal(DATA["ticker"]["askPrice"])
            order.update(
                status="FILLED",
                executedQty=form["quantity"],
                cummulativeQuoteQty=f"{price * quantity:f}",
                fills=[
                    {
                        "price": f"{price:f}",
                        "qty": form["quantity"],
                        "commission": f"{price * quantity * Decimal('0.001'):f}",
                        "commissionAsset": "USDT",
                        "tradeId": self.next_order_id * 10,
                    }
                ],
            )
        self.orders[order["clientOrderId"]] = order
        return order

    def _find(self, query: dict[str, str]) -> dict[str, Any] | None:
        client_order_id = query.get("origClientOrderId")
        if client_order_id:
            return self.orders.get(client_order_id)
        return next((o for o in self.orders.values() if o["orderId"] == query.get("orderId")), None)


@contextlib.asynccontextmanager
async def serving_fake_binance() -> AsyncIterator[FakeBinance]:
    fake = FakeBinance()
    app = Starlette(
        routes=[Route("/{path:path}", fake.dispatch, methods=["GET", "POST", "DELETE", "PUT"])]
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
