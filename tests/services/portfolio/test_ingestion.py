"""Executions from a scripted ExchangeService over real gRPC, applied exactly once:
across a dropped stream, a replay, and a kill -9 of a real portfolio process; in
batched messages, or one per message from an exchange that predates `max_batch`."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.exc import OperationalError

from common.config import load_config
from common.server import RunningService
from common.testing import eventually as _until
from common.testing import isolated_config, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.ingestion import ExecutionBatches, trade_from_execution
from services.portfolio.ledger import Ledger
from services.portfolio.testing import (
    ScriptedExchange,
    balance,
    execution,
    ticker,
    total_quantity,
    venue,
)

SQLITE = "sqlite+aiosqlite:///"
Portfolio = Callable[..., AbstractAsyncContextManager[RunningService]]


def _mixed(count: int) -> list[common_pb2.Execution]:
    """Buys and sells over three symbols, fees in quote and in base."""
    out = []
    for n in range(1, count + 1):
        symbol = ("BTC/USDT", "ETH/USDT", "SOL/USDT")[n % 3]
        side = "sell" if n % 4 == 0 else "buy"
        base_fee = n % 5 == 0
        out.append(
            execution(
                n,
                side,
                quantity=f"0.{n % 9 + 1}",
                price=str(100 + n % 17),
                symbol=symbol,
                fee="0.0001" if base_fee else "0.01",
                fee_currency=symbol.split("/")[0] if base_fee else "USDT",
            )
        )
    return out


def _expected_quantity(executions: list[common_pb2.Execution], symbol: str) -> Decimal:
    mine = [e for e in executions if e.symbol == symbol]
    base = symbol.split("/", maxsplit=1)[0]
    fees = sum((Decimal(e.fee) for e in mine if e.fee_currency == base), Decimal(0))
    return total_quantity(mine) - fees


async def _positions(address: str) -> dict[str, tuple[str, str, str, str]]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        response = await stub.ListPositions(
            portfolio_pb2.ListPositionsRequest(account_id="paper", include_closed=True)
        )
    return {
        p.symbol: (p.quantity, p.average_entry_price, p.realized_pnl, p.cost_basis)
        for p in response.positions
    }


def _database(service: RunningService) -> Path:
    return Path(service.runtime.config.database_url("portfolio").removeprefix(SQLITE))


async def test_dropped_stream_resumes_from_the_cursor(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    executions = _mixed(600)
    scripted.executions = executions
    scripted.drop_after = 250
    scripted.pause_every, scripted.pause_seconds = 50, 0.005
    async with portfolio() as service:
        await _until(lambda: _cursor(_database(service)) == 600)
        positions = await _positions(service.address)
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert Decimal(positions[symbol][0]) == _expected_quantity(executions, symbol)
    # Reconnected after the drop, asking only for what was not applied.
    assert scripted.requested_after[0] == 0
    assert 0 < scripted.requested_after[1] <= 250
    assert _fill_count(_database(service)) == 600


async def test_replaying_the_same_executions_changes_nothing(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    executions = _mixed(90)
    scripted.executions = executions
    async with portfolio() as service:
        await _until(lambda: _cursor(_database(service)) == 90)
        before = await _positions(service.address)
    # An exchange that lost its outbox re-sends the same trades under new sequences:
    # the (venue, trade id) key keeps them out; only the cursor moves.
    for item in executions:
        item.sequence += 1000
    requests_before_restart = len(scripted.requested_after)
    async with portfolio() as service:
        await _until(lambda: _cursor(_database(service)) == 1090)
        assert await _positions(service.address) == before
    assert _fill_count(_database(service)) == 90
    # The restarted service resumed from its stored cursor.
    assert scripted.requested_after[requests_before_restart] == 90


async def test_kill_9_mid_stream_applies_every_execution_once(
    tmp_path: Path, exchange: tuple[ScriptedExchange, str]
) -> None:
    scripted, address = exchange
    executions = _mixed(3000)
    scripted.executions = executions
    scripted.pause_every, scripted.pause_seconds = 20, 0.002
    environment = isolated_config(
        tmp_path,
        EXCHANGE__ADDRESS=address,
        PORTFOLIO__INGESTION__MAX_BATCH="50",
        PORTFOLIO__INGESTION__BACKOFF_INITIAL_SECONDS="0.05",
    )
    config = load_config(environment)
    database = Path(config.database_url("portfolio").removeprefix(SQLITE))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.portfolio"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    first = start()
    try:
        await wait_until_serving(config.portfolio.address)
        await _until(lambda: (_cursor(database) or 0) >= 500)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(5) == -signal.SIGKILL
    finally:
        first.kill()
    killed_at = _cursor(database)
    assert killed_at is not None
    assert killed_at < 3000, "the stream was over before the kill: slow it down"

    second = start()
    try:
        await wait_until_serving(config.portfolio.address)
        await _until(lambda: _cursor(database) == 3000, within=60)
    finally:
        second.terminate()
        second.wait(10)
    with sqlite3.connect(database) as connection:
        sequences = [row[0] for row in connection.execute("SELECT sequence FROM fills")]
        positions = dict(connection.execute("SELECT symbol, quantity FROM positions"))
    assert sorted(sequences) == list(range(1, 3001))
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert Decimal(positions[symbol]) == _expected_quantity(executions, symbol)
    # The restarted process asked for what came after its own committed cursor.
    assert scripted.requested_after[-1] >= killed_at


def test_unusable_execution_is_not_a_trade() -> None:
    assert trade_from_execution(execution(1, quantity="-1")) is None
    assert trade_from_execution(execution(1, price="abc")) is None
    good = trade_from_execution(
        execution(7, "sell", "0.5", "101.5", fee="0.001", fee_currency="BTC")
    )
    assert good is not None
    assert (good.sequence, good.side.value, good.quantity, good.fee_currency) == (
        7,
        "sell",
        Decimal("0.5"),
        "BTC",
    )


def _fill_count(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM fills").fetchone()[0])


def _cursor(database: Path) -> int | None:
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT sequence FROM ingestion_cursors").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else int(row[0])


async def test_a_failed_commit_is_retried_from_the_cursor(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted, _ = exchange
    executions = _mixed(300)
    scripted.executions = executions
    scripted.pause_every, scripted.pause_seconds = 50, 0.01
    real_write = Ledger._write
    failures: list[bool] = []

    async def locked_once(self: Ledger, *args: Any) -> None:
        if not failures:
            failures.append(True)
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        await real_write(self, *args)

    monkeypatch.setattr(Ledger, "_write", locked_once)
    async with portfolio() as service:
        await _until(lambda: _cursor(_database(service)) == 300)
        positions = await _positions(service.address)
    assert failures == [True]
    assert _fill_count(_database(service)) == 300
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert Decimal(positions[symbol][0]) == _expected_quantity(executions, symbol)


async def test_accounts_open_from_the_venues_holdings_before_any_fill(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    """Each account opens from what its venue holds, with the kind ListVenues gives it
    (whatever its name), before any fill: risk reads it to price the first order. Fills
    already in a ccxt venue's balances are not counted again; a venue whose holdings
    cannot be read holds back its own fills until it opens, and only its own."""
    scripted, _ = exchange
    scripted.venues = [
        venue("paper", starting={"USDT": "100000", "BTC": "1"}),
        # Names that look like another kind: the kind is the exchange's, not the name's.
        venue("paper-binance", exchange_pb2.VENUE_KIND_SANDBOX),
        venue("binance-testnet", exchange_pb2.VENUE_KIND_LIVE),
    ]
    scripted.set_ticker(ticker("BTC/USDT", "61662", "61662.01"))
    scripted.set_ticker(ticker("ETH/USDT", "2500", "2500", venue="paper-binance"))
    # paper-binance's balances were read with its executions up to 2 in them.
    scripted.balances["paper-binance"] = [balance("USDT", "480"), balance("ETH", "2.1")]
    scripted.balances_as_of = 2
    scripted.executions = [
        execution(1, "buy", "2", "10", symbol="ETH/USDT", venue="paper-binance"),
        execution(2, "sell", "1", "20", symbol="ETH/USDT", venue="paper-binance"),
        execution(3, "buy", "0.1", "2600", symbol="ETH/USDT", venue="paper-binance"),
        execution(4, "buy", "0.5", "61000", fee="30.5"),
        execution(5, "buy", "1", "100", venue="binance-testnet"),  # not open yet
        execution(6, "sell", "0.25", "62000", fee="15.5"),
    ]
    scripted.follow = True
    async with (
        portfolio() as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        await _until(lambda: _cursor(_database(service)) == 4)
        kinds = {
            a.account_id: a.kind
            for a in (await stub.ListAccounts(portfolio_pb2.ListAccountsRequest())).accounts
        }
        assert kinds == {
            "paper": portfolio_pb2.ACCOUNT_KIND_PAPER,
            "paper-binance": portfolio_pb2.ACCOUNT_KIND_SANDBOX,
        }
        await asyncio.sleep(0.3)  # retries: binance-testnet still cannot be read
        assert _cursor(_database(service)) == 4
        scripted.balances["binance-testnet"] = [balance("USDT", "50")]
        scripted.balances_as_of = 4
        await _until(lambda: _cursor(_database(service)) == 6)
        accounts = {
            a.account_id: a.kind
            for a in (await stub.ListAccounts(portfolio_pb2.ListAccountsRequest())).accounts
        }
        assert accounts["binance-testnet"] == portfolio_pb2.ACCOUNT_KIND_LIVE
        listed = await stub.ListAccounts(portfolio_pb2.ListAccountsRequest())
        opened = {
            a.account_id: {b.asset: b.total for b in a.opening_balances} for a in listed.accounts
        }
        assert opened == {
            "paper": {"BTC": "1", "USDT": "100000"},
            "paper-binance": {"ETH": "2.1", "USDT": "480"},
            "binance-testnet": {"USDT": "50"},
        }
        books = {
            name: (
                await stub.GetPortfolio(portfolio_pb2.GetPortfolioRequest(account_id=name))
            ).portfolio
            for name in accounts
        }
        paper_positions = await _positions(service.address)
        fifo = await stub.GetPnL(
            portfolio_pb2.GetPnLRequest(
                account_id="paper", method=portfolio_pb2.COST_BASIS_METHOD_FIFO
            )
        )
    # FIFO sells the opening lot first: 0.25 * (62000 - 61662.005).
    assert Decimal(fifo.total.realized) == Decimal("84.49875")
    balances = {name: {b.asset: b.total for b in p.balances} for name, p in books.items()}
    # 100000 - 30500 - 30.5 + 15500 - 15.5; 1 + 0.5 - 0.25
    assert balances["paper"] == {"USDT": "84954", "BTC": "1.25"}
    # The opening BTC entered at the mark (the ticker's mid), the bought 0.5 at 61000.
    opening_mark = Decimal("61662.005")
    average = (opening_mark + Decimal("0.5") * 61000) / Decimal("1.5")
    quantity, average_price, realized, _cost = paper_positions["BTC/USDT"]
    assert Decimal(quantity) == Decimal("1.25")
    assert Decimal(average_price) == average.quantize(Decimal("1e-8"))
    assert Decimal(realized) == (62000 - Decimal(average_price)) * Decimal("0.25")
    # Executions 1 and 2 were in the balances already; 3 was not.
    assert balances["paper-binance"] == {"USDT": "220", "ETH": "2.2"}
    # Execution 5 came after the balances binance-testnet opened from (as of 4).
    assert balances["binance-testnet"] == {"USDT": "-50", "BTC": "1"}


async def test_a_market_data_only_venue_opens_no_account_and_is_not_asked_for_balances(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    scripted.venues = [
        venue("paper"),
        venue("okx-data", exchange_pb2.VENUE_KIND_LIVE, read_only=True),
        venue("binance-testnet", exchange_pb2.VENUE_KIND_SANDBOX),
    ]
    scripted.balances["binance-testnet"] = [balance("USDT", "50")]
    scripted.executions = [execution(1), execution(2, venue="binance-testnet")]
    # The stream ends after these (follow is off): each reconnect lists the venues again.
    async with (
        portfolio() as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        await _until(lambda: _cursor(_database(service)) == 2 and len(scripted.requested_after) > 1)
        stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        listed = await stub.ListAccounts(portfolio_pb2.ListAccountsRequest())
    assert sorted(a.account_id for a in listed.accounts) == ["binance-testnet", "paper"]
    assert scripted.balance_reads == ["binance-testnet"]


async def test_an_exchange_without_max_batch_is_consumed_one_by_one(
    exchange: tuple[ScriptedExchange, str], portfolio: Portfolio
) -> None:
    scripted, _ = exchange
    executions = _mixed(200)
    scripted.executions = executions
    scripted.ignores_max_batch = True
    async with portfolio() as service:
        await _until(lambda: _cursor(_database(service)) == 200)
        positions = await _positions(service.address)
    assert _fill_count(_database(service)) == 200
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert Decimal(positions[symbol][0]) == _expected_quantity(executions, symbol)


async def test_batches_hold_at_most_max_batch_in_stream_order() -> None:
    """Messages larger than a transaction may hold are cut; what is left goes first
    into the next batch."""
    executions = _mixed(9)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for message in (executions[0:3], executions[3:8], executions[8:9]):
        queue.put_nowait(message)
    batches = ExecutionBatches(queue, max_batch=4, linger_seconds=0)

    taken = [await batches.next() for _ in range(3)]

    assert [[e.sequence for e in batch] for batch, _end in taken] == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9],
    ]
    assert all(end is None for _batch, end in taken)


async def test_changed_starting_balances_keep_the_opening_and_say_so(
    exchange: tuple[ScriptedExchange, str],
    portfolio: Portfolio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An account opens once: a restart against other starting balances (the config was
    edited) neither opens it again nor adds the difference, and the log says why."""
    scripted, _ = exchange

    async def cash(service: RunningService) -> str:
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
            for _ in range(400):
                try:
                    response = await stub.GetPortfolio(
                        portfolio_pb2.GetPortfolioRequest(account_id="paper")
                    )
                    return response.portfolio.cash
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.01)
        raise AssertionError("the paper account never opened")

    async with portfolio() as service:
        assert await cash(service) == "10000"
    scripted.venues = [venue("paper", starting={"USDT": "500"})]
    async with portfolio() as service:
        await _until(lambda: "starting balances differ" in caplog.text)
        assert await cash(service) == "10000"
