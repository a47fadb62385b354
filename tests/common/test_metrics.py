"""Every service exports Prometheus text at its metrics_address: RPCs by method and code
with latency, stream subscribers, and the gauges its lifespan registers.

common.metrics writes the text format itself; prometheus_client is the oracle here: its
parser reads every scrape, and its own Counter and Histogram, fed the same RPCs, must
export the same samples."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from common.config import Config, ConfigError, load_config
from common.fanout import Fanout
from common.metrics import LATENCY_BUCKETS, ServiceMetrics, serving_metrics
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


def families(text: str) -> dict[str, str]:
    """Each metric family's type, by name."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


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
    assert families(response.text) == {
        "edgequant_rpcs": "counter",
        "edgequant_rpc_duration_seconds": "histogram",
        "edgequant_stream_subscribers": "gauge",
        "edgequant_stream_cuts": "counter",
    }
    buckets = samples(response.text, "edgequant_rpc_duration_seconds_bucket")
    list_strategies = [
        count for labels, count in buckets.items() if ("method", LIST_STRATEGIES) in labels
    ]
    assert len(list_strategies) == len(LATENCY_BUCKETS) + 1
    assert buckets[(("le", "+Inf"), ("method", LIST_STRATEGIES), service_label)] == 2
    total = samples(response.text, "edgequant_rpc_duration_seconds_sum")
    assert total[(("method", LIST_STRATEGIES), service_label)] > 0


def test_rpcs_export_what_prometheus_client_exports_for_the_same_calls() -> None:
    metrics = ServiceMetrics("risk")
    registry = CollectorRegistry()
    rpcs = Counter("edgequant_rpcs", "", ("service", "method", "code"), registry=registry)
    latency = Histogram(
        "edgequant_rpc_duration_seconds",
        "",
        ("service", "method"),
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    # On a bucket's bound (inclusive), between bounds, zero, and above the last (+Inf).
    calls = [
        ("/edgequant.risk.v1.RiskService/CheckOrder", "OK", 0.001),
        ("/edgequant.risk.v1.RiskService/CheckOrder", "OK", 0.0007),
        ("/edgequant.risk.v1.RiskService/CheckOrder", "FAILED_PRECONDITION", 0.0),
        ("/edgequant.risk.v1.RiskService/GetVaR", "OK", 1),
        ("/edgequant.risk.v1.RiskService/GetVaR", "OK", 3.75),
        ("/edgequant.risk.v1.RiskService/GetVaR", "INTERNAL", 12.5),
    ]
    for method, code, seconds in calls:
        metrics.rpc(method, code, seconds)
        rpcs.labels("risk", method, code).inc()
        latency.labels("risk", method).observe(seconds)

    def rpc_samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (sample.name, tuple(sorted(sample.labels.items())), sample.value)
            for family in text_string_to_metric_families(text)
            if family.name.startswith("edgequant_rpc")
            for sample in family.samples
            if not sample.name.endswith("_created")
        }

    ours = rpc_samples(metrics.exposition().decode())
    assert ours == rpc_samples(generate_latest(registry).decode())
    assert len(ours) == 4 + 2 * (len(LATENCY_BUCKETS) + 1 + 2)


def test_label_values_are_escaped_and_a_broken_reader_is_left_out() -> None:
    metrics = ServiceMetrics("exchange")
    awkward = 'a "quoted" \\ backslash, a \\n that is not a newline\nand one that is'
    metrics.queue_depth(awkward, lambda: 7)
    metrics.queue_depth("broken", lambda: 1 / 0)
    metrics.lag("executions", lambda: 2)

    text = metrics.exposition().decode()

    assert families(text)["edgequant_queue_depth"] == "gauge"
    assert samples(text, "edgequant_queue_depth") == {
        (("queue", awkward), ("service", "exchange")): 7
    }
    assert samples(text, "edgequant_ingestion_lag") == {
        (("service", "exchange"), ("stream", "executions")): 2
    }


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
