"""Portfolio: ingestion rate, read latency with a full ledger, and RSS under that load.

A scripted ExchangeService in this process streams 100,000 executions over 100 symbols
to a real portfolio process (`python -m services.portfolio`, isolated config, free
ports) over real gRPC; the rate is executions applied exactly once (the committed
cursor in the portfolio's SQLite file reaches the last sequence) per second. The
baseline is the same stream, in the same batched messages (the portfolio's
`max_batch`), read by a bare gRPC client that only counts it.

Then, with those 100,000 fills in the ledger, ListPositions (100 positions) and
GetPortfolio are called one after the other; the baseline is grpc.health.v1 Check on
the same process, the floor of any RPC there. RSS is the portfolio process's peak
while both ran, beside its RSS once serving and idle.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.report import Row
from bench.section import sized
from common.config import load_config
from common.database import create_engine, session_factory, upgrade_in_child
from common.memory import MIB, rss_bytes
from common.testing import isolated_config, serving, wait_until_serving
from edgequant.exchange.v1 import exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.ingestion import trade_from_execution
from services.portfolio.ledger import Ledger
from services.portfolio.settings import IngestionSettings, LedgerSettings
from services.portfolio.storage.repository import PortfolioRepository
from services.portfolio.testing import ScriptedExchange, execution

EXECUTIONS = sized(100_000, 2_000)
SYMBOLS = 100
CALLS = sized(2_000, 100)
LEDGER_SAMPLE = sized(20_000, 1_000)
LEDGER_BATCH = sized(500, 100)
SECTION = "portfolio"

# Asks for the batches the portfolio asks for (its max_batch), so both read the same messages.
COUNTING_CLIENT = """
import asyncio, sys, grpc
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
async def main(address, total, max_batch):
    async with grpc.aio.insecure_channel(address) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        request = exchange_pb2.StreamExecutionsRequest(after_seq=0, max_batch=max_batch)
        seen = 0
        print("connected", flush=True)
        async for response in stub.StreamExecutions(request):
            seen += len(response.executions)
            if seen >= total:
                print("done", flush=True)
                return
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def _executions() -> list[Any]:
    out = []
    for n in range(1, EXECUTIONS + 1):
        symbol = f"C{n % SYMBOLS:03d}/USDT"
        side = "buy" if n % 3 else "sell"
        out.append(execution(n, side, "0.01", str(100 + n % 50), symbol=symbol, fee="0.001"))
    return out


