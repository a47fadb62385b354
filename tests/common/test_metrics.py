"""Every service exports Prometheus text at its metrics_address: RPCs by method and code
with latency, stream subscribers, and the gauges its lifespan registers."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.config import Config, ConfigError, load_config
from common.fanout import Fanout
from common.metrics import ServiceMetrics, serving_metrics
from common.server import running
from common.testing import isolated_config
from edgequant.backtest.v1 import backtest_pb2, backtest_pb2_grpc
from services.backtest.main import SPEC as BACKTEST

LIST_STRATEGIES = "/edgequant.backtest.v1.BacktestService/ListStrategies"
GET_JOB = "/edgequant.backtest.v1.BacktestService/GetJob"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called `name`, by their labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(address: str, path: str = "/metrics") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://{address}{path}", timeout=5)


async def test_a_services_metrics_count_its_rpcs_by_method_and_code(config: Config) -> None:
    async with running(BACKTEST, config) as service:
        assert service.metrics_address
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = backtest_pb2_grpc.BacktestServiceStub(channel)
            await stub.ListStrategies(backtest_pb2.ListStrategiesRequest())
            await stub.ListStrategies(backtest_pb2.ListStrategiesRequest())
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.GetJob(backtest_pb2.GetJobRequest(job_id="no-such-job"))
        response = await scrape(service.metrics_address)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = samples(response.text, "edgequant_rpcs_total")
    service_label = ("service", "backtest")
    assert counts[(("code", "OK"), ("method", LIST_STRATEGIES), service_label)] == 2
    code = failed.value.code().name
    assert counts[(("code", code), ("method", GET_JOB), service_label)] == 1
    latency = samples(response.text, "edgequant_rpc_duration_seconds_count")
    assert latency[(("method", LIST_STRATEGIES), service_label)] == 2


async def test_only_get_metrics_is_answered(config: Config) -> None:
    async with running(BACKTEST, config) as service:
        response = await scrape(service.metrics_address, "/other")
    assert response.status_code == 404


async def test_stream_subscribers_and_registered_gauges_are_read_at_each_scrape() -> None:
    metrics = ServiceMetrics("portfolio")
    positions: Fanout[int] = Fanout("positions", "re-read ListPositions")
    outbox = [1, 2, 3]
    applied = {"sequence": 41}
    metrics.queue_depth("outbox", lambda: len(outbox))
    metrics.stream_sequence("executions", "applied", lambda: applied["sequence"])
    async with (
        serving_metrics(metrics, "127.0.0.1:0") as address,
        positions.subscribed(),
        positions.subscribed(),
    ):
        before = (await scrape(address)).text
        outbox.pop()
        applied["sequence"] = 42
        after = (await scrape(address)).text
    stream = (("service", "portfolio"), ("stream", "positions"))
    assert samples(before, "edgequant_stream_subscribers")[stream] == 2
    assert samples(before, "edgequant_stream_cuts_total")[stream] == 0
    assert samples(before, "edgequant_queue_depth") == {
        (("queue", "outbox"), ("service", "portfolio")): 3
    }
    assert samples(after, "edgequant_queue_depth") == {
        (("queue", "outbox"), ("service", "portfolio")): 2
    }
    key = (("role", "applied"), ("service", "portfolio"), ("stream", "executions"))
    assert samples(after, "edgequant_stream_sequence") == {key: 42}


def test_metrics_bind_loopback_only(tmp_path: Path) -> None:
    environment = isolated_config(tmp_path, RISK__METRICS_ADDRESS="0.0.0.0:9100")
    with pytest.raises(ConfigError) as raised:
        load_config(environment)
    assert raised.value.key == "risk.metrics_address"


def test_the_default_metrics_ports_sit_ten_above_the_grpc_ports() -> None:
    config = load_config({})
    for name in ("exchange", "portfolio", "risk", "backtest"):
        host, _, port = config.service(name).address.rpartition(":")
        assert config.service(name).metrics_address == f"{host}:{int(port) + 10}"
