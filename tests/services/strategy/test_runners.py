"""The strategy service's RPCs on a real server with a real SQLite file, against the
test venue over real gRPC: validation, the safety rules, risk's word on orders,
warm-up, pause / flatten / delete, events, restarts that skip missed bars, and a
strategy that fails stopping its runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.config import load_config
from common.server import running
from common.testing import isolated_config, serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.backtest.main import SPEC as BACKTEST_SPEC
from services.strategy.main import SPEC
from services.strategy.testing import CandleVenue, load_candles
from tests.services.strategy.runner_testing import all_decisions, wait_for_decision

HISTORY = 130

if TYPE_CHECKING:  # the async stub type exists in the .pyi only
    Stub = strategy_pb2_grpc.StrategyServiceAsyncStub


def create(**fields: object) -> strategy_pb2.CreateRunnerRequest:
    request: dict[str, object] = {
        "strategy": "sma_cross",
        "parameters": {"fast": 10, "slow": 30},
        "venue": "paper",
        "symbol": "ADA/BTC",
        "timeframe": common_pb2.TIMEFRAME_5M,
        "capital": "0.5",
    }
    request.update(fields)
    return strategy_pb2.CreateRunnerRequest(**request)  # type: ignore[arg-type]


@dataclass
class Harness:
    venue: CandleVenue
    stub: Stub
    stop: Callable[[], Awaitable[None]]
    start: Callable[[], Awaitable[Stub]]


@asynccontextmanager
async def harness(
    tmp_path: Path, venue: CandleVenue | None = None, **overrides: str
) -> AsyncIterator[Harness]:
    venue = venue or CandleVenue(load_candles(count=400))  # type: ignore[abstract]
    if venue.released == 0:
        await venue.release(HISTORY)
    async with serving(venue, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server) as address:
        # In process: the memory guard would measure pytest's RSS, not a service's.
        config = load_config(
            isolated_config(
                tmp_path,
                **{
                    "EXCHANGE__ADDRESS": address,
                    "STRATEGY__MEMORY_BUDGET_MIB": "8192",
                    **overrides,
                },
            )
        )
        service: list[object] = []

        async def start() -> Stub:
            context = running(SPEC, config)
            running_service = await context.__aenter__()
            service.append(context)
            channel = grpc.aio.insecure_channel(running_service.address)
            service.append(channel)
            return strategy_pb2_grpc.StrategyServiceStub(channel)

        async def stop() -> None:
            while service:
                item = service.pop()
                if isinstance(item, grpc.aio.Channel):
                    await item.close()
                else:
                    await item.__aexit__(None, None, None)  # type: ignore[attr-defined]

        stub = await start()
        try:
            yield Harness(venue, stub, stop, start)
        finally:
            await stop()


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    for detail in status.details:
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def violations_of(error: grpc.aio.AioRpcError) -> set[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    request = error_details_pb2.BadRequest()
    fields: set[str] = set()
    for detail in status.details:
        if detail.Unpack(request):
            fields |= {violation.field for violation in request.field_violations}
    return fields


async def test_bad_input_is_refused_by_field_and_creates_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.CreateRunner(
                create(
                    strategy="no_such",
                    venue="",
                    timeframe=common_pb2.TIMEFRAME_UNSPECIFIED,
                    capital="-1",
                    stop_loss="1.5",
                )
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert {"strategy", "venue", "timeframe", "capital", "stop_loss"} <= violations_of(
            refused.value
        )
        with pytest.raises(grpc.aio.AioRpcError) as bad_parameters:
            await h.stub.CreateRunner(create(parameters={"fast": 40, "slow": 30}))
        assert violations_of(bad_parameters.value) == {"parameters[fast]"}
        with pytest.raises(grpc.aio.AioRpcError) as both:
            await h.stub.CreateRunner(create(capital_fraction="0.5"))
        assert violations_of(both.value) == {"capital"}
        listed = await h.stub.ListRunners(strategy_pb2.ListRunnersRequest())
        assert list(listed.runners) == []


async def test_a_live_venue_needs_allow_live_and_its_name_confirmed(tmp_path: Path) -> None:
    live = CandleVenue(  # type: ignore[abstract]
        load_candles(count=200), venue="binance-live", kind=exchange_pb2.VENUE_KIND_LIVE
    )
    async with harness(tmp_path / "off", live) as h:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.CreateRunner(create(venue="binance-live", confirm_live="binance-live"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(refused.value) == "LIVE_NOT_CONFIRMED"
    async with harness(tmp_path / "on", live, STRATEGY__RUNNERS__ALLOW_LIVE="true") as h:
        with pytest.raises(grpc.aio.AioRpcError) as unconfirmed:
            await h.stub.CreateRunner(create(venue="binance-live", confirm_live="binance"))
        assert reason_of(unconfirmed.value) == "LIVE_NOT_CONFIRMED"
        created = await h.stub.CreateRunner(
            create(venue="binance-live", confirm_live="binance-live")
        )
        assert created.runner.mode == strategy_pb2.RUNNER_MODE_LIVE
        assert created.runner.state == strategy_pb2.RUNNER_STATE_STOPPED


async def test_a_runner_from_a_backtest_result_the_backtest_service_lacks_is_refused(
    tmp_path: Path,
) -> None:
    """CreateRunner from a backtest result asks the real backtest service (the strategy
    loads the backtest contract on that first use): a job it does not know is
    FAILED_PRECONDITION, with the backtest service's NOT_FOUND in the message."""
    backtest_config = load_config(
        # In process, like the strategy service: its memory guard would measure pytest.
        isolated_config(tmp_path / "backtest", BACKTEST__MEMORY_BUDGET_MIB="4096")
    )
    async with (
        running(BACKTEST_SPEC, backtest_config) as backtest,
        harness(tmp_path / "strategy", BACKTEST__ADDRESS=backtest.address) as h,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.CreateRunner(create(strategy="", backtest_job_id="no-such-job"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(refused.value) == "BACKTEST_RESULT_UNAVAILABLE"
    assert "NOT_FOUND" in (refused.value.details() or "")


async def test_one_runner_per_symbol_and_capital_reserved_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        first = await h.stub.CreateRunner(create(capital="0.6"))
        assert first.runner.mode == strategy_pb2.RUNNER_MODE_PAPER
        with pytest.raises(grpc.aio.AioRpcError) as taken:
            await h.stub.CreateRunner(create(capital="0.1"))
        assert reason_of(taken.value) == "RUNNER_SYMBOL_TAKEN"
        with pytest.raises(grpc.aio.AioRpcError) as spent:
            await h.stub.CreateRunner(create(symbol="ETH/BTC", capital="0.5"))
        assert reason_of(spent.value) == "CAPITAL_UNAVAILABLE"
        rest = await h.stub.CreateRunner(create(symbol="ETH/BTC", capital="", capital_fraction="1"))
        assert Decimal(rest.runner.capital) == Decimal("0.4")


async def test_a_start_above_the_memory_soft_limit_is_refused(tmp_path: Path) -> None:
    # A budget this process is far above: the soft limit is passed.
    async with harness(tmp_path, STRATEGY__MEMORY_BUDGET_MIB="16") as h:
        runner = (await h.stub.CreateRunner(create())).runner
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner.runner_id))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(refused.value) == "MEMORY_BUDGET"
        got = await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner.runner_id))
        assert got.runner.state == strategy_pb2.RUNNER_STATE_STOPPED


