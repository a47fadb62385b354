"""Every venue the exchange lists is a venue account risk checks: paper and two live
venues side by side, each against its own book (the portfolio's account, the
exchange's venue) and its own limits and trading state, under the global kill switch.
Real gRPC to scripted peers that answer per venue, the risk service as it starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.config import load_config
from common.server import running
from common.testing import isolated_config, serving, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.main import SPEC

BTC = "BTC/USDT"
PAPER, OKX, KRAKEN = "paper", "okx-live", "kraken-live"
# Listed by the exchange, never opened by the portfolio (its balances cannot be read).
DATA_ONLY = "bybit-data"
# Listed by the exchange as market data only (`trading = false`, read_only).
READ_ONLY = "kucoin-data"
KINDS = {
    READ_ONLY: exchange_pb2.VENUE_KIND_LIVE,
    PAPER: exchange_pb2.VENUE_KIND_PAPER,
    OKX: exchange_pb2.VENUE_KIND_LIVE,
    KRAKEN: exchange_pb2.VENUE_KIND_LIVE,
    DATA_ONLY: exchange_pb2.VENUE_KIND_LIVE,
}
HALTED = risk_pb2.TRADING_STATE_HALTED
ACTIVE = risk_pb2.TRADING_STATE_ACTIVE


@dataclass
class Venue:
    """What one venue account holds, as the portfolio and the exchange tell it."""

    cash: str
    btc: str = "0"
    # Deposits minus withdrawals, as the portfolio books them.
    net_transfers: str = "0"
    bid: str = "49990"
    ask: str = "50010"
    tickers: asyncio.Queue[exchange_pb2.Ticker] = field(default_factory=asyncio.Queue)


class ScriptedPortfolio(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(self, venues: dict[str, Venue]) -> None:
        self.venues = venues
        self.asked: set[str] = set()

    async def GetPortfolio(self, request: Any, context: Any) -> portfolio_pb2.GetPortfolioResponse:
        self.asked.add(request.account_id)
        if request.account_id == DATA_ONLY:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no account")
        venue = self.venues[request.account_id]
        return portfolio_pb2.GetPortfolioResponse(
            portfolio=portfolio_pb2.Portfolio(
                account_id=request.account_id, cash=venue.cash, net_transfers=venue.net_transfers
            )
        )

    async def ListPositions(
        self, request: Any, context: Any
    ) -> portfolio_pb2.ListPositionsResponse:
        venue = self.venues[request.account_id]
        held = portfolio_pb2.Position(
            account_id=request.account_id, symbol=BTC, quantity=venue.btc, cost_basis="0"
        )
        return portfolio_pb2.ListPositionsResponse(positions=[held] if venue.btc != "0" else [])

    async def GetEquityHistory(
        self, request: Any, context: Any
    ) -> portfolio_pb2.GetEquityHistoryResponse:
        return portfolio_pb2.GetEquityHistoryResponse()

    async def StreamPositions(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await context.send_initial_metadata(())  # subscribed, as the real portfolio says
        await asyncio.Event().wait()
        yield  # pragma: no cover


class ScriptedExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    def __init__(self, venues: dict[str, Venue]) -> None:
        self.venues = venues
        self.asked: set[str] = set()

    async def ListVenues(self, request: Any, context: Any) -> exchange_pb2.ListVenuesResponse:
        return exchange_pb2.ListVenuesResponse(
            venues=[
                exchange_pb2.Venue(name=name, kind=KINDS[name], read_only=name == READ_ONLY)
                for name in self.venues
            ]
        )

    async def ListMarkets(self, request: Any, context: Any) -> exchange_pb2.ListMarketsResponse:
        self.asked.add(request.venue)
        assert request.venue in self.venues
        market = exchange_pb2.Market(
            symbol=BTC, base="BTC", quote="USDT", type=exchange_pb2.MARKET_TYPE_SPOT, active=True
        )
        return exchange_pb2.ListMarketsResponse(markets=[market])

    async def ListOrders(self, request: Any, context: Any) -> exchange_pb2.ListOrdersResponse:
        return exchange_pb2.ListOrdersResponse()

    async def GetTicker(self, request: Any, context: Any) -> exchange_pb2.GetTickerResponse:
        venue = self.venues[request.venue]
        return exchange_pb2.GetTickerResponse(
            ticker=exchange_pb2.Ticker(
                venue=request.venue, symbol=request.symbol, bid=venue.bid, ask=venue.ask
            )
        )

    async def StreamTickers(self, request: Any, context: Any) -> AsyncIterator[Any]:
        queue = self.venues[request.venue].tickers
        while True:
            yield exchange_pb2.StreamTickersResponse(ticker=await queue.get())

    async def StreamOrderUpdates(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield  # pragma: no cover


@dataclass
class Stack:
    risk: risk_pb2_grpc.RiskServiceAsyncStub
    venues: dict[str, Venue]
    restart: Callable[[], Awaitable[risk_pb2_grpc.RiskServiceAsyncStub]]
    # The venue accounts each peer was asked about.
    portfolio_asked: set[str] = field(default_factory=set)
    exchange_asked: set[str] = field(default_factory=set)


@asynccontextmanager
async def three_venues(
    tmp_path: Path,
    *,
    data_only: bool = False,
    read_only: bool = False,
    portfolio_refresh_seconds: str = "5",
    ready_timeout_seconds: str = "60",
) -> AsyncIterator[Stack]:
    """paper with 10,000 USDT; okx-live with 1,000 USDT and 0.1 BTC; kraken-live with
    100 USDT (and `data_only`: a venue the portfolio has no account of; `read_only`: a
    venue ListVenues says is market data only). Default limits: 5,000 USDT per order,
    no leverage limit."""
    venues = {
        PAPER: Venue(cash="10000"),
        OKX: Venue(cash="1000", btc="0.1"),
        KRAKEN: Venue(cash="100"),
    }
    if data_only:
        venues[DATA_ONLY] = Venue(cash="0")
    if read_only:
        venues[READ_ONLY] = Venue(cash="0")
    portfolio = ScriptedPortfolio(venues)  # type: ignore[abstract]
    exchange = ScriptedExchange(venues)  # type: ignore[abstract]
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
                RISK__FEEDS__PORTFOLIO_REFRESH_SECONDS=portfolio_refresh_seconds,
                RISK__LIMITS__MAX_LEVERAGE="",
                RISK__LIMITS__MAX_ORDER_NOTIONAL="5000",
                RISK__FEEDS__READY_TIMEOUT_SECONDS=ready_timeout_seconds,
            )
        )
        inner = AsyncExitStack()

        async def start() -> risk_pb2_grpc.RiskServiceAsyncStub:
            service = await inner.enter_async_context(running(SPEC, config))
            channel = await inner.enter_async_context(grpc.aio.insecure_channel(service.address))
            # SERVING only once every account's book has synced.
            await wait_until_serving(service.address)
            return risk_pb2_grpc.RiskServiceStub(channel)

        async def restart() -> risk_pb2_grpc.RiskServiceAsyncStub:
            nonlocal inner
            await inner.aclose()
            inner = AsyncExitStack()
            return await start()

        try:
            yield Stack(await start(), venues, restart, portfolio.asked, exchange.asked)
        finally:
            await inner.aclose()


def buy(venue: str, quantity: str, price: str = "50000") -> risk_pb2.CheckOrderRequest:
    return risk_pb2.CheckOrderRequest(
        venue=venue,
        symbol=BTC,
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=price,
    )


async def reasons(risk: risk_pb2_grpc.RiskServiceAsyncStub, order: Any) -> list[str]:
    response = await risk.CheckOrder(order)
    return [violation.reason for violation in response.violations]


async def next_event(stream: Any) -> risk_pb2.RiskEvent:
    message = await asyncio.wait_for(stream.read(), 10)
    assert isinstance(message, risk_pb2.StreamRiskEventsResponse)
    return message.event


def error_reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return str(info.reason)


async def test_each_venue_is_checked_against_its_own_account(tmp_path: Path) -> None:
    async with three_venues(tmp_path) as stack:
        risk = stack.risk
        # 0.05 BTC at 50,000 is 2,500 USDT: paper has the cash, the live venues do not.
        assert await reasons(risk, buy(PAPER, "0.05")) == []
        assert await reasons(risk, buy(OKX, "0.05")) == ["RISK_INSUFFICIENT_BALANCE"]
        assert await reasons(risk, buy(KRAKEN, "0.05")) == ["RISK_INSUFFICIENT_BALANCE"]
        assert await reasons(risk, buy(OKX, "0.01")) == []  # 500 of its 1,000
        # okx holds 0.1 BTC of its own: a sale checks against that holding, not paper's.
        sell = buy(OKX, "0.05")
        sell.side = common_pb2.SIDE_SELL
        assert await reasons(risk, sell) == []
        sell.venue = PAPER
        assert await reasons(risk, sell) == ["RISK_INSUFFICIENT_BALANCE"]

        # A venue risk does not know is said to be one, not "risk unavailable".
        denied = await risk.CheckOrder(buy("bybit-live", "0.001"))
        assert denied.decision == risk_pb2.DECISION_DENY
        assert [v.reason for v in denied.violations] == ["RISK_UNKNOWN_ACCOUNT"]
        assert "bybit-live" in denied.violations[0].message

        exposure = (await risk.GetExposure(risk_pb2.GetExposureRequest(account_id=OKX))).exposure
        assert (exposure.account_id, exposure.equity) == (OKX, "6000")
        total = (await risk.GetExposure(risk_pb2.GetExposureRequest())).exposure
        assert total.equity == "16100"  # 10,000 + 6,000 + 100
        assert [(row.account_id, row.symbol) for row in total.symbols] == [(OKX, BTC)]


async def test_limits_per_account_follow_the_global_defaults_until_set(tmp_path: Path) -> None:
    async with three_venues(tmp_path) as stack:
        risk = stack.risk
        updated = await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                account_id=OKX,
                limits=risk_pb2.Limits(max_order_notional="100"),
                update_mask=FieldMask(paths=["max_order_notional"]),
            )
        )
        assert updated.limits.max_order_notional == "100"
        assert await reasons(risk, buy(OKX, "0.01")) == ["RISK_MAX_NOTIONAL"]
        assert await reasons(risk, buy(PAPER, "0.01")) == []  # still the default 5,000

        # The global defaults move every account without limits of its own.
        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(max_order_notional="400"),
                update_mask=FieldMask(paths=["max_order_notional"]),
            )
        )
        assert await reasons(risk, buy(PAPER, "0.01")) == ["RISK_MAX_NOTIONAL"]
        paper = await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id=PAPER))
        okx = await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id=OKX))
        assert (paper.limits.max_order_notional, okx.limits.max_order_notional) == ("400", "100")
        # Each answer says whose limits they are: paper's are the defaults it follows.
        defaults = await risk.GetLimits(risk_pb2.GetLimitsRequest())
        assert [(r.account_id, r.follows_global_defaults) for r in (paper, okx, defaults)] == [
            (PAPER, True),
            (OKX, False),
            ("", False),
        ]

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id="bybit-live"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(raised.value) == "RISK_UNKNOWN_ACCOUNT"

        # Stored: a restart keeps each account's own and the defaults.
        risk = await stack.restart()
        okx = await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id=OKX))
        kraken = await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id=KRAKEN))
        assert (okx.limits.max_order_notional, kraken.limits.max_order_notional) == ("100", "400")
        assert (okx.follows_global_defaults, kraken.follows_global_defaults) == (False, True)
        assert await reasons(risk, buy(OKX, "0.01")) == ["RISK_MAX_NOTIONAL"]


async def test_halting_one_account_leaves_the_others_trading(tmp_path: Path) -> None:
    async with three_venues(tmp_path) as stack:
        risk = stack.risk
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        await asyncio.sleep(0.1)  # let the subscription reach the server
        await risk.SetTradingState(
            risk_pb2.SetTradingStateRequest(state=HALTED, reason="okx incident", account_id=OKX)
        )
        event = await next_event(events)
        assert event.type == risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED
        assert (event.account_id, event.trading_state.account_id) == (OKX, OKX)
        assert event.trading_state.state == HALTED
        events.cancel()

        assert await reasons(risk, buy(OKX, "0.001")) == ["RISK_TRADING_HALTED"]
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        assert await reasons(risk, buy(KRAKEN, "0.001")) == []
        state = await risk.GetTradingState(risk_pb2.GetTradingStateRequest())
        assert state.trading_state.state == ACTIVE  # the global switch
        assert [(a.account_id, a.state) for a in state.accounts] == [
            (KRAKEN, ACTIVE),
            (OKX, HALTED),
            (PAPER, ACTIVE),
        ]

        # The global kill switch stops every account; releasing it leaves okx halted.
        await risk.SetTradingState(risk_pb2.SetTradingStateRequest(state=HALTED, reason="all"))
        for venue in (PAPER, OKX, KRAKEN):
            assert await reasons(risk, buy(venue, "0.001")) == ["RISK_TRADING_HALTED"]
        await risk.SetTradingState(risk_pb2.SetTradingStateRequest(state=ACTIVE, reason="ok"))
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        assert await reasons(risk, buy(OKX, "0.001")) == ["RISK_TRADING_HALTED"]

        risk = await stack.restart()
        okx = await risk.GetTradingState(risk_pb2.GetTradingStateRequest(account_id=OKX))
        assert (okx.trading_state.state, okx.trading_state.reason) == (HALTED, "okx incident")
        assert await reasons(risk, buy(KRAKEN, "0.001")) == []


async def test_a_loss_halts_only_the_account_that_lost(tmp_path: Path) -> None:
    async with three_venues(tmp_path) as stack:
        risk = stack.risk
        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(daily_loss_limit="1000"),
                update_mask=FieldMask(paths=["daily_loss_limit"]),
            )
        )
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        await asyncio.sleep(0.1)
        # BTC falls 20,000 on okx: its 0.1 BTC lose 2,000 of the day's 6,000.
        await stack.venues[OKX].tickers.put(exchange_pb2.Ticker(symbol=BTC, last="30000"))
        breach = await next_event(events)
        assert breach.type == risk_pb2.RISK_EVENT_TYPE_LIMIT_BREACHED
        assert breach.account_id == OKX
        assert [v.reason for v in breach.violations] == ["RISK_DAILY_LOSS"]
        change = await next_event(events)
        assert (change.account_id, change.trading_state.state) == (OKX, HALTED)
        events.cancel()
        assert "RISK_TRADING_HALTED" in await reasons(risk, buy(OKX, "0.001", "30000"))
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        state = await risk.GetTradingState(risk_pb2.GetTradingStateRequest())
        assert state.trading_state.state == ACTIVE


async def test_a_withdrawal_is_no_loss_and_does_not_halt_trading(tmp_path: Path) -> None:
    """Transfers come with the cash the portfolio reports: the day's opening equity (and
    the peak) move by them, so the daily-loss rule sees trading losses only."""
    async with three_venues(tmp_path, portfolio_refresh_seconds="0.02") as stack:
        risk, paper = stack.risk, stack.venues[PAPER]

        async def paper_equity() -> Decimal:
            request = risk_pb2.GetExposureRequest(account_id=PAPER)
            return Decimal((await risk.GetExposure(request)).exposure.equity)

        async def equity_becomes(amount: str) -> None:
            for _ in range(1000):
                if await paper_equity() == Decimal(amount):
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"paper equity never became {amount}")

        await risk.UpdateLimits(
            risk_pb2.UpdateLimitsRequest(
                limits=risk_pb2.Limits(daily_loss_limit="1000"),
                update_mask=FieldMask(paths=["daily_loss_limit"]),
            )
        )
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        await asyncio.sleep(0.1)
        # 5,000 of the 10,000 withdrawn, then 2,000 deposited: no loss, no gain.
        paper.cash, paper.net_transfers = "5000", "-5000"
        await equity_becomes("5000")
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        paper.cash, paper.net_transfers = "7000", "-3000"
        await equity_becomes("7000")
        # A real loss of 1,000 from the day's (shifted) 7,000 is what halts.
        paper.cash = "6000"
        breach = await next_event(events)
        events.cancel()
        assert (breach.type, breach.account_id) == (
            risk_pb2.RISK_EVENT_TYPE_LIMIT_BREACHED,
            PAPER,
        )
        assert [v.reason for v in breach.violations] == ["RISK_DAILY_LOSS"]
        assert "daily loss 1000" in breach.message  # not 5000: the withdrawal is no loss
        assert await reasons(risk, buy(PAPER, "0.001")) != []


async def test_a_venue_the_portfolio_never_opens_holds_readiness_back_only_so_long(
    tmp_path: Path,
) -> None:
    """A tradable venue whose account the portfolio has not opened (NOT_FOUND: at start,
    or its balances cannot be read) is waited for, since its first order must be checked
    for real; after `ready_timeout_seconds` risk serves anyway, the other venues trade,
    and that venue's orders are denied as stale: risk cannot check them."""
    async with three_venues(tmp_path, data_only=True, ready_timeout_seconds="1") as stack:
        risk = stack.risk
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        assert await reasons(risk, buy(DATA_ONLY, "0.001")) == ["RISK_STATE_STALE"]


async def test_a_market_data_only_venue_has_no_risk_account(tmp_path: Path) -> None:
    """A venue ListVenues marks read_only (`trading = false`) gets no book and no feeds:
    readiness does not wait for it, and its orders (which the exchange refuses before
    risk) name it as unknown to risk."""
    async with three_venues(tmp_path, read_only=True) as stack:
        risk = stack.risk
        assert await reasons(risk, buy(PAPER, "0.001")) == []
        assert await reasons(risk, buy(READ_ONLY, "0.001")) == ["RISK_UNKNOWN_ACCOUNT"]
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await risk.GetLimits(risk_pb2.GetLimitsRequest(account_id=READ_ONLY))
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
        assert READ_ONLY not in stack.portfolio_asked | stack.exchange_asked
        assert PAPER in stack.portfolio_asked
        assert PAPER in stack.exchange_asked
