"""Generic gRPC calls to the services, built from the descriptors.

One grpc.aio channel per service; one multicallable per RPC, made at start from the
method's path and its message classes, so no generated stub is involved. Calls never
wait for a channel to become ready: a service that is down answers UNAVAILABLE at
once (-> 503), and every call carries a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import grpc

from common.channels import peer_channel
from common.config import GrpcSettings
from gateway.bindings import Rpc

Metadata = tuple[tuple[str, str], ...]


class Upstream:
    def __init__(
        self, addresses: Mapping[str, str], rpcs: Iterable[Rpc], grpc_settings: GrpcSettings
    ) -> None:
        # Streams through these may idle for hours: keepalive as every service permits.
        self._channels = {
            name: peer_channel(address, grpc_settings) for name, address in addresses.items()
        }
        self._unary: dict[str, Any] = {}
        self._streams: dict[str, Any] = {}
        for rpc in rpcs:
            channel = self._channels[rpc.service]
            serializer = rpc.request_class.SerializeToString
            deserializer = rpc.response_class.FromString
            if rpc.server_streaming:
                self._streams[rpc.full_name] = channel.unary_stream(
                    rpc.path, request_serializer=serializer, response_deserializer=deserializer
                )
            else:
                self._unary[rpc.full_name] = channel.unary_unary(
                    rpc.path, request_serializer=serializer, response_deserializer=deserializer
                )

    def unary(
        self, rpc: Rpc, request: Any, metadata: Metadata, timeout: float | None
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        call: grpc.aio.UnaryUnaryCall[Any, Any] = self._unary[rpc.full_name](
            request, metadata=metadata, timeout=timeout
        )
        return call

    def stream(
        self, rpc: Rpc, request: Any, metadata: Metadata, timeout: float | None
    ) -> grpc.aio.UnaryStreamCall[Any, Any]:
        call: grpc.aio.UnaryStreamCall[Any, Any] = self._streams[rpc.full_name](
            request, metadata=metadata, timeout=timeout
        )
        return call

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels.values()))
