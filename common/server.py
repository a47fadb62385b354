"""The one way a service starts and stops.

config -> database and migrations -> servicer (the service's lifespan) -> grpc.aio
server with grpc.health.v1, server reflection and the interceptor -> SERVING. A
servicer with an `async def ready()` (common.service.Readiness) is NOT_SERVING while it
answers already, until `ready()` returns: a client waiting for SERVING (the stack's
ready line) then finds it able to do its work, not only listening.
On SIGTERM or SIGINT: NOT_SERVING, end the subscriptions (server streams never finish by
themselves: their clients get UNAVAILABLE and reconnect), stop accepting, give in-flight
unary RPCs `grace_seconds`, close the lifespan and the database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.channels import ChannelOptions, ping_policy_options
from common.config import Config, GrpcSettings, ServiceSettings, load_config, unload_toml_parser
from common.database import create_engine, session_factory, upgrade_in_child
from common.errors import StartupError
from common.interceptors import ServiceInterceptor
from common.logs import configure_logging
from common.memory import MIB, MemoryGuard
from common.metrics import ServiceMetrics, serving_metrics
from common.service import Readiness, Runtime, ServiceSpec

log = logging.getLogger("edgequant.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class RunningService:
    spec: ServiceSpec
    # The bound address: with port 0 configured, the port the OS chose.
    address: str
    runtime: Runtime
    # Where GET /metrics answers (host:port), "" when off.
    metrics_address: str = ""


def server_options(settings: ServiceSettings, grpc_settings: GrpcSettings) -> ChannelOptions:
    max_bytes = settings.max_message_mib * MIB
    return [
        # A second copy on a taken port must fail, not share the port.
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
        # Our clients' keepalive (common.channels) is permitted: no GOAWAY too_many_pings.
        *ping_policy_options(grpc_settings),
    ]


@asynccontextmanager
async def running(spec: ServiceSpec, config: Config) -> AsyncIterator[RunningService]:
    """Serves `spec` until the block exits, then shuts down gracefully."""
    settings = config.service(spec.name)
    database_url = config.database_url(spec.name)
    await upgrade_in_child(spec.name, database_url)
    engine = create_engine(database_url)
    runtime = Runtime(
        name=spec.name,
        config=config,
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        memory=MemoryGuard(settings.memory_budget_mib, settings.soft_limit_ratio),
        metrics=ServiceMetrics(spec.name),
    )
    try:
        async with spec.lifespan(runtime) as servicer, AsyncExitStack() as exits:
            interceptor = ServiceInterceptor(runtime.metrics)
            server = grpc.aio.server(
                interceptors=[interceptor],
                options=server_options(settings, config.grpc),
                maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
            )
            spec.add_to_server(servicer, server)
            health_servicer = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            reflection.enable_server_reflection(
                [spec.full_name, health.SERVICE_NAME, reflection.SERVICE_NAME], server
            )
            address = _bind(server, spec.name, settings.address)
            # After the gRPC port: a second copy fails on that, with its one clear line.
            metrics_address = await exits.enter_async_context(
                serving_metrics(runtime.metrics, settings.metrics_address)
            )
            names = ("", spec.full_name)
            # Before the start: grpc's health servicer says SERVING for "" by default.
            status = NOT_SERVING if isinstance(servicer, Readiness) else SERVING
            for name in names:
                await health_servicer.set(name, status)
            await server.start()
            readiness = asyncio.create_task(
                _serving_when_ready(servicer, health_servicer, spec), name=f"{spec.name}-ready"
            )
            try:
                yield RunningService(
                    spec=spec, address=address, runtime=runtime, metrics_address=metrics_address
                )
            finally:
                readiness.cancel()
                await asyncio.gather(readiness, return_exceptions=True)
                await health_servicer.enter_graceful_shutdown()
                # Subscriptions never finish: end them now; unary calls get the grace.
                interceptor.streams.end()
                await server.stop(settings.grace_seconds)
    finally:
        await engine.dispose()


async def _serving_when_ready(
    servicer: object, health_servicer: health.aio.HealthServicer, spec: ServiceSpec
) -> None:
    if not isinstance(servicer, Readiness):
        return
    await servicer.ready()
    log.info("ready", extra={"grpc_service": spec.full_name})
    for name in ("", spec.full_name):
        await health_servicer.set(name, SERVING)


def _bind(server: grpc.aio.Server, name: str, address: str) -> str:
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise StartupError(f"{name}: cannot listen on {address}: the address is in use or invalid")
    if address.startswith("unix:"):
        return address
    host = address.rpartition(":")[0]
    return f"{host}:{port}"


async def serve(spec: ServiceSpec, config: Config) -> None:
    """Serves until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(spec, config) as service:
        log.info("serving", extra={"address": service.address, "grpc_service": spec.full_name})
        await stop.wait()
        log.info("stopping", extra={"grace_seconds": service.runtime.settings.grace_seconds})
    log.info("stopped")


def run(spec: ServiceSpec) -> None:
    """Entry point of a service process; a failed start exits 1 with one line on stderr."""
    try:
        config = load_config()
        unload_toml_parser()
        configure_logging(spec.name, config.log_level)
        asyncio.run(serve(spec, config))
    except StartupError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
