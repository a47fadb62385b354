"""Channels from one EdgeQuant process to another.

Peers restart (supervisord, memmon, a deploy): a caller must notice within a second or
two, not after gRPC's default reconnect backoff, which grows to two minutes. Every
inter-service client (gateway -> services, exchange -> risk, portfolio -> exchange,
risk -> portfolio and exchange) opens its channel here.
"""

from __future__ import annotations

import grpc

from common.memory import MIB

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # Each channel keeps its own subchannels, so one client's backoff toward a peer that
    # is down never delays another client of the same address in this process.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * MIB),
    ("grpc.max_send_message_length", 64 * MIB),
    # Notice a dead peer on an idle stream (executions, tickers) within ~20 s.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def peer_channel(address: str) -> grpc.aio.Channel:
    """An insecure (loopback or Unix socket) channel that reconnects within a second."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