async def test_warm_up_refuses_a_start_without_enough_history(tmp_path: Path) -> None:
    venue = CandleVenue(load_candles(count=200))  # type: ignore[abstract]
    await venue.release(40)
    async with harness(tmp_path, venue) as h:
        runner = (await h.stub.CreateRunner(create())).runner
        assert runner.warmup_bars == 62
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner.runner_id))
        assert reason_of(refused.value) == "WARMUP_INSUFFICIENT_HISTORY"
        got = await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner.runner_id))
        assert got.runner.state == strategy_pb2.RUNNER_STATE_STOPPED
        assert venue.submissions == 0


async def test_warm_up_refuses_a_strategy_whose_output_depends_on_where_history_starts(
    tmp_path: Path,
) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "drifting.py").write_text(
        '"""Says how many candles it was given: no history is ever enough."""\n'
        "import numpy as np\n\n"
        "def warmup():\n    return 20\n\n"
        "def signals(candles):\n"
        "    return np.full(len(candles), float(len(candles)))\n"
    )
    async with harness(
        tmp_path / "service", STRATEGY__RUNNERS__STRATEGIES_DIR=str(strategies)
    ) as h:
        runner_id = (
            await h.stub.CreateRunner(create(strategy="drifting", parameters={}))
        ).runner.runner_id
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
        assert reason_of(refused.value) == "WARMUP_UNSTABLE"
        got = (await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))).runner
        assert got.state == strategy_pb2.RUNNER_STATE_STOPPED
        assert h.venue.submissions == 0


async def test_risk_denying_orders_means_no_position_and_the_runner_goes_on(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        h.venue.deny_reason = "RISK_TRADING_HALTED"
        runner_id = (await h.stub.CreateRunner(create())).runner.runner_id
        await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
        for index in range(HISTORY, 330):
            await h.venue.release()
            await wait_for_decision(h.stub, runner_id, int(h.venue.rows[index][0]))
        decisions = await all_decisions(h.stub, runner_id)
        ordered = [d for d in decisions if d.client_order_id]
        assert ordered, "the strategy must have wanted to trade"
        assert all(d.order_status == common_pb2.ORDER_STATUS_REJECTED for d in ordered)
        assert all("RISK_TRADING_HALTED" in d.message for d in ordered)
        got = (await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))).runner
        assert got.state == strategy_pb2.RUNNER_STATE_RUNNING
        assert Decimal(got.position) == 0
        assert h.venue.orders == {}


