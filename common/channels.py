"""Channels from one EdgeQuant process to another, and the ping policy of their servers.

Peers restart (supervisord, memmon, a deploy): a caller must notice within a second or
two, not after gRPC's default reconnect backoff, which grows to two minutes. Every
inter-service client (gateway -> services, exchange -> risk, portfolio -> exchange,
risk -> portfolio and exchange) opens its channel here.

Channels live for days and carry server streams that stay idle for hours. A client's
keepalive pings find a dead or hung peer; a server punishes pings more frequent than it
permits with GOAWAY `too_many_pings`, which fails every call in flight on the connection.
Both sides therefore come from one table, `[grpc]` (common.config.GrpcSettings):
`keepalive_options` for the clients here, `ping_policy_options` for every server
(common.server).
"""

from __future__ import annotations

import grpc

from common.config import GrpcSettings
from common.memory import MIB

ChannelOptions = list[tuple[str, int]]

CHANNEL_OPTIONS: ChannelOptions = [
    # Each channel keeps its own subchannels, so one client's backoff toward a peer that
    # is down never delays another client of the same address in this process.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", 64 * MIB),
    ("grpc.max_send_message_length", 64 * MIB),
]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def keepalive_options(settings: GrpcSettings) -> ChannelOptions:
    """A client's keepalive: ping an idle connection, calls or not, and drop it when the
    peer does not answer in time."""
    return [
        ("grpc.keepalive_time_ms", _ms(settings.keepalive_time_seconds)),
        ("grpc.keepalive_timeout_ms", _ms(settings.keepalive_timeout_seconds)),
        # gRPC 1.85 times a keepalive ping out by the ping timeout (default 1 minute), not
        # by keepalive_timeout_ms: both say the same here.
        ("grpc.http2.ping_timeout_ms", _ms(settings.keepalive_timeout_seconds)),
        ("grpc.keepalive_permit_without_calls", 1),
        # By default a client sends at most 2 pings until it sends data again: an idle
        # channel would stop pinging, and a peer that died later would go unnoticed.
        ("grpc.http2.max_pings_without_data", 0),
    ]


def ping_policy_options(settings: GrpcSettings) -> ChannelOptions:
    """A server's side of the same agreement: the clients' keepalive is permitted.

    gRPC's defaults permit one ping per 5 minutes with streams open and one per 2 hours
    without any (`keepalive_permit_without_calls` 0), forgive 2 more, then send GOAWAY."""
    return [
        ("grpc.keepalive_permit_without_calls", 1),
        # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS is spelled this way (gRPC
        # ignores an unknown name without a word, and the 5-minute default stays).
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(settings.min_ping_interval_seconds)),
        ("grpc.http2.max_ping_strikes", settings.max_ping_strikes),
    ]


def peer_channel(address: str, settings: GrpcSettings) -> grpc.aio.Channel:
    """An insecure (loopback or Unix socket) channel that reconnects within a second and
    keeps alive as `[grpc]` says."""
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS + keepalive_options(settings))
