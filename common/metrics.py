"""Prometheus metrics, exported the same way by every service.

Each service serves its own registry as Prometheus text on `metrics_address` (its
`[<service>]` table; loopback only, like the gRPC port; empty turns it off): GET
/metrics. The defaults sit ten above the gRPC ports (127.0.0.1:50061 exchange ... 50064
backtest); the gateway's /metrics is the gateway's own.

What every service exports, with no code of its own:
- `edgequant_rpcs_total{service, method, code}` and
  `edgequant_rpc_duration_seconds{service, method}`: every RPC, counted by the server
  interceptor when it ends (a stream when it closes), by its gRPC status code;
- `edgequant_stream_subscribers{service, stream}` and
  `edgequant_stream_cuts_total{service, stream}`: every `common.fanout.Fanout` of the
  process (subscribers now, subscribers cut for falling behind).

What a service adds with one call in its lifespan (`runtime.metrics`):
- `queue_depth(name, read)`: `edgequant_queue_depth{service, queue}`;
- `stream_sequence(stream, role, read)`: `edgequant_stream_sequence{service, stream, role}`,
  the last sequence a producer published (role "published") or a consumer applied
  ("applied"). The exchange publishes executions and the portfolio applies them: the
  portfolio's ingestion lag is the difference, in PromQL
  `max(edgequant_stream_sequence{role="published"})`
  `- max(edgequant_stream_sequence{role="applied"})`.
  A consumer that knows the head itself also sets `lag(name, read)`:
  `edgequant_ingestion_lag{service, stream}`.

Readers are called at scrape time, never on a hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from common import fanout
from common.errors import StartupError

log = logging.getLogger("edgequant.metrics")

# RPC latency: a risk check is ~1 ms, a VaR or a page of fills tens, an import seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
Reader = Callable[[], float]


class ServiceMetrics:
    """One service's registry: the RPC metrics the interceptor records, the process's
    fan-outs, and the gauges its lifespan registers."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.rpcs = Counter(
            "edgequant_rpcs",
            "RPCs answered, by method and gRPC status code.",
            ("service", "method", "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgequant_rpc_duration_seconds",
            "Time from the call to its status (to the end of the stream, for streams).",
            ("service", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._gauges = _Gauges(service)
        self.registry.register(self._gauges)

    def rpc(self, method: str, code: str, seconds: float) -> None:
        self.rpcs.labels(self.service, method, code).inc()
        self.latency.labels(self.service, method).observe(seconds)

    def queue_depth(self, queue: str, read: Reader) -> None:
        """Items waiting in `queue` (an outbox, a write batch, the job queue)."""
        self._gauges.add("edgequant_queue_depth", "Items waiting, by queue.", "queue", queue, read)

    def stream_sequence(self, stream: str, role: str, read: Reader) -> None:
        """The last sequence of `stream` this service published or applied (`role`)."""
        self._gauges.add(
            "edgequant_stream_sequence",
            "Last sequence published (producer) or applied (consumer), by stream.",
            "stream",
            stream,
            read,
            role=role,
        )

    def lag(self, stream: str, read: Reader) -> None:
        """Items of `stream` published and not applied yet, where the consumer knows."""
        self._gauges.add(
            "edgequant_ingestion_lag",
            "Items published and not yet applied, by stream.",
            "stream",
            stream,
            read,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Gauges(Collector):
    """Gauges read at scrape time: the registered readers, and every live Fanout."""

    def __init__(self, service: str) -> None:
        self.service = service
        # name -> (help, [(labels, reader)])
        self._readers: dict[str, tuple[str, list[tuple[dict[str, str], Reader]]]] = {}

    def add(
        self, name: str, documentation: str, label: str, value: str, read: Reader, **extra: str
    ) -> None:
        entry = self._readers.setdefault(name, (documentation, []))
        entry[1].append(({label: value, **extra}, read))

    def collect(self) -> Iterator[Metric]:
        yield from self._fanouts()
        for name, (documentation, readers) in self._readers.items():
            names = ["service", *readers[0][0]]
            family = GaugeMetricFamily(name, documentation, labels=names)
            for labels, read in readers:
                try:
                    value = float(read())
                except Exception:  # a broken reader must not break the scrape
                    log.exception("metrics reader failed", extra={"metric": name})
                    continue
                family.add_metric([self.service, *labels.values()], value)
            yield family

    def _fanouts(self) -> Iterator[Metric]:
        subscribers = GaugeMetricFamily(
            "edgequant_stream_subscribers",
            "Stream subscribers now, by stream (common.fanout).",
            labels=["service", "stream"],
        )
        cuts = CounterMetricFamily(
            "edgequant_stream_cuts",
            "Subscribers cut for falling behind (STREAM_OVERFLOW), by stream.",
            labels=["service", "stream"],
        )
        totals: dict[str, tuple[int, int]] = {}
        for live in fanout.live_fanouts():
            count, cut = totals.get(live.what, (0, 0))
            totals[live.what] = (count + live.subscriber_count, cut + live.cuts)
        for stream, (count, cut) in sorted(totals.items()):
            subscribers.add_metric([self.service, stream], count)
            cuts.add_metric([self.service, stream], cut)
        yield subscribers
        yield cuts


@asynccontextmanager
async def serving_metrics(metrics: ServiceMetrics, address: str) -> AsyncIterator[str]:
    """Serves GET /metrics at `address` (host:port; port 0 picks one) until the block
    exits; yields the bound host:port, or "" when `address` is empty (off)."""
    if not address:
        yield ""
        return
    host, _, port = address.rpartition(":")
    try:
        server = await asyncio.start_server(
            lambda reader, writer: _answer(metrics, reader, writer), host.strip("[]"), int(port)
        )
    except OSError as error:
        raise StartupError(
            f"{metrics.service}: cannot serve metrics on {address}: the address is in use"
            f" or invalid ({error.strerror or error})"
        ) from None
    bound = server.sockets[0].getsockname()[1]
    try:
        yield f"{host}:{bound}"
    finally:
        server.close()
        await server.wait_closed()


async def _answer(
    metrics: ServiceMetrics, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """One request, one response, then close: a scrape a few times a minute needs no more."""
    try:
        request_line = await asyncio.wait_for(reader.readline(), 5)
        while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
            pass  # headers: nothing in them changes the answer
        method, path = [*request_line.decode("latin-1").split(), "", ""][:2]
        if method == "GET" and path.split("?")[0] == "/metrics":
            status, content_type, body = "200 OK", CONTENT_TYPE_LATEST, metrics.exposition()
        else:
            status, content_type, body = "404 Not Found", "text/plain", b"GET /metrics\n"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
            + body
        )
        await writer.drain()
    except (TimeoutError, ConnectionError, UnicodeDecodeError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
