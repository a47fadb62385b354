"""The service lifecycle, in-process and as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import Config
from common.errors import reason_of
from common.reasons import CommonReason
from common.server import running
from common.service import Runtime, ServiceSpec
from common.testing import SERVING, health_status, wait_until_serving
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.portfolio.main import SPEC as PORTFOLIO
from services.risk.main import SPEC as RISK

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_serving_for_the_server_and_its_service(config: Config) -> None:
    async with running(PORTFOLIO, config) as service:
        assert await health_status(service.address) == SERVING
        assert await health_status(service.address, PORTFOLIO.full_name) == SERVING
        assert service.address == config.portfolio.address


class SlowToSync(risk_pb2_grpc.RiskServiceServicer):
    """A servicer that answers at once but can do its work only once `synced` is set."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()

    async def ready(self) -> None:
        await self.synced.wait()

    async def GetTradingState(
        self, request: object, context: object
    ) -> risk_pb2.GetTradingStateResponse:
        return risk_pb2.GetTradingStateResponse()


async def test_a_servicer_with_ready_is_not_serving_until_it_is(config: Config) -> None:
    servicer = SlowToSync()  # type: ignore[abstract]

    @asynccontextmanager
    async def lifespan(runtime: Runtime) -> AsyncIterator[SlowToSync]:
        yield servicer

    spec = ServiceSpec(RISK.name, RISK.descriptor, lifespan, RISK.add_to_server)
    async with (
        running(spec, config) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == NOT_SERVING
        assert await health_status(service.address, spec.full_name) == NOT_SERVING
        # It answers meanwhile: readiness is about its work, not its port.
        await risk_pb2_grpc.RiskServiceStub(channel).GetTradingState(
            risk_pb2.GetTradingStateRequest()
        )
        servicer.synced.set()
        assert (await watch.read()).status == SERVING
        assert await health_status(service.address, spec.full_name) == SERVING
        watch.cancel()


async def test_a_stop_before_ready_is_clean(config: Config) -> None:
    @asynccontextmanager
    async def lifespan(runtime: Runtime) -> AsyncIterator[SlowToSync]:
        yield SlowToSync()  # type: ignore[abstract]

    spec = ServiceSpec(RISK.name, RISK.descriptor, lifespan, RISK.add_to_server)
    async with running(spec, config) as service:
        assert await health_status(service.address) == NOT_SERVING
    assert await health_status(service.address) is None


async def test_risk_is_not_serving_until_its_books_have_synced(config: Config) -> None:
    """No exchange to list the venues: risk answers, but says it is not ready."""
    async with running(RISK, config) as service:
        assert await health_status(service.address) == NOT_SERVING


async def test_shutdown_sets_not_serving_before_stopping(config: Config) -> None:
    async with running(PORTFOLIO, config) as service:
        channel = grpc.aio.insecure_channel(service.address)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == SERVING
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
    await channel.close()


async def test_database_is_migrated_before_serving(config: Config) -> None:
    async with running(RISK, config):
        assert (config.var_dir / "risk.db").exists()


def _start(module: str, environment: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_second_instance_on_a_taken_port_exits_non_zero(
    environment: dict[str, str], config: Config
) -> None:
    first = _start("services.portfolio", environment)
    try:
        await wait_until_serving(config.portfolio.address)
        second = _start("services.portfolio", environment)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 1
        # gRPC core logs the bind failure too; ours is the last word.
        assert stderr.strip().splitlines()[-1] == (
            f"portfolio: cannot listen on {config.portfolio.address}: the address is in use "
            "or invalid"
        )
        assert await health_status(config.portfolio.address) == SERVING  # the first one is unharmed
    finally:
        first.terminate()
        first.communicate(timeout=30)


async def test_sigterm_stops_gracefully(environment: dict[str, str], config: Config) -> None:
    process = _start("services.exchange", environment)
    await wait_until_serving(config.exchange.address)
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0
    # The server's own lifecycle, in order (the exchange's clients of risk, which is not
    # running here, log their reconnects beside it).
    lines = [json.loads(line) for line in stderr.splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "edgequant.server"]
    assert messages == ["serving", "stopping", "stopped"]


async def test_port_zero_reports_the_chosen_port(config: Config) -> None:
    config = replace(config, portfolio=replace(config.portfolio, address="127.0.0.1:0"))
    async with running(PORTFOLIO, config) as service:
        assert not service.address.endswith(":0")
        assert await health_status(service.address) == SERVING


async def test_a_stop_ends_subscriptions_with_unavailable_not_after_the_grace(
    config: Config,
) -> None:
    """A subscription never finishes by itself: a graceful stop ends it at once, so
    that it neither waits out `grace_seconds` nor gets cut off as CANCELLED after it."""
    config = replace(config, risk=replace(config.risk, grace_seconds=30.0))
    async with running(RISK, config) as service:
        channel = grpc.aio.insecure_channel(service.address)
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        events = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
        # A state change is an event: once one arrives, the stream is surely open.
        first = asyncio.ensure_future(events.read())
        while not first.done():
            await risk.SetTradingState(
                risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_REDUCING)
            )
            await asyncio.wait([first], timeout=1)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await events.read()
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "stopping" in (ended.value.details() or "")
    assert reason_of(ended.value) == CommonReason.SERVICE_STOPPING
    await channel.close()
