"""The risk service over real gRPC, fed by scripted portfolio and exchange peers:
checks, limits, the kill switch and its audit trail, auto-halt, events, exposure,
VaR, stress tests, and the state rebuilt after a restart."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal as D  # noqa: N817 - amounts read better short
from pathlib import Path
from statistics import NormalDist
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from common.config import load_config
from common.server import running
from common.testing import (
    free_port,
    health_status,
    isolated_config,
    serving,
    wait_until_serving,
)
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.main import SPEC

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
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
        await context.send_initial_metadata(())  # subscribed, as the real portfolio says
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

    async def ListVenues(self, request: Any, context: Any) -> exchange_pb2.ListVenuesResponse:
        paper = exchange_pb2.Venue(name="paper", kind=exchange_pb2.VENUE_KIND_PAPER)
        return exchange_pb2.ListVenuesResponse(venues=[paper])

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


ETH, LTC = "ETH/BTC", "LTC/BTC"


def make_peers() -> tuple[ScriptedPortfolio, ScriptedExchange]:
    """10 BTC cash, 10 ETH (mark 0.1) and 50 LTC (mark 0.02): equity 12 BTC."""
    # Scripted peers implement only the RPCs risk calls (the rest stay UNIMPLEMENTED).
    portfolio = ScriptedPortfolio(  # type: ignore[abstract]
        cash="10", positions=[position(ETH, "10", "0.9"), position(LTC, "50", "0.9")]
    )
    exchange = ScriptedExchange(  # type: ignore[abstract]
        markets=[market(ETH), market(LTC)],
        tickers=[ticker(ETH, "0.0999", "0.1001"), ticker(LTC, "0.0199", "0.0201")],
        orders=[open_order("o-1", ETH, "1", "0.09")],
        candles=candles_data(),
    )
    return portfolio, exchange


@dataclass
class Stack:
    risk: risk_pb2_grpc.RiskServiceAsyncStub
    portfolio: ScriptedPortfolio
    exchange: ScriptedExchange
    restart: Callable[[], Awaitable[risk_pb2_grpc.RiskServiceAsyncStub]]


@asynccontextmanager
async def risk_stack(tmp_path: Path, **overrides: str) -> AsyncIterator[Stack]:
    portfolio, exchange = make_peers()
    async with AsyncExitStack() as stack:
        portfolio_address = await stack.enter_async_context(
            serving(portfolio, portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server)
        )
        exchange_address = await stack.enter_async_context(
            serving(exchange, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server)
        )
        config = load_config(
            isolated_config(
                tmp_path,
                PORTFOLIO__ADDRESS=portfolio_address,
                EXCHANGE__ADDRESS=exchange_address,
                RISK__GRACE_SECONDS="0",
                RISK__FEEDS__RETRY_SECONDS="0.05",
                RISK__LIMITS__MAX_LEVERAGE="",
                **overrides,
            )
        )
        inner = AsyncExitStack()

        async def start() -> risk_pb2_grpc.RiskServiceAsyncStub:
            service = await inner.enter_async_context(running(SPEC, config))
            channel = await inner.enter_async_context(grpc.aio.insecure_channel(service.address))
            return risk_pb2_grpc.RiskServiceStub(channel)

        async def restart() -> risk_pb2_grpc.RiskServiceAsyncStub:
            """Stops the risk service and starts it again on the same database."""
            nonlocal inner
            await inner.aclose()
            inner = AsyncExitStack()
            return await start()

        try:
            yield Stack(await start(), portfolio, exchange, restart)
        finally:
            await inner.aclose()


def buy(symbol: str = ETH, quantity: str = "1", price: str = "0.1") -> risk_pb2.CheckOrderRequest:
    return risk_pb2.CheckOrderRequest(
        venue="paper",
        symbol=symbol,
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=price,
        client_order_id="c-1",
    )


def reasons(response: risk_pb2.CheckOrderResponse) -> list[str]:
    return [violation.reason for violation in response.violations]


async def eventually(probe: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if await probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def synced(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> None:
    async def fresh() -> bool:
        return "RISK_STATE_STALE" not in reasons(await risk.CheckOrder(buy()))

    await eventually(fresh)


async def test_orders_are_denied_as_stale_until_peers_that_start_later_answer(
    tmp_path: Path,
) -> None:
    portfolio_port, exchange_port = free_port(), free_port()
    config = load_config(
        isolated_config(
            tmp_path,
            PORTFOLIO__ADDRESS=f"127.0.0.1:{portfolio_port}",
            EXCHANGE__ADDRESS=f"127.0.0.1:{exchange_port}",
            RISK__GRACE_SECONDS="0",
            RISK__FEEDS__RETRY_SECONDS="0.05",
        )
    )
    portfolio, exchange = make_peers()
    peers = grpc.aio.server()
    portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server(portfolio, peers)
    exchange_pb2_grpc.add_ExchangeServiceServicer_to_server(exchange, peers)
    async with (
        running(SPEC, config) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        await asyncio.sleep(0.3)  # the feeds have tried and failed by now
        response = await risk.CheckOrder(buy())
        assert response.decision == risk_pb2.DECISION_DENY
        assert reasons(response) == ["RISK_STATE_STALE"]
        assert "venues" in response.violations[0].message
        # It answers, but says it cannot do its work yet: the stack's ready line waits.
        assert await health_status(service.address) == NOT_SERVING
        # The peers start after risk (any order under supervisord): risk catches up.
        peers.add_insecure_port(f"127.0.0.1:{portfolio_port}")
        peers.add_insecure_port(f"127.0.0.1:{exchange_port}")
        await peers.start()
        try:
            await wait_until_serving(service.address)
            # SERVING comes with the books synced: the first order is checked, not stale.
            assert (await risk.CheckOrder(buy())).decision == risk_pb2.DECISION_APPROVE
        finally:
            await peers.stop(None)


async def test_checks_limits_and_field_violations_over_grpc(tmp_path: Path) -> None:
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        approved = await risk.CheckOrder(buy())
        assert approved.decision == risk_pb2.DECISION_APPROVE
        assert list(approved.violations) == []

        updated = await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_order_notional="0.1", max_leverage="garbage"),
                update_mask=FieldMask(paths=["max_order_notional"]),
            )
        )
        # The mask names one field: the other (even a bad one) is left as it was.
        assert updated.limits.max_order_notional == "0.1"
        assert updated.limits.max_price_deviation == "0.1"
        denied = await risk.CheckOrder(buy(quantity="1", price="0.1"))
        assert denied.decision == risk_pb2.DECISION_DENY
        assert reasons(denied) == ["RISK_MAX_NOTIONAL"]
        assert denied.violations[0].limit == "0.1"

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.UpdateLimits(
                risk_pb2.UpdateLimitsRequest(
                    limits=risk_pb2.Limits(max_leverage="-2", max_drawdown="1.5"),
                    update_mask=FieldMask(paths=["max_leverage", "max_drawdown"]),
                )
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = _field_violations(raised.value)
        assert fields == ["limits.max_leverage", "limits.max_drawdown"]
        assert (await risk.GetLimits(risk_pb2.GetLimitsRequest())).limits.max_drawdown == ""

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.CheckOrder(risk_pb2.CheckOrderRequest(symbol=ETH, quantity="1e3"))
        assert _field_violations(raised.value) == ["side", "quantity", "type"]


async def test_tiny_limits_go_out_as_plain_decimals(tmp_path: Path) -> None:
    """Decimals leave risk in plain notation ("0.0000001"), never as "1E-7"."""
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        updated = await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_order_notional="0.00000010", max_var="0.0000001"),
                update_mask=FieldMask(paths=["max_order_notional", "max_var"]),
            )
        )
        read = (await risk.GetLimits(risk_pb2.GetLimitsRequest())).limits
        for limits in (updated.limits, read):
            assert (limits.max_order_notional, limits.max_var) == ("0.0000001", "0.0000001")
        denied = await risk.CheckOrder(buy(quantity="0.001", price="0.0001"))
        notional = next(v for v in denied.violations if v.reason == "RISK_MAX_NOTIONAL")
        assert (notional.limit, notional.actual) == ("0.0000001", "0.0000001")


async def test_limits_carry_a_zero_loss_cooldown(tmp_path: Path) -> None:
    """A zero cooldown is sent as "0s", not left out: the JSON of the limits keeps one shape."""
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        read = (await risk.GetLimits(risk_pb2.GetLimitsRequest())).limits
        assert read.loss_cooldown_trades == 0
        assert read.HasField("loss_cooldown")
        assert json_format.MessageToDict(read)["lossCooldown"] == "0s"


async def test_kill_switch_audit_trail_events_and_restart(tmp_path: Path) -> None:
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        await events.initial_metadata()  # the server sends its headers once subscribed

        halted = await risk.SetTradingState(
            risk_pb2.SetTradingStateRequest(
                state=risk_pb2.TRADING_STATE_HALTED, reason="exchange incident"
            ),
            metadata=[("x-actor", "alice")],
        )
        assert halted.trading_state.updated_by == "alice"
        event = await next_event(events)
        assert event.type == risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED
        assert event.trading_state.state == risk_pb2.TRADING_STATE_HALTED
        assert event.trading_state.reason == "exchange incident"

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.SetTradingState(risk_pb2.SetTradingStateRequest())
        assert _field_violations(raised.value) == ["state"]

        denied = await risk.CheckOrder(buy())
        assert reasons(denied) == ["RISK_TRADING_HALTED"]
        event = await next_event(events)
        assert event.type == risk_pb2.RISK_EVENT_TYPE_ORDER_DENIED
        assert event.client_order_id == "c-1"

        await risk.SetTradingState(
            risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_REDUCING, reason="exit")
        )
        sell = buy(quantity="5")
        sell.side = common_pb2.SIDE_SELL
        assert reasons(await risk.CheckOrder(sell)) == []
        assert reasons(await risk.CheckOrder(buy())) == ["RISK_REDUCING_ONLY"]
        events.cancel()

        # After a restart: the state (who, why) and the limits come from the database,
        # the book from the peers' snapshots.
        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_open_orders=1),
                update_mask=FieldMask(paths=["max_open_orders"]),
            )
        )
        before = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
        risk = await stack.restart()
        await synced(risk)
        state = (await risk.GetTradingState(risk_pb2.GetTradingStateRequest())).trading_state
        assert state.state == risk_pb2.TRADING_STATE_REDUCING
        assert (state.reason, state.updated_by) == ("exit", "grpc")
        assert (await risk.GetLimits(risk_pb2.GetLimitsRequest())).limits.max_open_orders == 1
        after = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
        assert after == before
        assert "RISK_MAX_OPEN_ORDERS" in reasons(await risk.CheckOrder(buy()))


async def test_a_breach_of_the_daily_loss_limit_halts_trading(tmp_path: Path) -> None:
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(daily_loss_limit="0.5"),
                update_mask=FieldMask(paths=["daily_loss_limit"]),
            )
        )
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        await events.initial_metadata()  # subscribed
        # ETH halves: 10 ETH lose 0.5 BTC of the day's 12.
        await stack.exchange.ticker_updates.put(ticker(ETH, "0.0499", "0.0501"))
        breach = await next_event(events)
        assert breach.type == risk_pb2.RISK_EVENT_TYPE_LIMIT_BREACHED
        assert [v.reason for v in breach.violations] == ["RISK_DAILY_LOSS"]
        change = await next_event(events)
        assert change.type == risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED
        assert change.trading_state.state == risk_pb2.TRADING_STATE_HALTED
        assert change.trading_state.updated_by == "risk"
        events.cancel()
        assert "RISK_TRADING_HALTED" in reasons(await risk.CheckOrder(buy(price="0.05")))


async def test_exposure_and_stress_test(tmp_path: Path) -> None:
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        exposure = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
        assert [D(exposure.gross), D(exposure.net), D(exposure.equity)] == [2, 2, 12]
        assert exposure.leverage == "0.1667"
        eth = next(row for row in exposure.symbols if row.symbol == ETH)
        assert D(eth.open_order_notional) == D("0.09")

        stress = await risk.RunStressTest(
            risk_pb2.RunStressTestRequest(
                shocks=[
                    risk_pb2.PriceShock(target="BTC", change=0.5),  # no position in BTC
                    risk_pb2.PriceShock(target="ETH", change=-0.2),
                    risk_pb2.PriceShock(target=LTC, change=-0.5),
                ]
            )
        )
        assert {r.symbol: D(r.pnl) for r in stress.results} == {
            ETH: D("-0.2"),
            LTC: D("-0.5"),
        }
        assert D(stress.total_pnl) == D("-0.7")

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.RunStressTest(
                risk_pb2.RunStressTestRequest(shocks=[risk_pb2.PriceShock(target=ETH, change=-1)])
            )
        assert _field_violations(raised.value) == ["shocks[0].change"]


async def test_monte_carlo_is_refused_above_the_memory_soft_limit(tmp_path: Path) -> None:
    # This process (pytest, both peers, risk) is far above a 16 MiB budget's soft limit.
    async with risk_stack(tmp_path, RISK__MEMORY_BUDGET_MIB="16") as stack:
        await synced(stack.risk)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.risk.ComputeVaR(
                risk_pb2.ComputeVaRRequest(method=risk_pb2.VAR_METHOD_MONTE_CARLO)
            )
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _error_info(raised.value).reason == "MEMORY_BUDGET"
        # Historical VaR allocates next to nothing: not admitted against the budget.
        historical = await stack.risk.ComputeVaR(risk_pb2.ComputeVaRRequest())
        assert historical.value_at_risk > 0


async def test_too_short_a_history_is_failed_precondition_naming_it(tmp_path: Path) -> None:
    rows = candles_data()
    async with risk_stack(tmp_path) as stack:
        risk = stack.risk
        await synced(risk)
        for candles, have in ((0, 0), (6, 5), (30, 29)):
            stack.exchange.candles = {symbol: rows[symbol][:candles] for symbol in rows}
            for method in (risk_pb2.VAR_METHOD_HISTORICAL, risk_pb2.VAR_METHOD_MONTE_CARLO):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await risk.ComputeVaR(
                        risk_pb2.ComputeVaRRequest(method=method, timeframe=common_pb2.TIMEFRAME_1M)
                    )
                assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                info = _error_info(raised.value)
                assert info.reason == "VAR_INSUFFICIENT_HISTORY"
                assert dict(info.metadata) == {"timeframe": "1m", "have": str(have), "need": "30"}
                details = raised.value.details() or ""
                assert "1m candles" in details
                assert f"has {have}" in details

        stack.exchange.candles = {symbol: rows[symbol][:31] for symbol in rows}
        enough = await risk.ComputeVaR(risk_pb2.ComputeVaRRequest())
        assert enough.observations == 30
        assert enough.value_at_risk > 0

        # A lookback below the minimum could never be answered: the request is wrong.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.ComputeVaR(risk_pb2.ComputeVaRRequest(lookback=10))
        assert _field_violations(raised.value) == ["lookback"]

        # The exchange failing to give candles is its failure, said so (not INTERNAL).
        stack.exchange.candles = {}
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.ComputeVaR(risk_pb2.ComputeVaRRequest())
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert _error_info(raised.value).reason == "VAR_CANDLES_UNAVAILABLE"


async def test_every_method_answers_its_default_request_in_a_fresh_risk_process(
    tmp_path: Path,
) -> None:
    """A real `python -m services.risk` with its real 96 MiB budget: the default request
    of each method runs, Monte Carlo too, again and again (none refused MEMORY_BUDGET)."""
    portfolio, exchange = make_peers()
    async with (
        serving(portfolio, portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server) as p,
        serving(exchange, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as e,
    ):
        environment = isolated_config(tmp_path, PORTFOLIO__ADDRESS=p, EXCHANGE__ADDRESS=e)
        address = load_config(environment).risk.address
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.risk", env=environment, stderr=subprocess.DEVNULL
        )
        try:
            await wait_until_serving(address)
            async with grpc.aio.insecure_channel(address) as channel:
                risk = risk_pb2_grpc.RiskServiceStub(channel)
                await synced(risk)
                for _ in range(3):
                    for method in (
                        risk_pb2.VAR_METHOD_HISTORICAL,
                        risk_pb2.VAR_METHOD_PARAMETRIC,
                        risk_pb2.VAR_METHOD_MONTE_CARLO,
                    ):
                        answer = await risk.ComputeVaR(risk_pb2.ComputeVaRRequest(method=method))
                        assert answer.observations == 500  # [risk.var] lookback
                        assert answer.conditional_value_at_risk >= answer.value_at_risk > 0
        finally:
            process.terminate()
            await process.wait()


async def test_the_minimum_history_is_configurable(tmp_path: Path) -> None:
    rows = candles_data()
    async with risk_stack(tmp_path, RISK__VAR__MIN_OBSERVATIONS="5") as stack:
        await synced(stack.risk)
        stack.exchange.candles = {symbol: rows[symbol][:6] for symbol in rows}
        answer = await stack.risk.ComputeVaR(risk_pb2.ComputeVaRRequest(lookback=5))
        assert answer.observations == 5
        stack.exchange.candles = {symbol: rows[symbol][:5] for symbol in rows}
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.risk.ComputeVaR(risk_pb2.ComputeVaRRequest(lookback=5))
        assert _error_info(raised.value).metadata["need"] == "5"


async def test_var_and_cvar_match_an_independent_computation(tmp_path: Path) -> None:
    closes = {
        symbol: {int(row[0]) // 1000: row[4] for row in rows[-101:]}
        for symbol, rows in candles_data().items()
    }
    times = sorted(set(closes[ETH]) & set(closes[LTC]))
    prices = np.array([[closes[ETH][t], closes[LTC][t]] for t in times])
    pnl = (prices[1:] / prices[:-1] - 1) @ np.array([1.0, 1.0])  # 1 BTC in each
    losses = -pnl
    historical_var = np.percentile(losses, 95)
    historical_cvar = losses[losses >= historical_var].mean()
    z = NormalDist().inv_cdf(0.05)
    mu, sigma = pnl.mean(), pnl.std(ddof=1)

    # The budget is the test process's, which holds pytest and both peers as well.
    async with risk_stack(tmp_path, RISK__MEMORY_BUDGET_MIB="4096") as stack:
        risk = stack.risk
        await synced(risk)

        async def var(
            method: int, hours: float = 5 / 60, **extra: int
        ) -> risk_pb2.ComputeVaRResponse:
            horizon = Duration(seconds=int(hours * 3600))
            return await risk.ComputeVaR(
                risk_pb2.ComputeVaRRequest(
                    method=method,  # type: ignore[arg-type]
                    confidence=0.95,
                    horizon=horizon,
                    timeframe=common_pb2.TIMEFRAME_5M,
                    lookback=100,
                    **extra,  # type: ignore[arg-type]
                )
            )

        historical = await var(risk_pb2.VAR_METHOD_HISTORICAL)
        assert historical.observations == len(pnl)
        assert historical.value_at_risk == pytest.approx(historical_var, rel=1e-9)
        assert historical.conditional_value_at_risk == pytest.approx(historical_cvar, rel=1e-9)
        one_hour = await var(risk_pb2.VAR_METHOD_HISTORICAL, hours=1)
        assert one_hour.value_at_risk == pytest.approx(historical_var * math.sqrt(12), rel=1e-9)

        parametric = await var(risk_pb2.VAR_METHOD_PARAMETRIC, hours=1)
        assert parametric.value_at_risk == pytest.approx(
            -(mu * 12 + sigma * math.sqrt(12) * z), rel=1e-9
        )
        assert parametric.conditional_value_at_risk == pytest.approx(
            sigma * math.sqrt(12) * NormalDist().pdf(z) / 0.05 - mu * 12, rel=1e-9
        )

        monte_carlo = await var(
            risk_pb2.VAR_METHOD_MONTE_CARLO, hours=1, simulations=200_000, seed=7
        )
        assert monte_carlo.value_at_risk == pytest.approx(parametric.value_at_risk, rel=0.03)
        again = await var(risk_pb2.VAR_METHOD_MONTE_CARLO, hours=1, simulations=200_000, seed=7)
        assert again.value_at_risk == monte_carlo.value_at_risk
        # Asked at once, simulations take turns: each answer is the one asked alone.
        at_once = await asyncio.gather(
            *(
                var(risk_pb2.VAR_METHOD_MONTE_CARLO, hours=1, simulations=20_000, seed=seed)
                for seed in (7, 8, 7)
            )
        )
        alone = await var(risk_pb2.VAR_METHOD_MONTE_CARLO, hours=1, simulations=20_000, seed=8)
        assert at_once[0] == at_once[2] != at_once[1] == alone

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.ComputeVaR(
                risk_pb2.ComputeVaRRequest(confidence=1.5, method=9)  # type: ignore[arg-type]
            )
        assert _field_violations(raised.value) == ["confidence", "method"]


async def next_event(events: Any) -> risk_pb2.RiskEvent:
    response = await asyncio.wait_for(events.read(), 10)
    assert isinstance(response, risk_pb2.StreamRiskEventsResponse)
    return response.event


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info


def _field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            return [violation.field for violation in bad_request.field_violations]
    return []


async def test_max_var_denies_once_the_one_day_var_with_the_order_reaches_it(
    tmp_path: Path,
) -> None:
    closes = {
        symbol: np.array([row[4] for row in rows[-101:]]) for symbol, rows in candles_data().items()
    }
    returns = {symbol: series[1:] / series[:-1] - 1 for symbol, series in closes.items()}
    # Buying 1 ETH at 0.1 makes 11 ETH (1.1 BTC) beside 50 LTC (1 BTC); 288 candles a day.
    expected = np.percentile(-(returns[ETH] * 1.1 + returns[LTC] * 1.0), 99) * math.sqrt(288)

    async with risk_stack(tmp_path, RISK__VAR__TIMEFRAME="5m", RISK__VAR__LOOKBACK="100") as stack:
        risk = stack.risk
        await synced(risk)
        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_var="0.01"),
                update_mask=FieldMask(paths=["max_var"]),
            )
        )

        async def estimated() -> bool:
            denied = await risk.CheckOrder(buy())
            return any(v.reason == "RISK_MAX_VAR" and v.actual for v in denied.violations)

        await eventually(estimated)  # until the return history is read
        denied = await risk.CheckOrder(buy())
        assert reasons(denied) == ["RISK_MAX_VAR"]
        assert float(denied.violations[0].actual) == pytest.approx(expected, rel=1e-6)

        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_var=str(round(expected * 1.01, 6))),
                update_mask=FieldMask(paths=["max_var"]),
            )
        )
        assert reasons(await risk.CheckOrder(buy())) == []
        sell = buy(quantity="5")
        sell.side = common_pb2.SIDE_SELL
        assert reasons(await risk.CheckOrder(sell)) == []  # reducing passes regardless
