"""Section `postgres`: the order round trip with every service on PostgreSQL, beside the
same stack on SQLite files in the same run.

Both stacks run as `make run` runs them (supervisord, free ports, a temp dir); the
PostgreSQL server is Debian's (`postgresql`, installed by .ci/run), started in a temp
dir with its default durability (fsync on), so the ratio says what moving a service to
PostgreSQL costs each order.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import grpc

from bench.report import Row, percentile
from bench.section import SectionFailed, ample_account, prepare_flat_account, sized, timed
from bench.stack import INVENTORY, QUANTITY, READY_WITHIN, order_request
from common.testing import (
    PostgresServer,
    isolated_config,
    postgres_bin_dir,
    postgres_unavailable_reason,
    running_stack,
)
from edgequant.exchange.v1 import exchange_pb2_grpc

SECTION = "postgres"
ROUND_TRIPS = sized(300, 20)
# The default order-rate limits (10/s, 300/min) protect a live account, not a bench.
UNLIMITED_ORDERS = {
    "RISK__LIMITS__MAX_ORDERS_PER_SECOND": "0",
    "RISK__LIMITS__MAX_ORDERS_PER_MINUTE": "0",
}


async def _round_trips(environment: dict[str, str]) -> list[float]:
    """Sequential market orders straight to the exchange's gRPC, in milliseconds."""
    async with running_stack(environment, within=READY_WITHIN) as stack:
        await prepare_flat_account(stack.config, QUANTITY, INVENTORY, 1, READY_WITHIN)
        async with grpc.aio.insecure_channel(stack.config.exchange.address) as channel:
            stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
            return await timed(lambda: stub.SubmitOrder(order_request()), ROUND_TRIPS)


async def run() -> list[Row]:
    unavailable = postgres_unavailable_reason()
    bin_dir = postgres_bin_dir()
    if unavailable or bin_dir is None:
        raise SectionFailed(unavailable or "PostgreSQL's server programs are not installed")
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-postgres-") as directory:
        root = Path(directory)
        overrides = {**ample_account(), **UNLIMITED_ORDERS}
        sqlite = await _round_trips(isolated_config(root / "sqlite", **overrides))
        server = PostgresServer(bin_dir, durable=True)
        server.start()
        try:
            postgres = await _round_trips(
                isolated_config(root / "postgres", **overrides, **server.stack_overrides())
            )
        finally:
            server.stop()
    return [
        Row(SECTION, f"order round trip via gRPC p{q}, every service on PostgreSQL", "ms",
            percentile(postgres, q), percentile(sqlite, q), "the same stack on SQLite")
        for q in (50, 99)
    ]  # fmt: skip
