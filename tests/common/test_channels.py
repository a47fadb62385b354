"""Channels that live for days: keepalive pings find a hung peer, and no server punishes
them with GOAWAY `too_many_pings` (which fails every call in flight on the connection).

The windows are shortened through `[grpc]` so that the tests run in seconds; the peer is
a real risk service in a child process (common.server applies the servers' policy), and
the clients are opened by common.channels, as every inter-service client is.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from common.channels import peer_channel
from common.config import Config, GrpcSettings, load_config
from common.testing import isolated_config, wait_until_serving
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc

READY = grpc.ChannelConnectivity.READY
GOAWAY_LOG = "too_many_pings"


def strike_window(settings: GrpcSettings) -> float:
    """How long a server with a stricter policy than our clients' keepalive takes to send
    GOAWAY: the first ping is free, `max_ping_strikes` more are forgiven."""
    return (settings.max_ping_strikes + 1) * settings.keepalive_time_seconds


@asynccontextmanager
async def risk_process(
    directory: Path, keepalive: float, keepalive_timeout: float
) -> AsyncIterator[tuple[Config, subprocess.Popen[bytes]]]:
    """`python -m services.risk` with `[grpc]` windows of `keepalive` and
    `keepalive_timeout` seconds (servers permit a ping every half keepalive, as the
    defaults do)."""
    environment = isolated_config(
        directory,
        GRPC__KEEPALIVE_TIME_SECONDS=str(keepalive),
        GRPC__KEEPALIVE_TIMEOUT_SECONDS=str(keepalive_timeout),
        GRPC__MIN_PING_INTERVAL_SECONDS=str(keepalive / 2),
        # No peers here: risk reports SERVING once its wait for a first sync times out.
        RISK__FEEDS__READY_TIMEOUT_SECONDS="0.5",
    )
    config = load_config(environment)
    process = subprocess.Popen(  # noqa: ASYNC220 - it runs beside the loop
        [sys.executable, "-m", "services.risk"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_until_serving(config.risk.address, within=60)
        yield config, process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


class StateLog:
    """Every connectivity state a channel passes through, from now on."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.states: list[grpc.ChannelConnectivity] = []
        self._left_ready = asyncio.Event()
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        state = self.channel.get_state()
        while True:
            await self.channel.wait_for_state_change(state)
            state = self.channel.get_state()
            self.states.append(state)
            if state is not READY:
                self._left_ready.set()

    async def left_ready(self) -> None:
        await self._left_ready.wait()

    def stop(self) -> None:
        self._task.cancel()


EventStream = grpc.aio.UnaryStreamCall[
    risk_pb2.StreamRiskEventsRequest, risk_pb2.StreamRiskEventsResponse
]


async def open_event_stream(risk: risk_pb2_grpc.RiskServiceAsyncStub) -> EventStream:
    """StreamRiskEvents, surely open: a state change was published on it and read."""
    events: EventStream = risk.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
    first = asyncio.ensure_future(events.read())
    while not first.done():
        await risk.SetTradingState(
            risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_REDUCING), timeout=5
        )
        await asyncio.wait([first], timeout=0.5)
    assert isinstance(first.result(), risk_pb2.StreamRiskEventsResponse)
    return events


async def test_idle_channels_and_streams_outlive_the_ping_strike_window(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with risk_process(tmp_path, keepalive=1.0, keepalive_timeout=1.0) as (config, _):
        address = config.risk.address
        async with (
            peer_channel(address, config.grpc) as quiet,
            peer_channel(address, config.grpc) as streaming,
        ):
            # One channel without any call (the server sees no stream at all), one with
            # a server stream that stays silent: the two ways a server judges pings.
            quiet_risk = risk_pb2_grpc.RiskServiceStub(quiet)
            await quiet_risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=5)
            streaming_risk = risk_pb2_grpc.RiskServiceStub(streaming)
            events = await open_event_stream(streaming_risk)
            logs = [StateLog(quiet), StateLog(streaming)]

            await asyncio.sleep(2 * strike_window(config.grpc))

            for log in logs:
                log.stop()
            assert [log.states for log in logs] == [[], []]  # never left READY: no GOAWAY
            await quiet_risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=5)
            await streaming_risk.SetTradingState(
                risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_ACTIVE), timeout=5
            )
            message = await events.read()
            assert isinstance(message, risk_pb2.StreamRiskEventsResponse)
            assert message.event.trading_state.state == risk_pb2.TRADING_STATE_ACTIVE
            events.cancel()
    assert GOAWAY_LOG not in capfd.readouterr().err


async def test_a_server_with_grpcs_default_ping_policy_would_cut_the_same_channel(
    config: Config, capfd: pytest.CaptureFixture[str]
) -> None:
    """What the first test guards against, seen: the same client keepalive against a
    server left at gRPC's defaults gets GOAWAY within the strike window."""
    settings = GrpcSettings(
        keepalive_time_seconds=1.0,
        keepalive_timeout_seconds=1.0,
        min_ping_interval_seconds=0.5,
        max_ping_strikes=2,
    )
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with peer_channel(f"127.0.0.1:{port}", settings) as channel:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            log = StateLog(channel)
            await asyncio.wait_for(log.left_ready(), timeout=2 * strike_window(settings))
            log.stop()
    finally:
        await server.stop(None)
    assert GOAWAY_LOG in capfd.readouterr().err


async def test_a_hung_peer_is_found_on_an_idle_channel_and_an_idle_stream(
    tmp_path: Path,
) -> None:
    """Keepalive is kept: a peer that stops answering (SIGSTOP: its socket stays open,
    nothing closes it) is found within twice the keepalive time plus its timeout, also
    after the channel idled past the two pings gRPC sends by default without data."""
    keepalive, timeout = 2.0, 1.0
    async with risk_process(tmp_path, keepalive, timeout) as (config, process):
        address = config.risk.address
        async with (
            peer_channel(address, config.grpc) as quiet,
            peer_channel(address, config.grpc) as streaming,
        ):
            quiet_risk = risk_pb2_grpc.RiskServiceStub(quiet)
            await quiet_risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=5)
            events = await open_event_stream(risk_pb2_grpc.RiskServiceStub(streaming))
            quiet_log = StateLog(quiet)
            await asyncio.sleep(3 * keepalive)
            assert quiet_log.states == []

            process.send_signal(signal.SIGSTOP)

            async def stream_ends() -> grpc.StatusCode:
                with pytest.raises(grpc.aio.AioRpcError) as ended:
                    await events.read()
                return ended.value.code()

            async with asyncio.timeout(2 * keepalive + timeout):
                _, code = await asyncio.gather(quiet_log.left_ready(), stream_ends())
            quiet_log.stop()
            assert code == grpc.StatusCode.UNAVAILABLE
