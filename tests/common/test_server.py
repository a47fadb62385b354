"""The service lifecycle, in-process and as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.config import Config
from common.server import running
from common.testing import SERVING, health_status, wait_until_serving
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.main import SPEC as RISK


async def test_serving_for_the_server_and_its_service(config: Config) -> None:
    async with running(RISK, config) as service:
        assert await health_status(service.address) == SERVING
        assert await health_status(service.address, RISK.full_name) == SERVING
        assert service.address == config.risk.address


async def test_shutdown_sets_not_serving_before_stopping(config: Config) -> None:
    async with running(RISK, config) as service:
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
    first = _start("services.risk", environment)
    try:
        await wait_until_serving(config.risk.address)
        second = _start("services.risk", environment)
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 1
        # gRPC core logs the bind failure too; ours is the last word.
        assert stderr.strip().splitlines()[-1] == (
            f"risk: cannot listen on {config.risk.address}: the address is in use or invalid"
        )
        assert await health_status(config.risk.address) == SERVING  # the first one is unharmed
    finally:
        first.terminate()
        first.communicate(timeout=30)


async def test_sigterm_stops_gracefully(environment: dict[str, str], config: Config) -> None:
    process = _start("services.exchange", environment)
    await wait_until_serving(config.exchange.address)
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0
    messages = [json.loads(line)["message"] for line in stderr.splitlines()]
    assert messages == ["serving", "stopping", "stopped"]


async def test_port_zero_reports_the_chosen_port(config: Config) -> None:
    config = replace(config, risk=replace(config.risk, address="127.0.0.1:0"))
    async with running(RISK, config) as service:
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
    await channel.close()
