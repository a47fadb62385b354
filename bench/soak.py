"""`make soak`: an hour of mixed load against the stack as `make run` runs it.

The stack runs under supervisord (memmon included) in a temporary directory on free
ports, on an ample paper account (bench.section.ample_account). Before the load it buys
an inventory and checks that the portfolio holds it and that risk passes a sell and a
buy (bench.section.prepare_flat_account). The load, all at once, for SOAK_SECONDS
(default 3600):
- streams held open the whole time: tickers, positions and risk events over gRPC, and
  through the gateway (tickers and risk events as NDJSON, positions as SSE);
- orders: market orders through the gateway, sell and buy in turn, two a second, so the
  account stays within its means for any length of soak;
- the paper order book every 5 s; reads: GetPortfolio and ListOrders, one a second each;
- VaR: ComputeVaR every 5 s, historical, parametric and Monte Carlo in turn;
- backtests: an sma_cross backtest every 20 s on a synthetic dataset, waited for.

Every SOAK_SAMPLE_SECONDS (10) the RSS of each supervisord program (and of the largest
backtest worker) is sampled. The report gives, per process, the mean RSS of the first
and the last window (10 minutes, or a third of a shorter run), the growth between them,
a least-squares slope in MiB/hour, the peak and the budget from configs/; then the
errors and the stream cuts (target 0 each). It fails (exit 1) if:
- a process passed its budget, or supervisord restarted anything (a pid or start time
  changed, or memmon's log says it restarted a program);
- any call failed in a way a healthy stack does not (an UNAVAILABLE, a deadline, a 5xx;
  only VaR's FAILED_PRECONDITION for too little candle history is expected);
- a stream ended or failed though nobody asked;
- a ticker or book sample had best bid >= best ask (a crossed paper book);
- a log in the stack's var/log says GOAWAY, too_many_pings or Too many pings;
- an order was refused for balance: the load must stay within its means, so that is a
  design error of the load, never counted as a success.

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
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from bench.section import ample_account, prepare_flat_account, reason
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


# Calls that fail by design while the paper venue has too little candle history for VaR.
EXPECTED = frozenset({"var FAILED_PRECONDITION"})
# What a log of a healthy stack never says (the keepalive policies disagree).
GOAWAY_MARKERS = ("GOAWAY", "too_many_pings", "Too many pings")
ORDER_QUANTITY = "0.001"
INVENTORY = "0.05"


@dataclass
class Load:
    """What the load did: calls by kind and outcome ("orders ok", "var UNAVAILABLE"),
    streams that ended though nobody asked, and crossed books seen."""

    outcomes: Counter[str] = field(default_factory=Counter)
    stream_cuts: Counter[str] = field(default_factory=Counter)
    crossed: list[str] = field(default_factory=list)
    crossed_count: int = 0
    refused_for_balance: int = 0
    # The first few answers of each failing kind, to say why.
    examples: dict[str, str] = field(default_factory=dict)

    def count(self, kind: str, outcome: str = "ok", detail: str = "") -> None:
        key = f"{kind} {outcome}"
        self.outcomes[key] += 1
        if outcome != "ok" and detail and key not in self.examples:
            self.examples[key] = detail[:500]

    def cut(self, stream: str, how: str) -> None:
        self.stream_cuts[stream] += 1
        self.examples.setdefault(f"{stream} cut", how[:500])

    def book(self, where: str, bid: str, ask: str) -> None:
        if bid and ask and Decimal(bid) >= Decimal(ask):
            self.crossed_count += 1
            if len(self.crossed) < 10:
                self.crossed.append(f"{where}: bid {bid} >= ask {ask}")

    def errors(self) -> dict[str, int]:
        """Failed calls a healthy stack does not give (not the expected VaR refusals)."""
        return {
            key: n
            for key, n in self.outcomes.items()
            if not key.endswith(" ok") and key not in EXPECTED
        }


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
        load.count(kind, error.code().name, reason(error))
        return None
    except httpx.HTTPError as error:
        load.count(kind, type(error).__name__, repr(error))
        return None
    load.count(kind)
    return result


async def hold_grpc_stream(
    name: str,
    stop: asyncio.Event,
    load: Load,
    open_stream: Callable[[], AsyncIterable[Any]],
    on_message: Callable[[Any], None] | None = None,
) -> None:
    """Reads a server stream for the whole soak; one that ends or fails unasked is a cut
    (and reopened)."""
    while not stop.is_set():
        try:
            async for message in open_stream():
                if on_message is not None:
                    on_message(message)
                if stop.is_set():
                    return
            how = "ended"
        except grpc.aio.AioRpcError as error:
            if stop.is_set():
                return
            load.count(name, error.code().name, reason(error))
            how = reason(error)
        if not stop.is_set():
            load.cut(name, how)
            await asyncio.sleep(1)


async def hold_gateway_stream(
    name: str,
    path: str,
    accept: str,
    client: httpx.AsyncClient,
    *,
    stop: asyncio.Event,
    load: Load,
) -> None:
    """The same for a stream through the gateway (NDJSON or SSE); an error event counts."""
    headers = {"Accept": accept}
    while not stop.is_set():
        how = "ended"
        try:
            async with client.stream("GET", path, headers=headers, timeout=None) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")
                    load.count(name, str(response.status_code), body)
                    how = f"{response.status_code} {body}"
                else:
                    event = ""
                    async for line in response.aiter_lines():
                        if line.startswith('{"error"') or event == "error":
                            load.count(name, "error event", line)
                            how = line
                        elif line.startswith(("{", "data:")):
                            load.count(name)
                        event = line.removeprefix("event: ") if line.startswith("event:") else ""
                        if stop.is_set():
                            return
        except httpx.HTTPError as error:
            if stop.is_set():
                return
            load.count(name, type(error).__name__, repr(error))
            how = repr(error)
        if not stop.is_set():
            load.cut(name, how)
            await asyncio.sleep(1)


async def sample_books(channel: grpc.aio.Channel, stop: asyncio.Event, load: Load) -> None:
    """The paper book every 5 s: best bid below best ask, always."""
    exchange = exchange_pb2_grpc.ExchangeServiceStub(channel)
    request = exchange_pb2.GetOrderBookRequest(venue="paper", symbol="BTC/USDT")

    async def one(_number: int) -> None:
        answer = await guarded(load, "order book", exchange.GetOrderBook(request, timeout=10))
        if answer is not None and answer.order_book.bids and answer.order_book.asks:
            book = answer.order_book
            load.book("order book", book.bids[0].price, book.asks[0].price)

    await every(5.0, stop, one)


async def place_orders(client: httpx.AsyncClient, stop: asyncio.Event, load: Load) -> None:
    """Buys and sells in turn from an inventory (bench.section.prepare_flat_account), so the
    account stays within its means for any length of soak: a refusal for balance is the
    load's design error and fails the soak."""

    async def order(number: int) -> None:
        body = {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": "SIDE_SELL" if number % 2 == 0 else "SIDE_BUY",
            "type": "ORDER_TYPE_MARKET",
            "quantity": ORDER_QUANTITY,
            "clientOrderId": f"soak-{number}",
        }
        response = await guarded(load, "orders http", client.post("/v1/orders", json=body))
        if response is None:
            return
        if response.status_code == 200:
            load.count("orders")
        elif "INSUFFICIENT_BALANCE" in response.text:
            load.refused_for_balance += 1
            load.examples.setdefault("orders refused for balance", response.text[:500])
        else:
            load.count("orders", str(response.status_code), response.text)

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
        try:
            async for event in backtest.StreamJob(job, timeout=120):
                if event.HasField("result"):
                    load.count("backtest result")
                    return
                if event.progress.state == backtest_pb2.JOB_STATE_FAILED:
                    load.count("backtest", "FAILED", event.progress.error)
                    return
        except grpc.aio.AioRpcError as error:
            load.count("backtest stream", error.code().name, reason(error))
            load.cut("backtest stream", reason(error))
            return
        load.cut("backtest stream", "ended before the job's result")

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


