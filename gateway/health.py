"""/healthz: the grpc.health.v1 status of every service, in one answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.channels import peer_channel
from common.config import GrpcSettings

SERVING = "SERVING"


class HealthProbe:
    """Keeps one channel per service and asks each for its overall health."""

    def __init__(
        self, addresses: Mapping[str, str], timeout_seconds: float, grpc_settings: GrpcSettings
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._channels = {
            name: peer_channel(address, grpc_settings) for name, address in addresses.items()
        }

    async def check(self) -> dict[str, str]:
        names = list(self._channels)
        statuses = await asyncio.gather(*(self._check_one(name) for name in names))
        return dict(zip(names, statuses, strict=True))

    async def _check_one(self, name: str) -> str:
        stub = health_pb2_grpc.HealthStub(self._channels[name])
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            return f"UNREACHABLE ({error.code().name})"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
