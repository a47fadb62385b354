"""Every PortfolioService RPC over real gRPC, on the real service fed by a scripted
exchange; expected figures are worked out by hand beside each check."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.server import RunningService
from edgequant.portfolio.v1 import portfolio_pb2 as pb
from edgequant.portfolio.v1 import portfolio_pb2_grpc
from services.portfolio.testing import T0, ScriptedExchange, execution, ticker

Portfolio = Callable[..., AbstractAsyncContextManager[RunningService]]
DATA = Path(__file__).parent / "data"

# BTC: avg cost 110 after two buys; 0.5 sold at 130. ETH: fee in ETH.
EXECUTIONS = [
    execution(1, "buy", "1", "100", fee="0.1"),
    execution(2, "buy", "1", "120", fee="0.12"),
    execution(3, "sell", "0.5", "130", fee="0.065"),
    execution(4, "buy", "1", "50", symbol="ETH/USDT", fee="0.001", fee_currency="ETH"),
]


@pytest.fixture
async def stub(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> AsyncIterator[portfolio_pb2_grpc.PortfolioServiceAsyncStub]:
    scripted, _ = exchange
    scripted.executions = list(EXECUTIONS)
    scripted.follow = True
    scripted.set_ticker(ticker("BTC/USDT", bid="129", ask="131"))
    async with portfolio() as service, grpc.aio.insecure_channel(service.address) as channel:
        client = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        await _until_fills(client, "paper", 4)
        yield client


async def _until_fills(
    client: portfolio_pb2_grpc.PortfolioServiceAsyncStub, account_id: str, count: int
) -> None:
    for _ in range(2000):
        listed = await client.ListAccounts(pb.ListAccountsRequest())
        if any(account.account_id == account_id for account in listed.accounts):
            fills = await client.ListFills(pb.ListFillsRequest(account_id=account_id))
            if len(fills.fills) >= count:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} fills never arrived")


async def _marked(client: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    for _ in range(2000):
        positions = await client.ListPositions(pb.ListPositionsRequest(account_id="paper"))
        if any(p.mark_price == "130" for p in positions.positions):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the ticker never became a mark")


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.update({v.field: v.description for v in bad.field_violations})
    return found


async def test_accounts(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    (account,) = (await stub.ListAccounts(pb.ListAccountsRequest())).accounts
    assert (account.account_id, account.venue, account.kind, account.quote_currency) == (
        "paper",
        "paper",
        pb.ACCOUNT_KIND_PAPER,
        "USDT",
    )


async def test_portfolio_is_marked_to_the_exchange_tickers(
    stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub,
) -> None:
    await _marked(stub)
    portfolio = (await stub.GetPortfolio(pb.GetPortfolioRequest(account_id="paper"))).portfolio
    # cash: 10000 - 100 - 0.1 - 120 - 0.12 + 65 - 0.065 - 50 = 9794.715
    # BTC 1.5 at the mid 130 = 195; ETH 0.999 at its last fill 50 = 49.95
    assert (portfolio.cash, portfolio.positions_value, portfolio.equity) == (
        "9794.715",
        "244.95",
        "10039.665",
    )
    # realized 0.5 * (130 - 110) = 10; unrealized 1.5 * (130 - 110) = 30;
    # fees 0.1 + 0.12 + 0.065 + 0.001 ETH * 50 = 0.335; 10000 + 10 + 30 - 0.335 = equity.
    assert (portfolio.realized_pnl, portfolio.unrealized_pnl, portfolio.fees) == (
        "10",
        "30",
        "0.335",
    )
    balances = {b.asset: b.total for b in portfolio.balances}
    assert balances == {"USDT": "9794.715", "BTC": "1.5", "ETH": "0.999"}


async def test_positions(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    await _marked(stub)
    positions = (await stub.ListPositions(pb.ListPositionsRequest(account_id="paper"))).positions
    btc, eth = positions
    assert (btc.symbol, btc.quantity, btc.average_entry_price, btc.cost_basis) == (
        "BTC/USDT",
        "1.5",
        "110",
        "165",
    )
    assert (btc.mark_price, btc.market_value, btc.unrealized_pnl, btc.realized_pnl) == (
        "130",
        "195",
        "30",
        "10",
    )
    assert (eth.quantity, eth.average_entry_price, eth.mark_price) == ("0.999", "50", "50")
    first = await stub.ListPositions(pb.ListPositionsRequest(account_id="paper", page_size=1))
    second = await stub.ListPositions(
        pb.ListPositionsRequest(account_id="paper", page_size=1, page_token=first.next_page_token)
    )
    assert [p.symbol for p in (*first.positions, *second.positions)] == ["BTC/USDT", "ETH/USDT"]
    assert second.next_page_token == ""


async def test_pnl_average_cost_and_fifo(
    stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub,
) -> None:
    await _marked(stub)
    average = await stub.GetPnL(pb.GetPnLRequest(account_id="paper"))
    assert average.quote_currency == "USDT"
    assert (average.total.realized, average.total.unrealized, average.total.fees) == (
        "10",
        "30",
        "0.335",
    )
    assert average.total.net == "39.665"
    fifo = await stub.GetPnL(
        pb.GetPnLRequest(account_id="paper", symbol="BTC/USDT", method=pb.COST_BASIS_METHOD_FIFO)
    )
    (btc,) = fifo.symbols
    # FIFO sells 0.5 of the lot at 100: 15; left 0.5 @ 100 + 1 @ 120 = 170 against 195.
    assert (btc.symbol, btc.pnl.realized, btc.pnl.unrealized, btc.pnl.fees) == (
        "BTC/USDT",
        "15",
        "25",
        "0.285",
    )


async def test_fills_paged_and_filtered(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    first = await stub.ListFills(pb.ListFillsRequest(account_id="paper", page_size=3))
    assert [f.trade_id for f in first.fills] == ["t-4", "t-3", "t-2"]  # newest first
    rest = await stub.ListFills(
        pb.ListFillsRequest(account_id="paper", page_size=3, page_token=first.next_page_token)
    )
    assert [f.trade_id for f in rest.fills] == ["t-1"]
    assert rest.next_page_token == ""
    eth = await stub.ListFills(pb.ListFillsRequest(account_id="paper", symbol="ETH/USDT"))
    (fill,) = eth.fills
    assert (fill.quantity, fill.price, fill.fee, fill.fee_currency, fill.sequence) == (
        "1",
        "50",
        "0.001",
        "ETH",
        4,
    )
    start, end = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    start.FromDatetime(T0 + timedelta(seconds=2))
    end.FromDatetime(T0 + timedelta(seconds=4))
    window = await stub.ListFills(
        pb.ListFillsRequest(account_id="paper", start_time=start, end_time=end)
    )
    assert [f.trade_id for f in window.fills] == ["t-3", "t-2"]


async def test_bad_requests(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetPortfolio(pb.GetPortfolioRequest(account_id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await stub.ListFills(pb.ListFillsRequest(account_id="paper", page_size=-1))
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in _violations(negative.value)
    # Larger than the largest page is that page (AIP-158), as in every List RPC.
    assert (await stub.ListFills(pb.ListFillsRequest(account_id="paper", page_size=5000))).fills
    with pytest.raises(grpc.aio.AioRpcError) as token:
        await stub.ListFills(pb.ListFillsRequest(account_id="paper", page_token="x!"))  # noqa: S106
    assert "page_token" in _violations(token.value)


async def test_stream_positions_sees_new_fills(
    exchange: tuple[ScriptedExchange, str], stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub
) -> None:
    scripted, _ = exchange
    stream = stub.StreamPositions(pb.StreamPositionsRequest(account_id="paper"))
    await stream.initial_metadata()  # the server sends its headers once subscribed
    scripted.append(execution(5, "sell", "1.5", "140", fee="0"))
    update = await asyncio.wait_for(anext(aiter(stream)), 10)
    stream.cancel()
    position = update.position
    # Closed: 10 + 1.5 * (140 - 110) = 55 realized.
    assert (position.symbol, position.quantity, position.realized_pnl) == ("BTC/USDT", "0", "55")


async def test_a_new_fill_shows_in_positions_and_portfolio_at_once(
    exchange: tuple[ScriptedExchange, str], stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub
) -> None:
    """Both answers are kept between changes (services/portfolio/responses.py): a fill
    must not leave an old one behind."""
    scripted, _ = exchange
    positions_request = pb.ListPositionsRequest(account_id="paper")
    portfolio_request = pb.GetPortfolioRequest(account_id="paper")
    before = await stub.ListPositions(positions_request)
    assert await stub.ListPositions(positions_request) == before  # kept, unchanged
    cash_before = (await stub.GetPortfolio(portfolio_request)).portfolio.cash

    scripted.append(execution(5, "buy", "0.5", "100", symbol="SOL/USDT", fee="0"))
    await _until_fills(stub, "paper", 5)

    after = await stub.ListPositions(positions_request)
    assert [p.symbol for p in after.positions] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert after.positions[2].quantity == "0.5"
    cash_after = (await stub.GetPortfolio(portfolio_request)).portfolio.cash
    assert Decimal(cash_after) == Decimal(cash_before) - 50


CSV = """time,symbol,side,quantity,price,fee,fee_currency,trade_id,order_id
2025-03-01T10:00:00Z,BTC/USDT,buy,0.5,60000,30,USDT,x-1,o-1
2025-03-01T11:00:00Z,BTC/USDT,sell,0.2,61000.5,12.2001,USDT,x-2,o-2
1740830400000,ETH/USDT,buy,2,2000,0.002,ETH,x-3,o-3
"""


async def test_import_csv_is_idempotent(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    request = pb.ImportFillsRequest(account_id="kraken", format=pb.FILLS_FORMAT_CSV, content=CSV)
    first = await stub.ImportFills(request)
    again = await stub.ImportFills(request)
    assert (first.imported_count, first.duplicate_count) == (3, 0)
    assert (again.imported_count, again.duplicate_count) == (0, 3)
    pnl = await stub.GetPnL(pb.GetPnLRequest(account_id="kraken", symbol="BTC/USDT"))
    assert pnl.total.realized == "200.1"  # 0.2 * (61000.5 - 60000)
    positions = await stub.ListPositions(pb.ListPositionsRequest(account_id="kraken"))
    assert [(p.symbol, p.quantity) for p in positions.positions] == [
        ("BTC/USDT", "0.3"),
        ("ETH/USDT", "1.998"),
    ]
    accounts = {
        a.account_id: a.kind for a in (await stub.ListAccounts(pb.ListAccountsRequest())).accounts
    }
    assert accounts == {"paper": pb.ACCOUNT_KIND_PAPER, "kraken": pb.ACCOUNT_KIND_LIVE}


async def test_import_malformed_file_names_the_line_and_imports_nothing(
    stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub,
) -> None:
    lines = CSV.splitlines()
    lines[2] = lines[2].replace("61000.5", "61,000.5")  # line 3: one field too many
    for content, where in (
        ("\n".join(lines), "line 3: expected 9 fields, got 10"),
        (CSV.replace("x-3", ""), "line 4: trade_id is required"),
        (CSV.replace("sell", "short"), "line 3: side must be buy or sell"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.ImportFills(
                pb.ImportFillsRequest(
                    account_id="paper", format=pb.FILLS_FORMAT_CSV, content=content
                )
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert _violations(raised.value)["content"].startswith(where)
    fills = await stub.ListFills(pb.ListFillsRequest(account_id="paper"))
    assert len(fills.fills) == 4  # the streamed ones only


async def test_import_ccxt_json(stub: portfolio_pb2_grpc.PortfolioServiceAsyncStub) -> None:
    content = (DATA / "binance_fetch_my_trades.json").read_text()
    request = pb.ImportFillsRequest(
        account_id="binance-live", format=pb.FILLS_FORMAT_CCXT_JSON, content=content
    )
    assert (await stub.ImportFills(request)).imported_count == 2
    assert (await stub.ImportFills(request)).duplicate_count == 2
    fills = await stub.ListFills(pb.ListFillsRequest(account_id="binance-live"))
    # Exactly the venue's numbers: no float on the way.
    assert [(f.trade_id, f.symbol, f.quantity, f.price, f.fee) for f in fills.fills] == [
        ("272536245", "BTC/USDT:USDT", "0.01", "36567.1", "0.1462684"),
        ("309520010", "LTC/USDT", "0.2", "69.63", "0.013926"),
    ]
    assert fills.fills[1].time.ToMilliseconds() == 1698138992358


async def test_equity_snapshots_are_taken_and_downsampled(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    scripted.executions = list(EXECUTIONS)
    async with (
        portfolio(PORTFOLIO__EQUITY__SNAPSHOT_SECONDS="0.05") as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        client = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        await _until_fills(client, "paper", 4)
        history = pb.GetEquityHistoryRequest(account_id="paper")
        for _ in range(500):
            points = (await client.GetEquityHistory(history)).points
            if len(points) >= 3:
                break
            await asyncio.sleep(0.02)
        equity = await client.GetPortfolio(pb.GetPortfolioRequest(account_id="paper"))
        hourly = await client.GetEquityHistory(
            pb.GetEquityHistoryRequest(
                account_id="paper", interval=duration_pb2.Duration(seconds=3600)
            )
        )
    # No ticker here: marks are the last fills (BTC 130, ETH 50) -> the same as above.
    assert points[-1].equity == equity.portfolio.equity == "10039.665"
    assert len(hourly.points) <= 2  # every snapshot of this test falls in one or two hours
    assert hourly.points[-1].time.ToDatetime() >= points[-1].time.ToDatetime()


def _seed_history(database: Path) -> None:
    """Ten days of hourly equity with a known drawdown, and four round trips."""
    start = datetime(2026, 2, 1, tzinfo=UTC)
    with sqlite3.connect(database) as connection:
        for hour in range(24 * 10):
            day = hour // 24
            equity = EQUITY_BY_DAY[day] + (hour % 24) * 0.25
            time = int((start + timedelta(hours=hour)).timestamp() * 1_000_000)
            connection.execute(
                "INSERT INTO equity_snapshots (account_id, time, equity, cash) VALUES (?,?,?,?)",
                ("paper", time, str(equity), "0"),
            )
        for pnl in ("10", "-5", "3", "-2"):
            connection.execute(
                "INSERT INTO round_trips (account_id, symbol, open_time, close_time, pnl)"
                " VALUES ('paper', 'BTC/USDT', ?, ?, ?)",
                (time, time, pnl),
            )


EQUITY_BY_DAY = [1000, 1010, 1050, 1020, 980, 1000, 1060, 1040, 1070, 1100]


async def test_performance_against_an_independent_computation(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    scripted.executions = list(EXECUTIONS)
    async with portfolio() as service:
        database = Path(service.runtime.config.database_url("portfolio").split("///")[1])
        async with grpc.aio.insecure_channel(service.address) as channel:
            client = portfolio_pb2_grpc.PortfolioServiceStub(channel)
            await _until_fills(client, "paper", 4)
            _seed_history(database)
            figures = (
                await client.GetPerformance(pb.GetPerformanceRequest(account_id="paper"))
            ).performance
    hourly = np.array([EQUITY_BY_DAY[h // 24] + (h % 24) * 0.25 for h in range(240)], dtype=float)
    closes = hourly[23::24]  # the last snapshot of each day
    returns = closes[1:] / closes[:-1] - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(365)
    sortino = returns.mean() / math.sqrt(np.mean(np.minimum(returns, 0) ** 2)) * math.sqrt(365)
    peaks = np.maximum.accumulate(hourly)
    drawdown = ((peaks - hourly) / peaks).max()
    assert figures.total_return == pytest.approx(hourly[-1] / hourly[0] - 1)
    assert figures.max_drawdown == pytest.approx(drawdown)
    # The peak 1055.75 (day 2, 23:00) is first regained on day 6 at 00:00 (1060): 73 h.
    assert figures.max_drawdown_duration.ToTimedelta() == timedelta(hours=73)
    assert figures.sharpe_ratio == pytest.approx(sharpe)
    assert figures.sortino_ratio == pytest.approx(sortino)
    assert figures.win_rate == pytest.approx(0.5)
    assert figures.profit_factor == pytest.approx(13 / 7)
    assert figures.closed_trades == 4
