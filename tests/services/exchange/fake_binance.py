"""A fake Binance spot REST API on 127.0.0.1 for the real ccxt client.

It answers with Binance's own recorded bodies (data/binance_spot.json), keeps the
orders it is sent (so a duplicate would show) and their trades, and fails on demand
(fake_venue.py's faults). Binance's conventions: a create answers with the order's
status and fills (trade ids included); errors are `{"code": -2010, "msg": ...}` with an
HTTP 4xx/5xx status; the client order id is `newClientOrderId`, up to 36 characters.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.services.exchange.fake_venue import HANG_SECONDS, FakeVenue, serving

__all__ = ["HANG_SECONDS", "FakeBinance", "serving_fake_binance"]

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
}
_UNKNOWN_ORDER = {"code": -2013, "msg": "Order does not exist."}
HOUR_MS = 3_600_000


@dataclass
class FakeBinance(FakeVenue):
    # Binance's real page limit is 1000; tests lower it to see paging.
    klines_page: int = 1000
    # How many hour candles the venue has (from the recorded first one): fewer than a
    # test asks for is a venue whose history ends early (or lags).
    klines_count: int = 2000
    # More spot symbols like BTCUSDT (memory measurements: a venue's full list).
    extra_markets: int = 0

    def __post_init__(self) -> None:
        symbols = [DATA["exchangeInfoSymbol"]]
        for n in range(self.extra_markets):
            symbol = copy.deepcopy(DATA["exchangeInfoSymbol"])
            base = f"C{n:04d}X"
            symbol.update(symbol=f"{base}USDT", baseAsset=base)
            symbols.append(symbol)
        self.exchange_info = {**_NO_SYMBOLS, "symbols": symbols}
        # The account's balances, settable: a deposit or withdrawal at the venue.
        self.account: dict[str, Any] = copy.deepcopy(DATA["account"])

    def set_balance(self, asset: str, free: str) -> None:
        """What the venue holds of `asset` now (free, nothing locked)."""
        balances = [b for b in self.account["balances"] if b["asset"] != asset]
        self.account["balances"] = [*balances, {"asset": asset, "free": free, "locked": "0"}]

    def rate_limited(self) -> Response:
        return JSONResponse({"code": -1003, "msg": "Too many requests."}, status_code=429)

    def venue_error(self, fault: str) -> Response:
        if fault == "insufficient":
            body = {"code": -2010, "msg": "Account has insufficient balance for requested action."}
            return JSONResponse(body, status_code=400)
        body = {"code": -1000, "msg": "An unknown error occured while processing the request."}
        return JSONResponse(body, status_code=400)

    def answer(self, request: Request, route: str, body: str) -> Response:  # noqa: PLR0911
        query = {key: values[-1] for key, values in parse_qs(request.url.query).items()}
        if route == "GET /api/v3/exchangeInfo":
            return JSONResponse(self.exchange_info)
        if route == "GET /api/v3/account":
            return JSONResponse(self.account)
        if route in RECORDED:
            return JSONResponse(RECORDED[route])
        if route == "GET /api/v3/klines":
            return JSONResponse(self._klines(query))
        if route.startswith("GET /sapi/"):
            return JSONResponse([])  # currencies, margin pairs: none on this fake
        if route == "POST /api/v3/order":
            form = {key: values[-1] for key, values in parse_qs(body).items()}
            return JSONResponse(self._create(form))
        if route == "GET /api/v3/openOrders":
            return JSONResponse([o for o in self.orders.values() if o["status"] == "NEW"])
        if route == "GET /api/v3/allOrders":
            return JSONResponse(list(self.orders.values()))
        if route == "GET /api/v3/myTrades":
            order_id = query.get("orderId")
            return JSONResponse(
                [t for ts in self.trades.values() for t in ts if t["orderId"] == order_id]
            )
        order = (
            self._find(query) if route in ("GET /api/v3/order", "DELETE /api/v3/order") else None
        )
        if order is None:
            return JSONResponse(_UNKNOWN_ORDER, status_code=400)
        if route.startswith("DELETE"):
            if order["status"] != "NEW":
                return JSONResponse({"code": -2011, "msg": "Unknown order sent."}, status_code=400)
            order["status"] = "CANCELED"
        return JSONResponse(order)

    def _klines(self, query: dict[str, str]) -> list[list[Any]]:
        """The recorded hour candles, and more of the same hour by hour after them."""
        recorded = DATA["klines"]
        first = int(recorded[0][0])
        start = int(query.get("startTime", first))
        limit = min(int(query.get("limit", 500)), self.klines_page)
        rows = []
        for n in range(self.klines_count):
            row = list(recorded[n % len(recorded)])
            row[0] = first + n * HOUR_MS
            row[6] = row[0] + HOUR_MS - 1
            if row[0] >= start:
                rows.append(row)
        return rows[:limit]

    def _create(self, form: dict[str, str]) -> dict[str, Any]:
        order: dict[str, Any] = copy.deepcopy(DATA["order"])
        self.next_order_id += 1
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
        self.orders[order["clientOrderId"]] = order
        if form["type"] == "MARKET":
            price = Decimal(DATA["ticker"]["askPrice"])
            trade = self.fill(order["clientOrderId"], price)
            order["fills"] = [
                {
                    "price": trade["price"],
                    "qty": trade["qty"],
                    "commission": trade["commission"],
                    "commissionAsset": "USDT",
                    "tradeId": int(trade["id"]),
                }
            ]
        return copy.deepcopy(order)

    def fill(self, client_order_id: str, price: Decimal) -> dict[str, Any]:
        """The venue fills the order whole at `price` (a resting order traded through)."""
        order = self.orders[client_order_id]
        quantity = Decimal(order["origQty"])
        trade = {
            "symbol": order["symbol"],
            "id": str(int(order["orderId"]) * 10),
            "orderId": order["orderId"],
            "orderListId": "-1",
            "price": f"{price:f}",
            "qty": order["origQty"],
            "quoteQty": f"{price * quantity:f}",
            "commission": f"{price * quantity * Decimal('0.001'):f}",
            "commissionAsset": "USDT",
            "time": "1737635557417",
            "isBuyer": order["side"] == "BUY",
            "isMaker": order["type"] != "MARKET",
            "isBestMatch": True,
        }
        self.trades[client_order_id].append(trade)
        order.update(
            status="FILLED", executedQty=order["origQty"], cummulativeQuoteQty=trade["quoteQty"]
        )
        return trade

    def cancel_at_venue(self, client_order_id: str) -> None:
        self.orders[client_order_id]["status"] = "CANCELED"

    def _find(self, query: dict[str, str]) -> dict[str, Any] | None:
        client_order_id = query.get("origClientOrderId")
        if client_order_id:
            return self.orders.get(client_order_id)
        return next((o for o in self.orders.values() if o["orderId"] == query.get("orderId")), None)


@contextlib.asynccontextmanager
async def serving_fake_binance(extra_markets: int = 0) -> AsyncIterator[FakeBinance]:
    async with serving(lambda: FakeBinance(extra_markets=extra_markets)) as fake:
        yield fake
