"""What a service is to the runtime: a name, a proto service, and a lifespan.

Every service module (services/<name>/main.py) declares one `ServiceSpec`; the runtime
(common.server) does the rest the same way for all four.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common.config import Config, ServiceSettings
from common.memory import MemoryGuard
from common.metrics import ServiceMetrics

# What a servicer method receives besides the request.
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Runtime:
    """What a service's lifespan builds its servicer from."""

    name: str
    config: Config
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    memory: MemoryGuard
    # The service's Prometheus registry: a lifespan registers its queue depths and
    # sequences here with one call each (common.metrics).
    metrics: ServiceMetrics = field(default_factory=lambda: ServiceMetrics(""))


@runtime_checkable
class Readiness(Protocol):
    """A servicer that needs time after start before it can do its work (risk syncing
    its books) defines `ready`: health reports NOT_SERVING until it returns, SERVING
    after (common.server). Without it a service is SERVING once it listens."""

    async def ready(self) -> None: ...


@dataclass(frozen=True)
class ServiceSpec:
    # The config section, database file and log name: "exchange".
    name: str
    descriptor: ServiceDescriptor
    # Builds the servicer (and its background tasks) and yields it; cleans up after.
    lifespan: Callable[[Runtime], AbstractAsyncContextManager[Any]]
    # The generated add_<Service>Servicer_to_server.
    add_to_server: Callable[[Any, grpc.aio.Server], None]

    @property
    def full_name(self) -> str:
        return self.descriptor.full_name