async def test_pause_flatten_stop_delete_and_events(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgequant.strategy.runners")
    async with harness(tmp_path) as h:
        runner_id = (await h.stub.CreateRunner(create())).runner.runner_id
        events = h.stub.StreamRunnerEvents(
            strategy_pb2.StreamRunnerEventsRequest(runner_id=runner_id)
        )
        await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
        index = HISTORY
        while True:
            got = await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
            if Decimal(got.runner.position) > 0:
                break
            await h.venue.release()
            await wait_for_decision(h.stub, runner_id, int(h.venue.rows[index][0]))
            index += 1
        with pytest.raises(grpc.aio.AioRpcError) as running_delete:
            await h.stub.DeleteRunner(strategy_pb2.DeleteRunnerRequest(runner_id=runner_id))
        assert reason_of(running_delete.value) == "RUNNER_STATE_CONFLICT"
        flattened = await h.stub.Flatten(strategy_pb2.FlattenRequest(runner_id=runner_id))
        assert flattened.decision.reason == "flatten"
        assert Decimal(flattened.runner.position) == 0
        assert flattened.runner.entries_paused
        stopped = await h.stub.StopRunner(strategy_pb2.StopRunnerRequest(runner_id=runner_id))
        assert stopped.runner.state == strategy_pb2.RUNNER_STATE_STOPPED
        kinds = []
        async for message in events:
            kinds.append(message.event.kind)
            if message.event.kind == strategy_pb2.RUNNER_EVENT_KIND_STATE and (
                message.event.runner.state == strategy_pb2.RUNNER_STATE_STOPPED
            ):
                break
        events.cancel()
        assert strategy_pb2.RUNNER_EVENT_KIND_DECISION in kinds
        assert strategy_pb2.RUNNER_EVENT_KIND_FILL in kinds
        assert strategy_pb2.RUNNER_EVENT_KIND_RECONCILED in kinds
        # The operator's trace in the service's log: the start, the orders, the stop.
        logged = [r for r in caplog.records if getattr(r, "runner_id", "") == runner_id]
        assert any(r.getMessage().startswith("warm-up passed") for r in logged)
        assert any(getattr(r, "client_order_id", "") for r in logged)
        assert logged[-1].getMessage() == "stopped"
        await h.stub.DeleteRunner(strategy_pb2.DeleteRunnerRequest(runner_id=runner_id))
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_restart_resumes_and_skips_the_bars_it_missed(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        runner_id = (await h.stub.CreateRunner(create())).runner.runner_id
        await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
        await wait_for_decision(h.stub, runner_id, int(h.venue.rows[HISTORY - 1][0]))
        await h.stop()
        # Five bars close while the service is down.
        await h.venue.release(5)
        stub = await h.start()
        newest = int(h.venue.rows[HISTORY + 4][0])
        await wait_for_decision(stub, runner_id, newest)
        decisions = await all_decisions(stub, runner_id)
        skipped = [d for d in decisions if d.reason == "skipped"]
        assert len(skipped) == 1
        assert skipped[0].message.startswith("4 bars closed while the runner was not running")
        decided = {d.bar_time.ToMilliseconds() for d in decisions if d.reason == "signal"}
        assert not decided & {int(row[0]) for row in h.venue.rows[HISTORY : HISTORY + 4]}
        got = (await stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))).runner
        assert got.state == strategy_pb2.RUNNER_STATE_RUNNING


async def test_a_failing_strategy_stops_its_runner_and_says_why(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    last_history_bar = int(load_candles(count=HISTORY)[-1][0])
    (strategies / "fragile.py").write_text(
        '"""Fails on the first candle after its history."""\n'
        "import numpy as np\n\n"
        "def warmup():\n    return 20\n\n"
        "def signals(candles):\n"
        f"    if candles.time[-1] > {last_history_bar}:\n"
        "        raise ValueError('no more')\n"
        "    return np.full(len(candles), np.nan)\n"
    )
    async with harness(
        tmp_path / "service", STRATEGY__RUNNERS__STRATEGIES_DIR=str(strategies)
    ) as h:
        runner_id = (
            await h.stub.CreateRunner(create(strategy="fragile", parameters={}))
        ).runner.runner_id
        await h.stub.StartRunner(strategy_pb2.StartRunnerRequest(runner_id=runner_id))
        await wait_for_decision(h.stub, runner_id, int(h.venue.rows[HISTORY - 1][0]))
        await h.venue.release()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline:
            got = (
                await h.stub.GetRunner(strategy_pb2.GetRunnerRequest(runner_id=runner_id))
            ).runner
            if got.state == strategy_pb2.RUNNER_STATE_FAILED:
                break
            await asyncio.sleep(0.01)
        assert got.state == strategy_pb2.RUNNER_STATE_FAILED
        assert "ValueError('no more')" in got.stop_reason