def goaway_lines(log_dir: Path) -> list[str]:
    """Lines of the stack's logs (var/log) that say a peer was sent away for pinging."""
    found = []
    for log in sorted(log_dir.rglob("*")):
        if not log.is_file():
            continue
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            if any(marker in line for marker in GOAWAY_MARKERS):
                found.append(f"{log.name}:{number}: {line.strip()[:300]}")
    return found


def streams(
    exchange: grpc.aio.Channel,
    portfolio: grpc.aio.Channel,
    risk: grpc.aio.Channel,
    client: httpx.AsyncClient,
    *,
    stop: asyncio.Event,
    load: Load,
) -> list[Coroutine[Any, Any, None]]:
    """Streams held open for the whole soak: tickers (busy), positions and risk events
    (mostly idle, what a keepalive disagreement cuts first), straight and through the
    gateway in both framings."""
    tickers = exchange_pb2_grpc.ExchangeServiceStub(exchange)
    positions = portfolio_pb2_grpc.PortfolioServiceStub(portfolio)
    events = risk_pb2_grpc.RiskServiceStub(risk)
    ticker_request = exchange_pb2.StreamTickersRequest(venue="paper", symbols=["BTC/USDT"])

    def on_ticker(message: Any) -> None:
        load.count("grpc tickers")
        load.book("ticker", message.ticker.bid, message.ticker.ask)

    ndjson, sse = "application/x-ndjson", "text/event-stream"
    return [
        hold_grpc_stream(
            "grpc tickers", stop, load, lambda: tickers.StreamTickers(ticker_request), on_ticker
        ),
        hold_grpc_stream(
            "grpc positions",
            stop,
            load,
            lambda: positions.StreamPositions(
                portfolio_pb2.StreamPositionsRequest(account_id="paper")
            ),
        ),
        hold_grpc_stream(
            "grpc risk events",
            stop,
            load,
            lambda: events.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest()),
        ),
        hold_gateway_stream(
            "gateway tickers",
            "/v1/venues/paper/tickers:stream?symbols=BTC/USDT",
            ndjson,
            client,
            stop=stop,
            load=load,
        ),
        hold_gateway_stream(
            "gateway positions",
            "/v1/accounts/paper/positions:stream",
            sse,
            client,
            stop=stop,
            load=load,
        ),
        hold_gateway_stream(
            "gateway risk events", "/v1/risk/events:stream", ndjson, client, stop=stop, load=load
        ),
    ]


