"""`make soak`: an hour of mixed load against the stack as `make run` runs it.

The stack runs under supervisord (memmon included) in a temporary directory on free
ports. The load, all at once, for SOAK_SECONDS (default 3600):
- tickers: a gRPC StreamTickers and an NDJSON stream through the gateway, read as they come;
- orders: market orders through the gateway, buy and sell in turn, two a second;
- reads: GetPortfolio and ListOrders over gRPC, one a second each;
- VaR: ComputeVaR every 5 s, historical, parametric and Monte Carlo in turn;
- backtests: an sma_cross backtest every 20 s on a synthetic dataset, waited for.

Every SOAK_SAMPLE_SECONDS (10) the RSS of each supervisord program (and of the largest
backtest worker) is sampled. The report gives, per process, the mean RSS of the first
and the last window (10 minutes, or a third of a shorter run), the growth between them,
a least-squares slope in MiB/hour, the peak and the budget from configs/. It fails
(exit 1) if a process passed its budget, or if supervisord restarted anything (a pid
or start time changed, or memmon's log says it restarted a program).

    SOAK_SECONDS=180 make soak    # a three-minute check that it works
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from common.config import SERVICE_NAMES, Config
from common.memory import MIB, rss_bytes
from common.stack import PROGRAMS
from common.testing import Stack, isolated_config, running_stack
from edgequant.backtest.v1 import backtest_pb2, backtest_pb2_grpc
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from gateway.auth import digest

SECONDS = float(os.environ.get("SOAK_SECONDS", "3600"))
SAMPLE_SECONDS = float(os.environ.get("SOAK_SAMPLE_SECONDS", "10"))
WINDOW_SECONDS = 600.0
RESULTS = Path(__file__).resolve().parent / "soak-results.json"
VAR_METHODS = (
    risk_pb2.VAR_METHOD_HISTORICAL,
    risk_pb2.VAR_METHOD_PARAMETRIC,
    risk_pb2.VAR_METHOD_MONTE_CARLO,
)


@dataclass
class Load:
    """What the load did: calls by kind and outcome ("orders ok", "var UNAVAILABLE")."""

    outcomes: Counter[str] = field(default_factory=Counter)

    def count(self, kind: str, outcome: str = "ok") -> None:
        self.outcomes[f"{kind} {outcome}"] += 1


@dataclass
class Samples:
    """RSS in MiB per process, with the seconds since the start of each sample."""

    times: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)

    def add(self, elapsed: float, values: dict[str, float]) -> None:
        self.times.append(elapsed)
        for name, value in values.items():
            self.rss.setdefault(name, []).append(value)


# --- the load ----------------------------------------------------------------------------


async def every(
    seconds: float, stop: asyncio.Event, action: Callable[[int], Awaitable[None]]
) -> None:
    for number in itertools.count():
        await action(number)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            return


async def guarded(load: Load, kind: str, call: Awaitable[Any]) -> Any:
    """Counts the outcome of one call; an error is counted, not raised: the soak goes on."""
    try:
        result = await call
    except grpc.aio.AioRpcError as error:
        load.count(kind, error.code().name)
        return None
    except httpx.HTTPError as error:
        load.count(kind, type(error).__name__)
        return None
    load.count(kind)
    return result


async def stream_tickers(channel: grpc.aio.Channel, stop: asyncio.Event, load: Load) -> None:
    exchange = exchange_pb2_grpc.ExchangeServiceStub(channel)
    request = exchange_pb2.StreamTickersRequest(venue="paper", symbols=["BTC/USDT"])
    while not stop.is_set():
        try:
            async for _ticker in exchange.StreamTickers(request):
                load.count("grpc tickers")
                if stop.is_set():
                    return
        except grpc.aio.AioRpcError as error:
            load.count("grpc tickers", error.code().name)
            await asyncio.sleep(1)


async def stream_tickers_through_gateway(
    client: httpx.AsyncClient, stop: asyncio.Event, load: Load
) -> None:
    path = "/v1/venues/paper/tickers:stream?symbols=BTC/USDT"
    headers = {"Accept": "application/x-ndjson"}
    while not stop.is_set():
        try:
            async with client.stream("GET", path, headers=headers, timeout=None) as response:
                async for line in response.aiter_lines():
                    if line.strip():
                        load.count("gateway tickers")
                    if stop.is_set():
                        return
        except httpx.HTTPError as error:
            load.count("gateway tickers", type(error).__name__)
            await asyncio.sleep(1)


async def place_orders(client: httpx.AsyncClient, stop: asyncio.Event, load: Load) -> None:
    async def order(number: int) -> None:
        body = {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": "SIDE_BUY" if number % 2 == 0 else "SIDE_SELL",
            "type": "ORDER_TYPE_MARKET",
            "quantity": "0.001",
            "clientOrderId": f"soak-{number}",
        }
        response = await guarded(load, "orders http", client.post("/v1/orders", json=body))
        if response is not None:
            load.count("orders", str(response.status_code))

    await every(0.5, stop, order)


async def read_portfolio(
    channel: grpc.aio.Channel, exchange_channel: grpc.aio.Channel, stop: asyncio.Event, load: Load
) -> None:
    portfolio = portfolio_pb2_grpc.PortfolioServiceStub(channel)
    exchange = exchange_pb2_grpc.ExchangeServiceStub(exchange_channel)

    async def read(_number: int) -> None:
        await guarded(
            load,
            "portfolio",
            portfolio.GetPortfolio(portfolio_pb2.GetPortfolioRequest(account_id="paper")),
        )
        await guarded(
            load, "list orders", exchange.ListOrders(exchange_pb2.ListOrdersRequest(venue="paper"))
        )

    await every(1.0, stop, read)


async def compute_var(channel: grpc.aio.Channel, stop: asyncio.Event, load: Load) -> None:
    risk = risk_pb2_grpc.RiskServiceStub(channel)

    async def var(number: int) -> None:
        method = VAR_METHODS[number % len(VAR_METHODS)]
        request = risk_pb2.ComputeVaRRequest(method=method, confidence=0.99, seed=number)
        await guarded(load, "var", risk.ComputeVaR(request, timeout=30))

    await every(5.0, stop, var)


async def run_backtests(channel: grpc.aio.Channel, stop: asyncio.Event, load: Load) -> None:
    backtest = backtest_pb2_grpc.BacktestServiceStub(channel)
    imported = await backtest.ImportDataset(
        backtest_pb2.ImportDatasetRequest(
            name="soak",
            format=backtest_pb2.DATASET_FORMAT_CSV,
            content=synthetic_candles_csv(),
            symbol="BTC/USDT",
            timeframe=common_pb2.TIMEFRAME_1M,
        )
    )
    dataset_id = imported.dataset.dataset_id

    async def one(number: int) -> None:
        fast = 5 + number % 10
        request = backtest_pb2.SubmitBacktestRequest(
            dataset_id=dataset_id, strategy="sma_cross", parameters={"fast": fast, "slow": fast * 4}
        )
        submitted = await guarded(load, "backtest submit", backtest.SubmitBacktest(request))
        if submitted is None:
            return
        job = backtest_pb2.StreamJobRequest(job_id=submitted.job.job_id)
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for event in backtest.StreamJob(job, timeout=120):
                if event.HasField("result"):
                    load.count("backtest", "done")

    await every(20.0, stop, one)


def synthetic_candles_csv(count: int = 20_000) -> bytes:
    """A seeded random walk of 1-minute candles, as the CSV ImportDataset takes."""
    rng = np.random.default_rng(7)
    close = 60_000 * np.exp(np.cumsum(rng.normal(0, 0.001, count)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(open_, close) * 1.0005
    low = np.minimum(open_, close) * 0.9995
    start = 1_700_000_000_000
    lines = ["time,open,high,low,close,volume"]
    lines += [
        f"{start + i * 60_000},{open_[i]:.2f},{high[i]:.2f},{low[i]:.2f},{close[i]:.2f},1.5"
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


# --- sampling ----------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    """0 for a process that is gone (a worker that ended between listing and reading)."""
    try:
        return rss_bytes(pid) / MIB
    except OSError:
        return 0.0


def children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for task in tasks for c in (task / "children").read_text().split()]
    except OSError:
        return []


def sample(stack: Stack) -> dict[str, float]:
    programs = stack.programs()
    values = {name: rss_mib(programs[name].pid) for name in PROGRAMS}
    workers = [rss_mib(child) for child in children(programs["backtest"].pid)]
    values["backtest child (largest)"] = max(workers, default=0.0)
    return values


async def sample_until(stack: Stack, stop: asyncio.Event, samples: Samples, started: float) -> None:
    while not stop.is_set():
        samples.add(time.monotonic() - started, await asyncio.to_thread(sample, stack))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)


# --- the report --------------------------------------------------------------------------


def budgets(config: Config) -> dict[str, float]:
    found: dict[str, float] = {
        name: config.service(name).memory_budget_mib for name in SERVICE_NAMES
    }
    found["gateway"] = config.gateway.memory_budget_mib
    backtest_jobs = config.backtest.extensions.get("jobs", {})
    found["backtest child (largest)"] = float(backtest_jobs.get("worker_budget_mib", 768))
    return found


def summarize(samples: Samples, limits: dict[str, float], duration: float) -> list[dict[str, Any]]:
    window = min(WINDOW_SECONDS, duration / 3)
    times = np.array(samples.times)
    first, last = times <= times[0] + window, times >= times[-1] - window
    rows = []
    for name, values in samples.rss.items():
        rss = np.array(values)
        slope = float(np.polyfit(times / 3600, rss, 1)[0]) if len(rss) > 1 else 0.0
        rows.append(
            {
                "process": name,
                "first_window_mib": round(float(rss[first].mean()), 1),
                "last_window_mib": round(float(rss[last].mean()), 1),
                "growth_mib": round(float(rss[last].mean() - rss[first].mean()), 1),
                "slope_mib_per_hour": round(slope, 1),
                "peak_mib": round(float(rss.max()), 1),
                "budget_mib": limits[name],
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'process':<26}{'first':>8}{'last':>8}{'growth':>8}{'MiB/h':>8}{'peak':>8}{'budget':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['process']:<26}{row['first_window_mib']:>8}{row['last_window_mib']:>8}"
            f"{row['growth_mib']:>8}{row['slope_mib_per_hour']:>8}{row['peak_mib']:>8}"
            f"{row['budget_mib']:>8}"
        )
    return "\n".join(lines)


def memmon_restarts(config: Config) -> list[str]:
    log = config.log_dir / "memmon.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return [line for line in text.splitlines() if line.startswith("Restarting")]


# --- main --------------------------------------------------------------------------------


async def soak(root: Path) -> int:
    token = secrets.token_urlsafe(24)
    environment = isolated_config(
        root, GATEWAY__AUTH__TOKENS=f"soak:{digest(token)}:read+trade+admin"
    )
    async with running_stack(environment) as stack:
        config = stack.config
        before = stack.programs()
        stop, load, samples = asyncio.Event(), Load(), Samples()
        started = time.monotonic()
        print(f"soaking for {SECONDS:.0f} s, sampling every {SAMPLE_SECONDS:.0f} s ...", flush=True)
        async with (
            grpc.aio.insecure_channel(config.exchange.address) as exchange,
            grpc.aio.insecure_channel(config.portfolio.address) as portfolio,
            grpc.aio.insecure_channel(config.risk.address) as risk,
            grpc.aio.insecure_channel(config.backtest.address) as backtest,
            httpx.AsyncClient(
                base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client,
        ):
            tasks = [
                asyncio.create_task(job)
                for job in (
                    sample_until(stack, stop, samples, started),
                    stream_tickers(exchange, stop, load),
                    stream_tickers_through_gateway(client, stop, load),
                    place_orders(client, stop, load),
                    read_portfolio(portfolio, exchange, stop, load),
                    compute_var(risk, stop, load),
                    run_backtests(backtest, stop, load),
                )
            ]
            await asyncio.sleep(SECONDS)
            stop.set()
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() is not None:
                    print(f"a load task failed: {task.exception()!r}", file=sys.stderr)
        duration = time.monotonic() - started
        after = stack.programs()
    rows = summarize(samples, budgets(config), duration)
    restarted = sorted(name for name in before if before[name] != after.get(name))
    restarts = memmon_restarts(config)
    over = [row["process"] for row in rows if row["peak_mib"] > row["budget_mib"]]
    print(table(rows))
    print("\nload:", ", ".join(f"{kind}: {n}" for kind, n in sorted(load.outcomes.items())))
    print(
        f"samples: {len(samples.times)} over {duration:.0f} s; "
        f"restarted: {restarted or 'none'}; memmon restarts: {len(restarts)}"
    )
    RESULTS.write_text(
        json.dumps(
            {
                "seconds": round(duration),
                "sample_seconds": SAMPLE_SECONDS,
                "processes": rows,
                "load": dict(load.outcomes),
                "restarted": restarted,
                "memmon_restarts": restarts,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS}")
    failed = bool(over or restarted or restarts)
    if over:
        print(f"FAIL: over budget: {', '.join(over)}", file=sys.stderr)
    if restarted or restarts:
        print("FAIL: supervisord restarted a process", file=sys.stderr)
    return 1 if failed else 0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgequant-soak-") as directory:
        sys.exit(asyncio.run(soak(Path(directory))))


if __name__ == "__main__":
    main()
