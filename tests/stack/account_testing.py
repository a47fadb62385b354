"""Whether the exchange, the portfolio and risk agree on the paper account, read through
each service's own API: GetBalances (exchange), GetPortfolio (portfolio), and CheckOrder
(risk), which must approve a buy of the cash to within 5 USDT and a sell of exactly the
BTC held, and deny a buy 5 USDT over the cash and a sell one quantity step over the
holding, each RISK_INSUFFICIENT_BALANCE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

import grpc

from common.config import Config
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc

CONFIGURED = {"USDT": Decimal(100000), "BTC": Decimal(1)}
STEP = Decimal("0.00001")  # the paper market's quantity increment
MARGIN = Decimal(5)  # USDT either side of the cash; far above a quantity step's value
AGREE_WITHIN_SECONDS = 30.0


@dataclass
class Stubs:
    exchange: exchange_pb2_grpc.ExchangeServiceAsyncStub
    portfolio: portfolio_pb2_grpc.PortfolioServiceAsyncStub
    risk: risk_pb2_grpc.RiskServiceAsyncStub


@asynccontextmanager
async def connected(config: Config) -> AsyncIterator[Stubs]:
    """Stubs of the three services `config` names, on channels closed afterwards."""
    async with (
        grpc.aio.insecure_channel(config.exchange.address) as exchange_channel,
        grpc.aio.insecure_channel(config.portfolio.address) as portfolio_channel,
        grpc.aio.insecure_channel(config.risk.address) as risk_channel,
    ):
        yield Stubs(
            exchange_pb2_grpc.ExchangeServiceStub(exchange_channel),
            portfolio_pb2_grpc.PortfolioServiceStub(portfolio_channel),
            risk_pb2_grpc.RiskServiceStub(risk_channel),
        )


async def exchange_holdings(stubs: Stubs) -> dict[str, Decimal]:
    response = await stubs.exchange.GetBalances(
        exchange_pb2.GetBalancesRequest(venue="paper"), timeout=5
    )
    return {b.asset: Decimal(b.total) for b in response.balances if Decimal(b.total)}


async def portfolio_holdings(stubs: Stubs) -> dict[str, Decimal]:
    response = await stubs.portfolio.GetPortfolio(
        portfolio_pb2.GetPortfolioRequest(account_id="paper"), timeout=5
    )
    return {b.asset: Decimal(b.total) for b in response.portfolio.balances if Decimal(b.total)}


async def risk_decision(
    stubs: Stubs, side: common_pb2.Side.ValueType, quantity: Decimal, price: Decimal
) -> tuple[bool, set[str]]:
    """(approved, reasons) of a limit order checked without an order id (reserves nothing)."""
    response = await stubs.risk.CheckOrder(
        risk_pb2.CheckOrderRequest(
            venue="paper",
            symbol="BTC/USDT",
            side=side,
            type=common_pb2.ORDER_TYPE_LIMIT,
            quantity=str(quantity),
            price=str(price),
        ),
        timeout=5,
    )
    return (
        response.decision == risk_pb2.DECISION_APPROVE,
        {v.reason for v in response.violations},
    )


async def risk_agrees(stubs: Stubs, holdings: dict[str, Decimal]) -> list[str]:
    """What risk gets wrong about `holdings` (nothing when it agrees)."""
    ticker = (
        await stubs.exchange.GetTicker(
            exchange_pb2.GetTickerRequest(venue="paper", symbol="BTC/USDT"), timeout=5
        )
    ).ticker
    price = ((Decimal(ticker.bid) + Decimal(ticker.ask)) / 2).quantize(Decimal("0.01"))
    cash, btc = holdings.get("USDT", Decimal(0)), holdings.get("BTC", Decimal(0))
    short = "RISK_INSUFFICIENT_BALANCE"
    checks = {
        "buy of the cash": (
            common_pb2.SIDE_BUY,
            ((cash - MARGIN) / price).quantize(STEP, ROUND_DOWN),
            True,
        ),
        "buy over the cash": (
            common_pb2.SIDE_BUY,
            ((cash + MARGIN) / price).quantize(STEP, ROUND_UP),
            False,
        ),
        "sell of the BTC held": (common_pb2.SIDE_SELL, btc, True),
        "sell over the BTC held": (common_pb2.SIDE_SELL, btc + STEP, False),
    }
    wrong = []
    for name, (side, quantity, approve) in checks.items():
        approved, reasons = await risk_decision(stubs, side, quantity, price)
        if approved != approve or (not approve and short not in reasons):
            wrong.append(f"{name} ({quantity} at {price}): approved={approved} {reasons}")
    return wrong


async def all_agree(stubs: Stubs, expected: dict[str, Decimal] | None = None) -> dict[str, Decimal]:
    """Waits until the exchange and the portfolio hold the same (and `expected`, if given)
    and risk decides by it; returns the holdings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AGREE_WITHIN_SECONDS
    problems: list[str] = []
    while loop.time() < deadline:
        try:
            exchange = await exchange_holdings(stubs)
            portfolio = await portfolio_holdings(stubs)
            problems = []
            if expected is not None and exchange != expected:
                problems.append(f"exchange {exchange} != expected {expected}")
            if portfolio != exchange:
                problems.append(f"portfolio {portfolio} != exchange {exchange}")
            else:
                problems += await risk_agrees(stubs, exchange)
            if not problems:
                return exchange
        except grpc.aio.AioRpcError as error:  # a service still starting
            problems = [f"{error.code().name}: {error.details()}"]
        await asyncio.sleep(0.25)
    raise AssertionError(f"no agreement within {AGREE_WITHIN_SECONDS} s: {problems}")


async def market(
    stubs: Stubs, client_order_id: str, side: common_pb2.Side.ValueType, quantity: str
) -> None:
    """A market order, filled whole. Rejected UNAVAILABLE (the exchange's channel to a
    restarted risk still reconnecting: trading fails closed), it is sent again under a
    new client_order_id, as the rejection says to."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AGREE_WITHIN_SECONDS
    for attempt in range(1000):
        try:
            order = (
                await stubs.exchange.SubmitOrder(
                    exchange_pb2.SubmitOrderRequest(
                        venue="paper",
                        symbol="BTC/USDT",
                        side=side,
                        type=common_pb2.ORDER_TYPE_MARKET,
                        quantity=quantity,
                        client_order_id=f"{client_order_id}-{attempt}",
                    ),
                    timeout=5,
                )
            ).order
            break
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE or loop.time() > deadline:
                raise
        await asyncio.sleep(0.2)
    assert order.status == common_pb2.ORDER_STATUS_FILLED, order
    assert Decimal(order.filled_quantity) == Decimal(quantity)
