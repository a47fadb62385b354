"""A fake Kraken spot REST API on 127.0.0.1 for the real ccxt client.

It answers with Kraken's recorded bodies (data/kraken_spot.json, from ccxt's fixtures)
and keeps Kraken's conventions, none of them Binance's:
- every answer is HTTP 200 `{"error": [...], "result": ...}`: errors are strings in the
  list ("EOrder:Insufficient funds", "EAPI:Rate limit exceeded", "EService:Unavailable");
- private calls are form-encoded POSTs (nonce, API-Key and API-Sign headers);
- a create answers with the txid only; QueryOrders looks up by txid or by `userref`, an
  integer, so our client order ids (`cl_ord_id`) are found only through OpenOrders and
  ClosedOrders;
- an order lists its trade ids; amounts come from QueryTrades;
- cl_ord_id is a UUID, 32 hex digits, or up to 18 characters of free text;
- candles are in seconds, up to 720 from `since` (exclusive).
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

DATA = json.loads((Path(__file__).parent / "data" / "kraken_spot.json").read_text())
HOUR_S = 3600
_CLIENT_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}|[A-Za-z0-9_-]{1,18}"
)


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"error": [], "result": result})


def _error(*errors: str) -> JSONResponse:
    return JSONResponse({"error": list(errors)})


@dataclass
class FakeKraken(FakeVenue):
    ohlc_page: int = 720

    def rate_limited(self) -> Response:
        return _error("EAPI:Rate limit exceeded")

    def venue_error(self, fault: str) -> Response:
        if fault == "insufficient":
            return _error("EOrder:Insufficient funds")
        return _error("EService:Unavailable")

    def answer(  # noqa: PLR0911, PLR0912 - one branch per route
        self, request: Request, route: str, body: str
    ) -> Response:
        query = {key: values[-1] for key, values in parse_qs(request.url.query).items()}
        form = {key: values[-1] for key, values in parse_qs(body).items()}
        if "/0/private/" in route and not request.headers.get("API-Sign"):
            return _error("EAPI:Invalid key")
        if route == "GET /0/public/AssetPairs":
            return JSONResponse(DATA["assetPairs"])
        if route == "GET /0/public/Ticker":
            return JSONResponse(DATA["ticker"])
        if route == "GET /0/public/Depth":
            return JSONResponse(DATA["depth"])
        if route == "GET /0/public/OHLC":
            return _ok(self._ohlc(query))
        if route == "POST /0/private/BalanceEx":
            return JSONResponse(DATA["balanceEx"])
        if route == "POST /0/private/AddOrder":
            return self._create(form)
        if route == "POST /0/private/QueryOrders":
            if "userref" in form and not form["userref"].lstrip("-").isdigit():
                return _error("EGeneral:Invalid arguments:userref")
            found = {
                txid: self._shown(order, with_trades=True)
                for txid, order in self._by_txid().items()
                if txid in form.get("txid", "").split(",")
            }
            return _ok(found) if found else _error("EOrder:Invalid order")
        if route == "POST /0/private/OpenOrders":
            return _ok({"open": self._listed(lambda o: o["status"] == "open")})
        if route == "POST /0/private/ClosedOrders":
            closed = self._listed(lambda o: o["status"] != "open")
            return _ok({"closed": closed, "count": len(closed)})
        if route == "POST /0/private/QueryTrades":
            wanted = form.get("txid", "").split(",")
            trades = {t["id"]: t["record"] for ts in self.trades.values() for t in ts}
            return _ok({tid: trades[tid] for tid in wanted if tid in trades})
        if route == "POST /0/private/CancelOrder":
            order = self._by_txid().get(form.get("txid", ""))
            if order is None or order["status"] != "open":
                return _error("EOrder:Unknown order")
            order["status"] = "canceled"
            return _ok({"count": 1})
        return _error(f"EGeneral:Unknown method {route}")

    def _ohlc(self, query: dict[str, str]) -> dict[str, Any]:
        """The recorded hours, and more of the same after them, from `since` (exclusive
        in Kraken's API: rows strictly after it)."""
        recorded = DATA["ohlc"]["result"]["XBTUSDT"][:5]  # the contiguous hours
        first = int(recorded[0][0])
        since = int(query.get("since", first - 1))
        rows = []
        for n in range(2000):
            row = list(recorded[n % len(recorded)])
            row[0] = first + n * HOUR_S
            if row[0] > since:
                rows.append(row)
        rows = rows[: self.ohlc_page]
        return {"XBTUSDT": rows, "last": rows[-1][0] if rows else since}

    def _create(self, form: dict[str, str]) -> Response:
        client_order_id = form.get("cl_ord_id", "")
        if client_order_id and not _CLIENT_ID.fullmatch(client_order_id):
            return _error("EGeneral:Invalid arguments:cl_ord_id")
        self.next_order_id += 1
        txid = f"O{self.next_order_id:05d}-FAKE0-KRAKEN"
        order: dict[str, Any] = copy.deepcopy(DATA["order"])
        price = form.get("price", "0")
        order.update(
            txid=txid,
            cl_ord_id=client_order_id,
            status="open",
            opentm="1705260547.472000",
            vol=form["volume"],
            vol_exec="0.00000000",
            cost="0.000000",
            fee="0.000000",
            price="0.000000",
            trades=[],
        )
        order.pop("closetm", None)
        description = f"{form['type']} {form['volume']} {form['pair']} @ {form['ordertype']}"
        order["descr"].update(
            pair=form["pair"], type=form["type"], ordertype=form["ordertype"], price=price
        )
        order["descr"]["order"] = description
        self.orders[client_order_id or txid] = order
        if form["ordertype"] == "market":
            ask = Decimal(DATA["ticker"]["result"]["XBTUSDT"]["a"][0])
            self.fill(client_order_id or txid, ask)
        placed = copy.deepcopy(DATA["createOrder"])
        placed["result"].update(txid=[txid], descr={"order": description})
        return JSONResponse(placed)

    def fill(self, client_order_id: str, price: Decimal) -> dict[str, Any]:
        """The venue fills the order whole at `price`."""
        order = self.orders[client_order_id]
        quantity = Decimal(order["vol"])
        trade_id = f"T{self.next_order_id:05d}-FAKE0-KRAKEN"
        record = copy.deepcopy(DATA["trade"])
        record.update(
            ordertxid=order["txid"],
            pair="XBTUSDT",
            type=order["descr"]["type"],
            ordertype=order["descr"]["ordertype"],
            price=f"{price:f}",
            cost=f"{price * quantity:f}",
            fee=f"{price * quantity * Decimal('0.0026'):f}",
            vol=order["vol"],
            maker=order["descr"]["ordertype"] != "market",
        )
        self.trades[client_order_id].append({"id": trade_id, "tradeId": trade_id, "record": record})
        order.update(
            status="closed",
            vol_exec=order["vol"],
            cost=record["cost"],
            fee=record["fee"],
            price=record["price"],
            trades=[trade_id],
            closetm="1705260547.4728658",
        )
        return {"id": trade_id}

    def cancel_at_venue(self, client_order_id: str) -> None:
        self.orders[client_order_id]["status"] = "canceled"

    def _by_txid(self) -> dict[str, dict[str, Any]]:
        return {order["txid"]: order for order in self.orders.values()}

    def _listed(self, wanted: Any) -> dict[str, Any]:
        return {
            order["txid"]: self._shown(order, with_trades=False)
            for order in self.orders.values()
            if wanted(order)
        }

    @staticmethod
    def _shown(order: dict[str, Any], *, with_trades: bool) -> dict[str, Any]:
        shown = {key: value for key, value in order.items() if key != "txid"}
        if not with_trades:
            shown.pop("trades", None)
        return shown


@contextlib.asynccontextmanager
async def serving_fake_kraken() -> AsyncIterator[FakeKraken]:
    async with serving(FakeKraken) as fake:
        yield fake
