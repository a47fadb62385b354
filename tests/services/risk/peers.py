"""Scripted portfolio and exchange peers for the risk service's tests (and its bench),
served over real gRPC with common.testing.serving until issues 3 and 4 land."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc

DATA = Path(__file__).resolve().parent / "data"


def candles_data() -> dict[str, list[list[float]]]:
    """Real 5m candles of ETH/BTC and LTC/BTC (data/SOURCES.md)."""
    with gzip.open(DATA / "freqtrade_5m_eth_ltc_btc.json.gz", "rt") as file:
        data: dict[str, list[list[float]]] = json.load(file)
    return data


class ScriptedPortfolio(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(self, cash: str, positions: list[portfolio_pb2.Position]) -> None:
        self.cash = cash
        self.positions = {p.symbol: p for p in positions}
        self.updates: asyncio.Queue[portfolio_pb2.Position] = asyncio.Queue()
        self.equity_points: list[portfolio_pb2.EquityPoint] = []

    async def GetPortfolio(self, request: Any, context: Any) -> portfolio_pb2.GetPortfolioResponse:
        return portfolio_pb2.GetPortfolioResponse(
            portfolio=portfolio_pb2.Portfolio(account_id=request.account_id, cash=self.cash)
        )

    async def ListPositions(
        self, request: Any, context: Any
    ) -> portfolio_pb2.ListPositionsResponse:
        return portfolio_pb2.ListPositionsResponse(positions=list(self.positions.values()))

    async def GetEquityHistory(
        self, request: Any, context: Any
    ) -> portfolio_pb2.GetEquityHistoryResponse:
        return portfolio_pb2.GetEquityHistoryResponse(points=self.equity_points)

    async def StreamPositions(
        self, request: Any, context: Any
    ) -> AsyncIterator[portfolio_pb2.StreamPositionsResponse]:
        while True:
            position = await self.updates.get()
            self.positions[position.symbol] = position
            yield portfolio_pb2.StreamPositionsResponse(position=position)


class ScriptedExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(
        self,
        markets: list[exchange_pb2.Market],
        tickers: list[exchange_pb2.Ticker],
        orders: list[common_pb2.Order] = (),  # type: ignore[assignment]
        candles: dict[str, list[list[float]]] | None = None,
    ) -> None:
        self.markets = markets
        self.tickers = {t.symbol: t for t in tickers}
        self.orders = {o.order_id: o for o in orders}
        self.candles = candles or {}
        self.order_updates: asyncio.Queue[common_pb2.Order] = asyncio.Queue()
        self.ticker_updates: asyncio.Queue[exchange_pb2.Ticker] = asyncio.Queue()

    async def ListMarkets(self, request: Any, context: Any) -> exchange_pb2.ListMarketsResponse:
        return exchange_pb2.ListMarketsResponse(markets=self.markets)

    async def ListOrders(self, request: Any, context: Any) -> exchange_pb2.ListOrdersResponse:
        return exchange_pb2.ListOrdersResponse(
            orders=[o for o in self.orders.values() if o.status in request.statuses]
        )

    async def GetTicker(self, request: Any, context: Any) -> exchange_pb2.GetTickerResponse:
        return exchange_pb2.GetTickerResponse(ticker=self.tickers[request.symbol])

    async def StreamTickers(
        self, request: Any, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamTickersResponse]:
        while True:
            ticker = await self.ticker_updates.get()
            self.tickers[ticker.symbol] = ticker
            yield exchange_pb2.StreamTickersResponse(ticker=ticker)

    async def StreamOrderUpdates(
        self, request: Any, context: Any
    ) -> AsyncIterator[exchange_pb2.StreamOrderUpdatesResponse]:
        while True:
            order = await self.order_updates.get()
            self.orders[order.order_id] = order
            yield exchange_pb2.StreamOrderUpdatesResponse(order=order)

    async def GetCandles(self, request: Any, context: Any) -> exchange_pb2.GetCandlesResponse:
        rows = self.candles[request.symbol][-request.limit :]
        return exchange_pb2.GetCandlesResponse(
            candles=[
                common_pb2.Candle(
                    open_time=Timestamp(seconds=int(row[0]) // 1000),
                    open=repr(row[1]),
                    high=repr(row[2]),
                    low=repr(row[3]),
                    close=repr(row[4]),
                    volume=repr(row[5]),
                )
                for row in rows
            ]
        )


def market(symbol: str) -> exchange_pb2.Market:
    base, _, quote = symbol.partition("/")
    return exchange_pb2.Market(
        symbol=symbol,
        base=base,
        quote=quote,
        type=exchange_pb2.MARKET_TYPE_SPOT,
        active=True,
        price_increment="0.00000001",
        quantity_increment="0.001",
        min_notional="0.0001",
    )


def ticker(symbol: str, bid: str, ask: str) -> exchange_pb2.Ticker:
    return exchange_pb2.Ticker(venue="paper", symbol=symbol, bid=bid, ask=ask, last=bid)


def position(
    symbol: str, quantity: str, cost_basis: str, realized: str = "0", seconds: int = 1
) -> portfolio_pb2.Position:
    return portfolio_pb2.Position(
        account_id="paper",
        symbol=symbol,
        quantity=quantity,
        cost_basis=cost_basis,
        realized_pnl=realized,
        update_time=Timestamp(seconds=seconds),
    )


def open_order(order_id: str, symbol: str, quantity: str, price: str) -> common_pb2.Order:
    return common_pb2.Order(
        order_id=order_id,
        venue="paper",
        symbol=symbol,
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=price,
        status=common_pb2.ORDER_STATUS_OPEN,
        filled_quantity="0",
    )
