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
import math
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from common import fanout
from common.errors import StartupError

log = logging.getLogger("edgequant.metrics")

# RPC latency: a risk check is ~1 ms, a VaR or a page of fills tens, an import seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
# The Prometheus text exposition format this module writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Reader = Callable[[], float]
Labels = dict[str, str]
Sample = tuple[str, Labels, float]  # name suffix, labels, value


class Histogram:
    """One label set's histogram: a count per bucket (not cumulative), the sum. `buckets`
    are the upper bounds, ascending; +Inf is added."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are upper bounds, inclusive: bisect_left finds the first >=.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def samples(self, labels: Labels) -> Iterable[Sample]:
        cumulative = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            yield "_bucket", {**labels, "le": _number(bound)}, cumulative
        yield "_count", labels, cumulative
        yield "_sum", labels, self.total


class ServiceMetrics:
    """One service's metrics: the RPCs the interceptor records, the process's fan-outs,
    and the gauges its lifespan registers, written as Prometheus text at each scrape.

    Plain dicts rather than prometheus_client: its import (with urllib, http, email,
    wsgiref ...) costs every service ~1.6 MiB, and `rpc()` runs on every call."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._rpcs: dict[tuple[str, str], int] = {}  # (method, code) -> RPCs
        self._latency: dict[str, Histogram] = {}  # method -> its latency
        # gauge name -> (help, [(labels, reader)])
        self._gauges: dict[str, tuple[str, list[tuple[Labels, Reader]]]] = {}

    def rpc(self, method: str, code: str, seconds: float) -> None:
        key = (method, code)
        self._rpcs[key] = self._rpcs.get(key, 0) + 1
        latency = self._latency.get(method)
        if latency is None:
            latency = self._latency[method] = Histogram()
        latency.observe(seconds)

    def queue_depth(self, queue: str, read: Reader) -> None:
        """Items waiting in `queue` (an outbox, a write batch, the job queue)."""
        self._gauge("edgequant_queue_depth", "Items waiting, by queue.", {"queue": queue}, read)

    def stream_sequence(self, stream: str, role: str, read: Reader) -> None:
        """The last sequence of `stream` this service published or applied (`role`)."""
        self._gauge(
            "edgequant_stream_sequence",
            "Last sequence published (producer) or applied (consumer), by stream.",
            {"stream": stream, "role": role},
            read,
        )

    def lag(self, stream: str, read: Reader) -> None:
        """Items of `stream` published and not applied yet, where the consumer knows."""
        self._gauge(
            "edgequant_ingestion_lag",
            "Items published and not yet applied, by stream.",
            {"stream": stream},
            read,
        )

    def _gauge(self, name: str, documentation: str, labels: Labels, read: Reader) -> None:
        self._gauges.setdefault(name, (documentation, []))[1].append((labels, read))

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format 0.0.4 (CONTENT_TYPE)."""
        lines: list[str] = []
        service = {"service": self.service}
        lines += family(
            "edgequant_rpcs_total",
            "counter",
            "RPCs answered, by method and gRPC status code.",
            (
                ("", {**service, "method": method, "code": code}, count)
                for (method, code), count in sorted(self._rpcs.items())
            ),
        )
        lines += family(
            "edgequant_rpc_duration_seconds",
            "histogram",
            "Time from the call to its status (to the end of the stream, for streams).",
            (
                sample
                for method, latency in sorted(self._latency.items())
                for sample in latency.samples({**service, "method": method})
            ),
        )
        lines += self._fanouts(service)
        for name, (documentation, readers) in self._gauges.items():
            lines += family(name, "gauge", documentation, self._read(name, service, readers))
        return "".join(lines).encode()

    @staticmethod
    def _fanouts(service: Labels) -> list[str]:
        totals: dict[str, tuple[int, int]] = {}
        for live in fanout.live_fanouts():
            count, cut = totals.get(live.what, (0, 0))
            totals[live.what] = (count + live.subscriber_count, cut + live.cuts)
        streams = sorted(totals.items())
        return [
            *family(
                "edgequant_stream_subscribers",
                "gauge",
                "Stream subscribers now, by stream (common.fanout).",
                (("", {**service, "stream": stream}, count) for stream, (count, _) in streams),
            ),
            *family(
                "edgequant_stream_cuts_total",
                "counter",
                "Subscribers cut for falling behind (STREAM_OVERFLOW), by stream.",
                (("", {**service, "stream": stream}, cut) for stream, (_, cut) in streams),
            ),
        ]

    @staticmethod
    def _read(name: str, service: Labels, readers: list[tuple[Labels, Reader]]) -> Iterable[Sample]:
        for labels, read in readers:
            try:
                value = float(read())
            except Exception:  # a broken reader must not break the scrape
                log.exception("metrics reader failed", extra={"metric": name})
                continue
            yield "", {**service, **labels}, value


def family(name: str, kind: str, documentation: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: its HELP and TYPE lines, then a line per sample. (In this format
    a counter's family is named as its samples are, with _total.)"""
    escaped_help = documentation.replace("\\", r"\\").replace("\n", r"\n")
    lines = [f"# HELP {name} {escaped_help}\n", f"# TYPE {name} {kind}\n"]
    for suffix, labels, value in samples:
        # Label names sorted, none in braces at all: as prometheus_client writes them.
        pairs = ",".join(f'{key}="{_escape(labels[key])}"' for key in sorted(labels))
        selector = f"{{{pairs}}}" if pairs else ""
        lines.append(f"{name}{suffix}{selector} {_number(value)}\n")
    return lines


def _escape(label_value: str) -> str:
    return label_value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    """A sample value or a bucket bound as Prometheus (Go's ParseFloat) reads it."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


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
            status, content_type, body = "200 OK", CONTENT_TYPE, metrics.exposition()
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
