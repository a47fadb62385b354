"""A fake Binance whose public market data moves: the recorded bodies of fake_binance.py
(ccxt's own fixtures), with the depth and the trades (`/api/v3/aggTrades`, from ccxt's
recorded fetchTrades answer) set by the test, served to the real ccxt on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.testing import free_port
from tests.services.exchange.fake_binance import DATA, FakeBinance

# ccxt/ccxt ts/src/test/static/response/binance.json, fetchTrades (MIT), via
# ../shared/data/ccxt_static/binance_response_subset.json: one BTCUSDT aggTrade.
RECORDED_AGG_TRADES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "binance_aggtrades.json").read_text()
)


@dataclass
class MovingBinance(FakeBinance):
    depth: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DATA["depth"]))
    trades: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(RECORDED_AGG_TRADES))

    def _answer(self, route: str, query_string: str, body: str) -> Response:
        if route == "GET /api/v3/depth":
            return JSONResponse(self.depth)
        if route == "GET /api/v3/aggTrades":
            return JSONResponse(self.trades)
        return super()._answer(route, query_string, body)

    def print_trade(self, price: str, quantity: str, buyer_is_maker: bool) -> None:
        """A new trade after the last one (aggTrade fields: a id, T time, m maker side)."""
        last = self.trades[-1]
        self.trades.append(
            {
                **last,
                "a": str(int(last["a"]) + 1),
                "p": price,
                "q": quantity,
                "T": str(int(last["T"]) + 1000),
                "m": buyer_is_maker,
            }
        )


@contextlib.asynccontextmanager
async def serving_moving_binance() -> AsyncIterator[MovingBinance]:
    fake = MovingBinance()
    app = Starlette(
        routes=[Route("/{path:path}", fake.dispatch, methods=["GET", "POST", "DELETE"])]
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