async def soak(root: Path) -> int:
    token = secrets.token_urlsafe(24)
    environment = isolated_config(
        root, GATEWAY__AUTH__TOKENS=f"soak:{digest(token)}:read+trade+admin", **ample_account()
    )
    async with running_stack(environment) as stack:
        config = stack.config
        await prepare_flat_account(config, ORDER_QUANTITY, INVENTORY, in_flight=2)
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
            # Held streams are ended by cancelling them (asked); the rest finish their call.
            held = [
                asyncio.create_task(job)
                for job in streams(exchange, portfolio, risk, client, stop=stop, load=load)
            ]
            tasks = [
                asyncio.create_task(job)
                for job in (
                    sample_until(stack, stop, samples, started),
                    sample_books(exchange, stop, load),
                    place_orders(client, stop, load),
                    read_portfolio(portfolio, exchange, stop, load),
                    compute_var(risk, stop, load),
                    run_backtests(backtest, stop, load),
                )
            ]
            await asyncio.sleep(SECONDS)
            stop.set()
            for task in held:
                task.cancel()
            done, pending = await asyncio.wait(tasks, timeout=60)
            for task in pending:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            done |= {task for task in held if not task.cancelled()}
            crashed = [repr(task.exception()) for task in done if task.exception() is not None]
        duration = time.monotonic() - started
        after = stack.programs()
        goaways = goaway_lines(config.log_dir)
    rows = summarize(samples, budgets(config), duration)
    restarted = sorted(name for name in before if before[name] != after.get(name))
    restarts = memmon_restarts(config)
    over = [row["process"] for row in rows if row["peak_mib"] > row["budget_mib"]]
    errors = load.errors()
    error_count, cut_count = sum(errors.values()), sum(load.stream_cuts.values())
    print(table(rows))
    print("\nload:", ", ".join(f"{kind}: {n}" for kind, n in sorted(load.outcomes.items())))
    print(
        f"samples: {len(samples.times)} over {duration:.0f} s; "
        f"restarted: {restarted or 'none'}; memmon restarts: {len(restarts)}"
    )
    print(
        f"errors: {error_count} (target 0); stream cuts: {cut_count} (target 0); "
        f"crossed books: {load.crossed_count}; GOAWAY log lines: {len(goaways)}; "
        f"orders refused for balance: {load.refused_for_balance}"
    )
    for key, example in sorted(load.examples.items()):
        print(f"  {key}: {example}")
    for line in [*load.crossed, *goaways[:10]]:
        print(f"  {line}")
    RESULTS.write_text(
        json.dumps(
            {
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(duration),
                "sample_seconds": SAMPLE_SECONDS,
                "processes": rows,
                "load": dict(load.outcomes),
                "errors": error_count,
                "errors_by_kind": errors,
                "stream_cuts": cut_count,
                "stream_cuts_by_stream": dict(load.stream_cuts),
                "crossed_books": load.crossed_count,
                "crossed_examples": load.crossed,
                "goaway_lines": goaways,
                "orders_refused_for_balance": load.refused_for_balance,
                "examples": load.examples,
                "load_tasks_failed": crashed,
                "restarted": restarted,
                "memmon_restarts": restarts,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS}")
    failures = {
        "over budget": over,
        "supervisord restarted a process": restarted or restarts,
        "errors a healthy stack does not give": errors,
        "streams ended unasked": dict(load.stream_cuts),
        "crossed paper book": load.crossed_count,
        "GOAWAY in the logs": len(goaways),
        "orders refused for balance (the load's design error)": load.refused_for_balance,
        "load tasks failed": crashed,
    }
    for what, which in failures.items():
        if which:
            print(f"FAIL: {what}: {which}", file=sys.stderr)
    return 1 if any(failures.values()) else 0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgequant-soak-") as directory:
        sys.exit(asyncio.run(soak(Path(directory))))


if __name__ == "__main__":
    main()
