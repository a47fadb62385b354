"""Helpers of the strategy service's tests: the service as a real process (so it can be
killed with SIGKILL), a client, and reading a runner's positions bar by bar."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc

from common.config import PROJECT_ROOT, load_config
from common.testing import isolated_config, wait_until_serving
from edgequant.common.v1 import common_pb2
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc


@dataclass
class StrategyProcess:
    """`python -m services.strategy` against the given exchange, in `directory`."""

    directory: Path
    exchange_address: str
    extra: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.environment = isolated_config(
            self.directory,
            EXCHANGE__ADDRESS=self.exchange_address,
            STRATEGY__GRACE_SECONDS="0.5",
            **(self.extra or {}),
        )
        self.address = load_config(self.environment).strategy.address
        self.log = self.directory / "strategy.log"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - runs beside the loop
                [sys.executable, "-m", "services.strategy"],
                cwd=PROJECT_ROOT,
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await wait_until_serving(self.address, within=60)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush: what a crash or the OOM killer does."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@asynccontextmanager
async def strategy_client(
    address: str,
) -> AsyncIterator[strategy_pb2_grpc.StrategyServiceAsyncStub]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield strategy_pb2_grpc.StrategyServiceStub(channel)


async def all_decisions(
    stub: strategy_pb2_grpc.StrategyServiceAsyncStub, runner_id: str
) -> list[strategy_pb2.Decision]:
    """Every decision of a runner, oldest first."""
    decisions: list[strategy_pb2.Decision] = []
    token = ""
    while True:
        page = await stub.ListDecisions(
            strategy_pb2.ListDecisionsRequest(runner_id=runner_id, page_size=1000, page_token=token)
        )
        decisions += page.decisions
        token = page.next_page_token
        if not token:
            return decisions[::-1]


async def wait_for_decision(
    stub: strategy_pb2_grpc.StrategyServiceAsyncStub,
    runner_id: str,
    bar_ms: int,
    within: float = 60,
) -> strategy_pb2.Decision:
    """Polls until the runner has decided the bar that opened at `bar_ms`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            page = await stub.ListDecisions(
                strategy_pb2.ListDecisionsRequest(runner_id=runner_id, page_size=5), timeout=5
            )
        except grpc.aio.AioRpcError:
            page = strategy_pb2.ListDecisionsResponse()
        for decision in page.decisions:
            if decision.bar_time.ToMilliseconds() == bar_ms and decision.reason == "signal":
                # Decided means its order, if any, is answered and filled (or refused):
                # a decision is written before its order is sent, and the next candle
                # must not close before that order reached the exchange.
                settled = decision.fill_price or decision.order_status in (
                    common_pb2.ORDER_STATUS_REJECTED,
                    common_pb2.ORDER_STATUS_CANCELED,
                )
                if not decision.client_order_id or settled:
                    return decision
        await asyncio.sleep(0.01)
    runner = await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
    raise TimeoutError(f"bar {bar_ms} not decided; runner: {runner.runner}")


def positions_after(
    decisions: list[strategy_pb2.Decision], final_position: str
) -> dict[int, Decimal]:
    """The runner's position after each decided bar (by bar open ms): the next decision's
    position_before, or the runner's position after the last one."""
    signal_decisions = [d for d in decisions if d.reason == "signal"]
    after: dict[int, Decimal] = {}
    for index, decision in enumerate(decisions):
        if decision.reason != "signal":
            continue
        later = decisions[index + 1] if index + 1 < len(decisions) else None
        after[decision.bar_time.ToMilliseconds()] = Decimal(
            later.position_before if later is not None else final_position
        )
    assert len(after) == len(signal_decisions)
    return after
