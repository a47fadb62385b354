"""Server reflection answers as grpcurl needs: `list`, then `describe` of every method."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from common.server import RunningService


def _describe(address: str) -> dict[str, list[str]]:
    """What `grpcurl -plaintext ADDRESS list` and `describe SERVICE` would print."""
    with grpc.insecure_channel(address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(database)
        described = {}
        for name in database.get_services():
            service = pool.FindServiceByName(name)
            described[name] = [
                f"{method.name}({method.input_type.full_name}) {method.output_type.full_name}"
                for method in service.methods
            ]
        return described


async def test_reflection_lists_and_describes_every_method(
    services: list[RunningService],
) -> None:
    for service in services:
        described = await asyncio.to_thread(_describe, service.address)
        descriptor = service.spec.descriptor
        assert set(described) == {
            descriptor.full_name,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        assert described[descriptor.full_name] == [
            f"{method.name}({method.input_type.full_name}) {method.output_type.full_name}"
            for method in descriptor.methods
        ]
