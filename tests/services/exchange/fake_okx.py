"""A fake OKX v5 REST API on 127.0.0.1 for the real ccxt client.

It answers with OKX's own recorded bodies (data/okx_spot.json, from ccxt's fixtures) and
keeps OKX's conventions, none of them Binance's:
- every private call must carry the passphrase (OK-ACCESS-PASSPHRASE), else 50105;
- clOrdId is 1-32 letters and digits: anything else is refused (sCode 51000);
- a create answers with ids only (no status, no fills): the state needs a lookup;
- fills are a separate endpoint (trade/fills-history) with OKX's trade ids;
- errors come with HTTP 200 and `{"code": "<not 0>", "msg": ..., "data": [{sCode, sMsg}]}`;
- candles come newest first, at most 300 per request (history-candles: 100), the newest
  of the window when more were asked for.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.services.exchange.fake_venue import FakeVenue, serving

DATA = json.loads((Path(__file__).parent / "data" / "okx_spot.json").read_text())
PASSPHRASE = "okx-passphrase-never-shown"  # noqa: S105 - a test value
HOUR_MS = 3_600_000
_CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_STATES_OPEN = ("live", "partially_filled")


def _ok(data: list[Any]) -> JSONResponse:
    return JSONResponse({"code": "0", "msg": "", "data": data})


def _error(code: str, message: str, data: list[Any] | None = None, status: int = 200) -> Response:
    return JSONResponse({"code": code, "msg": message, "data": data or []}, status_code=status)


@dataclass
class FakeOkx(FakeVenue):
    # OKX's page limits: 300 recent candles per request, 100 from history-candles.
    candles_page: int = 300
    history_page: int = 100
    # More instruments: spot ones like BTC-USDT, and as many swaps (memory measurements:
    # a venue of ~2,000 instruments).
    extra_markets: int = 0

    def __post_init__(self) -> None:
        template = DATA["instruments"]["data"][0]
        self.spot = [template]
        self.swaps = []
        for n in range(self.extra_markets):
            base = f"C{n:04d}X"
            self.spot.append({**template, "instId": f"{base}-USDT", "baseCcy": base})
            swap = {**template, "instId": f"{base}-USDT-SWAP", "instType": "SWAP"}
            swap.update(baseCcy="", quoteCcy="", settleCcy="USDT", ctVal="0.01")
            swap.update(ctValCcy=base, ctType="linear", uly=f"{base}-USDT", lotSz="1")
            swap.update(instFamily=f"{base}-USDT", minSz="1", ctMult="1")
            self.swaps.append(swap)

    def rate_limited(self) -> Response:
        return _error("50011", "Too Many Requests", status=429)

    def venue_error(self, fault: str) -> Response:
        if fault == "insufficient":
            failed = {"clOrdId": "", "ordId": "", "sCode": "51008", "tag": ""}
            failed["sMsg"] = "Order failed. Insufficient USDT balance in account."
            return _error("1", "All operations failed", [failed])
        return _error("50013", "Systems are busy. Please try again later.")

    def answer(  # noqa: PLR0911, PLR0912 - one branch per route
        self, request: Request, route: str, body: str
    ) -> Response:
        query = {key: values[-1] for key, values in parse_qs(request.url.query).items()}
        path = route.split(" ", 1)[1]
        private = "/api/v5/account/" in path or "/api/v5/trade/" in path
        if private and request.headers.get("OK-ACCESS-PASSPHRASE") != PASSPHRASE:
            return _error("50105", "Request header OK-ACCESS-PASSPHRASE incorrect.", status=401)
        if route == "GET /api/v5/public/instruments":
            kind = query.get("instType")
            return _ok(self.spot if kind == "SPOT" else self.swaps if kind == "SWAP" else [])
        if route == "GET /api/v5/market/ticker":
            return JSONResponse(DATA["ticker"])
        if route == "GET /api/v5/market/tickers":
            return JSONResponse(DATA["ticker"])
        if route == "GET /api/v5/market/books":
            return JSONResponse(DATA["books"])
        if route in ("GET /api/v5/market/candles", "GET /api/v5/market/history-candles"):
            page = self.history_page if "history" in route else self.candles_page
            return _ok(self._candles(query, page))
        if route == "GET /api/v5/account/balance":
            return JSONResponse(DATA["balance"])
        if route in ("POST /api/v5/trade/batch-orders", "POST /api/v5/trade/order"):
            sent = json.loads(body)
            return self._create(sent[0] if isinstance(sent, list) else sent)
        if route == "GET /api/v5/trade/order":
            order = self._find(query)
            if order is None:
                return _error("51603", "Order does not exist")
            return _ok([copy.deepcopy(order)])
        if route == "POST /api/v5/trade/cancel-order":
            return self._cancel(json.loads(body))
        if route == "GET /api/v5/trade/fills-history":
            ordered = [t for ts in self.trades.values() for t in ts]
            return _ok([t for t in ordered if t["ordId"] == query.get("ordId")])
        if route == "GET /api/v5/trade/orders-pending":
            return _ok([o for o in self.orders.values() if o["state"] in _STATES_OPEN])
        if route == "GET /api/v5/trade/orders-history":
            return _ok([o for o in self.orders.values() if o["state"] not in _STATES_OPEN])
        return _error("50000", f"no route {route} on this fake", status=404)

    def _candles(self, query: dict[str, str], page: int) -> list[list[str]]:
        """The recorded hour candles and more of the same after them, newest first;
        `before` and `after` are exclusive bounds; the newest `limit` of the window."""
        recorded = list(reversed(DATA["candles"]["data"]))  # oldest first
        first = int(recorded[0][0])
        low = int(query.get("before", first - 1))
        high = int(query.get("after", first + 10_000 * HOUR_MS))
        limit = min(int(query.get("limit", 100)), page)
        rows = []
        for n in range(2000):
            row = list(recorded[n % len(recorded)])
            row[0] = str(first + n * HOUR_MS)
            if low < int(row[0]) < high:
                rows.append(row)
        return list(reversed(rows))[:limit]

    def _create(self, sent: dict[str, Any]) -> Response:
        client_order_id = str(sent.get("clOrdId", ""))
        if not _CLIENT_ID.fullmatch(client_order_id):
            failed = {"clOrdId": client_order_id, "ordId": "", "sCode": "51000", "tag": ""}
            failed["sMsg"] = "Parameter clOrdId error"
            return _error("1", "All operations failed", [failed])
        self.next_order_id += 1
        order: dict[str, Any] = copy.deepcopy(DATA["order"])
        order.update(
            accFillSz="0",
            avgPx="",
            fee="0",
            feeCcy="USDT",
            fillPx="",
            fillSz="0",
            fillTime="",
            tradeId="",
            clOrdId=client_order_id,
            ordId=str(2896576259728695296 + self.next_order_id),
            instId=sent["instId"],
            ordType=sent["ordType"],
            side=sent["side"],
            sz=sent["sz"],
            px=sent.get("px", ""),
            state="live",
            tag="",
        )
        self.orders[client_order_id] = order
        if sent["ordType"] == "market":
            self.fill(client_order_id, Decimal(DATA["ticker"]["data"][0]["askPx"]))
        placed = copy.deepcopy(DATA["createOrder"])
        placed["data"][0].update(clOrdId=client_order_id, ordId=order["ordId"], tag="")
        return JSONResponse(placed)

    def fill(self, client_order_id: str, price: Decimal) -> dict[str, Any]:
        """The venue fills the order whole at `price`."""
        order = self.orders[client_order_id]
        quantity = Decimal(order["sz"])
        trade = {
            "instType": "SPOT",
            "instId": order["instId"],
            "tradeId": str(58148845 + self.next_order_id),
            "ordId": order["ordId"],
            "clOrdId": client_order_id,
            "billId": str(696837060589600769 + self.next_order_id),
            "subType": "1",
            "tag": "",
            "fillPx": f"{price:f}",
            "fillSz": order["sz"],
            "fillIdxPx": "",
            "fillPnl": "0",
            "fillPxVol": "",
            "fillPxUsd": "",
            "fillMarkVol": "",
            "fillFwdPx": "",
            "fillMarkPx": "",
            "side": order["side"],
            "posSide": "net",
            "execType": "T" if order["ordType"] == "market" else "M",
            "feeCcy": "USDT",
            "fee": f"{-(price * quantity * Decimal('0.001')):f}",
            "ts": "1712410901851",
            "fillTime": "1712410901850",
        }
        self.trades[client_order_id].append(trade)
        order.update(
            state="filled",
            accFillSz=order["sz"],
            avgPx=f"{price:f}",
            fillPx=f"{price:f}",
            fillSz=order["sz"],
            fee=trade["fee"],
            tradeId=trade["tradeId"],
        )
        return trade

    def cancel_at_venue(self, client_order_id: str) -> None:
        self.orders[client_order_id]["state"] = "canceled"

    def _cancel(self, sent: dict[str, Any]) -> Response:
        order = self._find(sent)
        if order is None or order["state"] not in _STATES_OPEN:
            failed = {"clOrdId": sent.get("clOrdId", ""), "ordId": sent.get("ordId", "")}
            failed.update(sCode="51400", sMsg="Order cancellation failed as the order has been "
                          "filled, canceled or does not exist")  # fmt: skip
            return _error("1", "", [failed])
        order["state"] = "canceled"
        return _ok(
            [{"clOrdId": order["clOrdId"], "ordId": order["ordId"], "sCode": "0", "sMsg": ""}]
        )

    def _find(self, query: dict[str, Any]) -> dict[str, Any] | None:
        client_order_id = query.get("clOrdId")
        if client_order_id:
            return self.orders.get(str(client_order_id))
        return next((o for o in self.orders.values() if o["ordId"] == query.get("ordId")), None)


@contextlib.asynccontextmanager
async def serving_fake_okx(extra_markets: int = 0) -> AsyncIterator[FakeOkx]:
    async with serving(lambda: FakeOkx(extra_markets=extra_markets)) as fake:
        yield fake