def _cursor(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            row = connection.execute("SELECT sequence FROM ingestion_cursors").fetchone()
    except sqlite3.OperationalError:
        return 0
    return 0 if row is None else int(row[0])


class _PeakRss:
    """Samples a process's RSS every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            await asyncio.sleep(0.05)

    async def stop(self) -> float:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.peak / MIB


async def _baseline_rate(executions: list[Any]) -> float:
    scripted = ScriptedExchange(follow=True)  # type: ignore[abstract]
    async with serving(
        scripted, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    ) as address:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            COUNTING_CLIENT,
            address,
            str(EXECUTIONS),
            str(IngestionSettings().max_batch),
            stdout=asyncio.subprocess.PIPE,
        )
        assert client.stdout is not None
        await client.stdout.readline()  # connected
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        scripted.append(*executions)
        await client.stdout.readline()  # done
        elapsed = time.perf_counter() - started
        await client.wait()
    return EXECUTIONS / elapsed


async def _percentiles(call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of `CALLS` calls one after the other."""
    for _ in range(100):  # warm-up
        await call()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    samples.sort()
    return samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


async def _ledger_rate(executions: list[Any], directory: Path) -> tuple[float, float]:
    """Executions per second through the ledger alone (no gRPC), beside parsing alone."""
    url = f"sqlite+aiosqlite:///{directory / 'ledger.db'}"
    await upgrade_in_child("portfolio", url)
    engine = create_engine(url)
    ledger = Ledger(PortfolioRepository(session_factory(engine)), LedgerSettings())
    await ledger.load()
    sample = executions[:LEDGER_SAMPLE]
    started = time.perf_counter()
    for execution_ in sample:
        trade_from_execution(execution_)
    parse_only = LEDGER_SAMPLE / (time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, LEDGER_SAMPLE, LEDGER_BATCH):
        chunk = sample[start : start + LEDGER_BATCH]
        trades = [trade for trade in map(trade_from_execution, chunk) if trade]
        await ledger.apply(trades, cursor=chunk[-1].sequence, duplicates_expected=False)
    applied = LEDGER_SAMPLE / (time.perf_counter() - started)
    await engine.dispose()
    return applied, parse_only


async def run() -> list[Row]:
    executions = _executions()
    baseline_rate = await _baseline_rate(executions)
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-ledger-") as directory:
        ledger_rate, parse_rate = await _ledger_rate(executions, Path(directory))
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-portfolio-") as directory:
        scripted = ScriptedExchange(follow=True)  # type: ignore[abstract]
        async with serving(
            scripted, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
        ) as exchange:
            environment = isolated_config(Path(directory), EXCHANGE__ADDRESS=exchange)
            config = load_config(environment)
            database = Path(config.database_url("portfolio").split("///", 1)[1])
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.portfolio",
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_until_serving(config.portfolio.address)
                await asyncio.sleep(1.0)
                idle_rss = rss_bytes(process.pid) / MIB
                peak = _PeakRss(process.pid)
                started = time.perf_counter()
                scripted.append(*executions)
                while _cursor(database) < EXECUTIONS:  # noqa: ASYNC110 - another process
                    await asyncio.sleep(0.02)
                rate = EXECUTIONS / (time.perf_counter() - started)
                latencies = await _latencies(config.portfolio.address)
                peak_rss = await peak.stop()
            finally:
                process.terminate()
                await process.wait()
    health, positions, portfolio = latencies
    return [
        Row(
            SECTION,
            f"ledger alone (no gRPC), {LEDGER_SAMPLE:,} executions in batches of {LEDGER_BATCH}",
            "exec/s",
            ledger_rate,
            parse_rate,
            "parsing only",
            "",
        ),
        Row(
            SECTION,
            f"ingestion, {EXECUTIONS:,} executions applied exactly once",
            "exec/s",
            rate,
            baseline_rate,
            "same stream, only counted",
            ">= 5,000",
        ),
        *_latency_rows("ListPositions", positions, health),
        *_latency_rows("GetPortfolio", portfolio, health),
        Row(
            SECTION,
            "peak RSS under that load",
            "MiB",
            peak_rss,
            idle_rss,
            "same process, idle",
            "<= 96",
        ),
    ]


Percentiles = tuple[float, float]


def _latency_rows(rpc: str, measured: Percentiles, health: Percentiles) -> list[Row]:
    where = f"{SYMBOLS} positions, {EXECUTIONS:,} fills"
    return [
        Row(
            SECTION,
            f"{rpc} {name} ({where})",
            "ms",
            value,
            floor,
            f"health Check {name}, same process",
            target,
        )
        for name, value, floor, target in (
            ("p50", measured[0], health[0], ""),
            ("p99", measured[1], health[1], "<= 5"),
        )
    ]


async def _latencies(address: str) -> tuple[Percentiles, Percentiles, Percentiles]:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        stub = portfolio_pb2_grpc.PortfolioServiceStub(channel)
        positions = portfolio_pb2.ListPositionsRequest(account_id="paper", page_size=SYMBOLS)
        listed = await stub.ListPositions(positions)
        assert len(listed.positions) == SYMBOLS, len(listed.positions)
        return (
            await _percentiles(lambda: health.Check(health_pb2.HealthCheckRequest())),
            await _percentiles(lambda: stub.ListPositions(positions)),
            await _percentiles(
                lambda: stub.GetPortfolio(portfolio_pb2.GetPortfolioRequest(account_id="paper"))
            ),
        )


if __name__ == "__main__":
    from bench.report import table

    print(table(asyncio.run(run())))
