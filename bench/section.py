"""What every bench section shares: its size (full, or tiny for the test that proves each
section can finish), its ample paper account, and the reason a section failed, told in
full (the google.rpc.Status a service answered, not only its code or HTTP head)."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from common.config import Config, load_config
from common.errors import peer_status
from common.testing import wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc

# `BENCH_SIZE=tiny python -m bench`: every section at a size that only proves it finishes.
TINY = os.environ.get("BENCH_SIZE", "full") == "tiny"
# A paper account no load of the bench or the soak can spend (they stay flat, buying and
# selling in turn; this covers what is in flight and the inventory they sell from).
AMPLE_BALANCES = {"USDT": "10000000", "BTC": "100"}
SYMBOL = "BTC/USDT"
ZERO = Decimal(0)
T = TypeVar("T")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Registers ErrorInfo, BadRequest, ... so a Status's details print as JSON.
_DETAILS = error_details_pb2


def sized(full: T, tiny: T) -> T:
    return tiny if TINY else full


@asynccontextmanager
async def service_process(
    name: str, environment: dict[str, str], within: float = 30.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m services.<name>` on `environment`'s config, its output discarded: yields
    the process once it reports SERVING, and stops it after."""
    address = load_config(environment).service(name).address
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"services.{name}", env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_until_serving(address, within=within)
        yield process
    finally:
        if process.returncode is None:  # it may have stopped by itself (a failed start)
            process.terminate()
        await process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        # After the command name (in parentheses, may hold spaces): state is field 3.
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def ample_account() -> dict[str, str]:
    """isolated_config overrides: the paper venue's starting balances (the one place they
    are configured; the portfolio and risk start from the venue's)."""
    return {"EXCHANGE__PAPER__BALANCES": ",".join(f"{a}={v}" for a, v in AMPLE_BALANCES.items())}


class SectionFailed(RuntimeError):
    """The state a section needs could not be set up, or a call of its load failed."""


def status_json(status: status_pb2.Status) -> str:
    return json_format.MessageToJson(status, indent=None, preserving_proto_field_name=True)


def reason(error: BaseException) -> str:
    """One line on why: a gRPC error's code, message and Status details; otherwise the
    exception as it printed (an HTTP error from bench.http carries the body)."""
    if isinstance(error, grpc.aio.AioRpcError):
        text = f"{error.code().name}: {error.details()}"
        status = peer_status(error)
        return text if status is None else f"{text} {status_json(status)}"
    return f"{type(error).__name__}: {error}".strip()


async def prepare_flat_account(
    config: Config, unit: str, inventory: str, in_flight: int, within: float = 60.0
) -> None:
    """Sets up the paper account for a load that buys and sells `unit` BTC in turn with up to
    `in_flight` orders at once, and checks it: buys `inventory` BTC (retrying while risk
    fails closed after the start), waits until the portfolio holds it, checks the cash
    covers what the load can have in flight, and that risk passes a sell and a buy of
    `unit`. Raises SectionFailed with the last answer otherwise."""
    async with (
        grpc.aio.insecure_channel(config.exchange.address) as exchange_channel,
        grpc.aio.insecure_channel(config.portfolio.address) as portfolio_channel,
    ):
        exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange_channel)
        portfolio = portfolio_pb2_grpc.PortfolioServiceStub(portfolio_channel)

        def order(side: int, quantity: str) -> Awaitable[Any]:
            return exchange.SubmitOrder(
                exchange_pb2.SubmitOrderRequest(
                    venue="paper",
                    symbol=SYMBOL,
                    side=side,  # type: ignore[arg-type]
                    type=common_pb2.ORDER_TYPE_MARKET,
                    quantity=quantity,
                    client_order_id=f"prepare-{secrets.token_hex(6)}",
                ),
                timeout=5,
            )

        await _until_done(lambda: order(common_pb2.SIDE_BUY, inventory), within, "inventory buy")

        async def holds_inventory() -> None:
            account = portfolio_pb2.ListPositionsRequest(account_id="paper")
            positions = (await portfolio.ListPositions(account, timeout=5)).positions
            held = sum((Decimal(p.quantity) for p in positions if p.symbol == SYMBOL), ZERO)
            if held < Decimal(inventory):
                raise SectionFailed(f"the portfolio holds {held} {SYMBOL}, not {inventory}")

        await _until_done(holds_inventory, within, "portfolio position")
        request = portfolio_pb2.GetPortfolioRequest(account_id="paper")
        cash = Decimal((await portfolio.GetPortfolio(request, timeout=5)).portfolio.cash)
        ticker = exchange_pb2.GetTickerRequest(venue="paper", symbol=SYMBOL)
        ask = Decimal((await exchange.GetTicker(ticker, timeout=5)).ticker.ask)
        # Ten times what the load can have in flight: reservations outlive their orders.
        needed = 10 * in_flight * Decimal(unit) * ask
        if cash < needed:
            raise SectionFailed(f"paper cash {cash} USDT is below the load's {needed:.2f}")
        await _until_done(lambda: order(common_pb2.SIDE_SELL, unit), within, "first sell")
        await _until_done(lambda: order(common_pb2.SIDE_BUY, unit), within, "first buy")


async def _until_done(call: Callable[[], Awaitable[Any]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except (grpc.aio.AioRpcError, SectionFailed) as error:
            if time.monotonic() > deadline:
                raise SectionFailed(f"{what}: {reason(error)}") from error
            await asyncio.sleep(0.25)


async def timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Milliseconds of each of `count` calls made one after another."""
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies
