"""A fake Binance whose public market data moves: the recorded bodies of fake_binance.py
(ccxt's own fixtures), with the depth and the trades (`/api/v3/aggTrades`, from ccxt's
recorded fetchTrades answer) set by the test, served to the real ccxt on 127.0.0.1."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.services.exchange.fake_binance import DATA, FakeBinance
from tests.services.exchange.fake_venue import serving

# ccxt/ccxt ts/src/test/static/response/binance.json, fetchTrades (MIT), via
# ../shared/data/ccxt_static/binance_response_subset.json: one BTCUSDT aggTrade.
RECORDED_AGG_TRADES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "binance_aggtrades.json").read_text()
)


@dataclass
class MovingBinance(FakeBinance):
    depth: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DATA["depth"]))
    # The market's public trades (the base class's `trades` are our orders' own fills).
    market_trades: list[dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(RECORDED_AGG_TRADES)
    )

    def answer(self, request: Request, route: str, body: str) -> Response:
        if route == "GET /api/v3/depth":
            return JSONResponse(self.depth)
        if route == "GET /api/v3/aggTrades":
            return JSONResponse(self.market_trades)
        return super().answer(request, route, body)

    def print_trade(self, price: str, quantity: str, buyer_is_maker: bool) -> None:
        """A new trade after the last one (aggTrade fields: a id, T time, m maker side)."""
        last = self.market_trades[-1]
        self.market_trades.append(
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
    async with serving(MovingBinance) as fake:
        yield fake
