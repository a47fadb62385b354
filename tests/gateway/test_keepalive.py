"""The gateway's channels to the services keep alive as the services permit: a stream
held idle past the servers' ping-strike window is not cut (it was, after minutes, by
GOAWAY too_many_pings), and a unary call after it does not fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from common.config import Config
from common.server import running
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from gateway.testing import bearer, config_with, serve_gateway
from services.risk.main import SPEC as RISK

EVENTS = "/v1/risk/events:stream"


async def ndjson_results(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Each NDJSON line's object (blank keep-alive lines skipped); an error line fails."""
    async for line in lines:
        if not line.strip():
            continue
        document = json.loads(line)
        assert "error" not in document, document
        yield document["result"]


async def test_an_idle_stream_through_the_gateway_outlives_the_ping_strike_window(
    environment: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    config: Config = config_with(
        environment,
        GRPC__KEEPALIVE_TIME_SECONDS="1",
        GRPC__KEEPALIVE_TIMEOUT_SECONDS="1",
        GRPC__MIN_PING_INTERVAL_SECONDS="0.5",
    )
    strike_window = (config.grpc.max_ping_strikes + 1) * config.grpc.keepalive_time_seconds
    async with (
        running(RISK, config) as service,
        grpc.aio.insecure_channel(service.address) as channel,
        serve_gateway(config) as client,
    ):
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        headers = {**bearer("admin"), "accept": "application/x-ndjson"}
        assert (await client.get("/v1/risk/limits", headers=headers)).status_code == 200
        async with client.stream("GET", EVENTS, headers=headers, timeout=60) as response:
            assert response.status_code == 200
            results = ndjson_results(response.aiter_lines())
            # A state change is an event: once one arrives, the stream is surely open.
            first = asyncio.ensure_future(anext(results))
            while not first.done():
                await risk.SetTradingState(
                    risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_REDUCING)
                )
                await asyncio.wait([first], timeout=0.5)
            first.result()

            await asyncio.sleep(2 * strike_window)

            limits = await client.get("/v1/risk/limits", headers=headers)
            assert limits.status_code == 200
            await risk.SetTradingState(
                risk_pb2.SetTradingStateRequest(state=risk_pb2.TRADING_STATE_ACTIVE)
            )
            while True:  # the loop above may have left REDUCING changes queued
                event = (await asyncio.wait_for(anext(results), timeout=10))["event"]
                if event["tradingState"]["state"] == "TRADING_STATE_ACTIVE":
                    break
    assert "too_many_pings" not in capfd.readouterr().err
