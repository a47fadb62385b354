"""What a running stack exposes: only loopback sockets, and never an exchange API key.

One stack as `make run` starts it (real processes under supervisord, real SQLite), with
a ccxt venue against the fake Binance on 127.0.0.1 and recognisable fake keys. The
venue is exercised over gRPC and through the gateway (market data, balances, orders,
a cancel, a venue failure); then every response seen, every log file and every file
under var/ (SQLite databases with their -wal and -shm files included) is searched
byte for byte for the key and the secret.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio

from common.config import SERVICE_NAMES
from common.testing import Stack, isolated_config, running_stack
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.testing import bearer, token_entries
from tests.services.exchange.fake_binance import FakeBinance, serving_fake_binance

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Long and unique: found only if the key itself leaked, never by coincidence.
API_KEY = "EQFAKEKEY7f3a9c1e5b2d8046aa91c3e7d5b0f2e4c6a8d1b3f5e7a9c0d2e4f6a8b"
API_SECRET = "EQFAKESECRETd41d8cd98f00b204e9800998ecf8427e9c1ab2d3e4f5a6b7c8d9e0"  # noqa: S105 - a fake, searched for
VENUE = "binance"
TCP_LISTEN = "0A"


@dataclass
class Seen:
    """Everything the clients were answered, as text."""

    responses: list[str] = field(default_factory=list)

    def add(self, text: object) -> None:
        self.responses.append(str(text))


@dataclass(frozen=True)
class Exposed:
    stack: Stack
    fake: FakeBinance
    seen: Seen


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exposed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exposed]:
    async with serving_fake_binance() as fake:
        venue = f"EXCHANGE__VENUES__{VENUE.upper()}__"
        environment = isolated_config(
            tmp_path_factory.mktemp("stack"),
            LOG_LEVEL="DEBUG",  # the most a log ever says
            # DESIGN.md's budget with ccxt loaded; the default (paper) 96 has memmon
            # restart the exchange as soon as ccxt is imported.
            EXCHANGE__MEMORY_BUDGET_MIB="160",
            GATEWAY__AUTH__TOKENS=token_entries(),
            **{
                f"{venue}EXCHANGE_ID": "binance",
                f"{venue}SANDBOX": "false",
                f"{venue}API_URL": fake.url,
                f"{venue}API_KEY_ENV": "EQ_SECURITY_BINANCE_KEY",
                f"{venue}SECRET_ENV": "EQ_SECURITY_BINANCE_SECRET",
                f"{venue}TIMEOUT_MS": "2000",
                f"{venue}READ_RETRIES": "0",
            },
        )
        environment |= {
            "EQ_SECURITY_BINANCE_KEY": API_KEY,
            "EQ_SECURITY_BINANCE_SECRET": API_SECRET,
        }
        async with running_stack(environment) as stack:
            seen = Seen()
            await _exercise_over_grpc(stack, fake, seen)
            await _exercise_through_the_gateway(stack, seen)
            yield Exposed(stack, fake, seen)


async def _exercise_over_grpc(stack: Stack, fake: FakeBinance, seen: Seen) -> None:
    async with grpc.aio.insecure_channel(stack.config.exchange.address) as channel:
        exchange = exchange_pb2_grpc.ExchangeServiceStub(channel)
        calls = [
            exchange.ListVenues(exchange_pb2.ListVenuesRequest()),
            exchange.ListMarkets(exchange_pb2.ListMarketsRequest(venue=VENUE)),
            exchange.GetTicker(exchange_pb2.GetTickerRequest(venue=VENUE, symbol="BTC/USDT")),
            exchange.GetOrderBook(exchange_pb2.GetOrderBookRequest(venue=VENUE, symbol="BTC/USDT")),
            exchange.GetBalances(exchange_pb2.GetBalancesRequest(venue=VENUE)),
            exchange.ListOrders(exchange_pb2.ListOrdersRequest(venue=VENUE)),
        ]
        for call in calls:
            await _record(call, seen)
        # Risk checks the paper account only, so it denies this order (fail closed): the
        # denial, stored with the order, is searched too.
        await _record(exchange.SubmitOrder(_limit_order("sec-1")), seen)
        await _record(
            exchange.GetOrder(exchange_pb2.GetOrderRequest(venue=VENUE, client_order_id="sec-1")),
            seen,
        )
        # Failures of signed calls: ccxt's errors carry the request, which must not leak.
        for fault in ("500", "garbage", "503"):
            fake.fail("GET /api/v3/account", fault)
            await _record(exchange.GetBalances(exchange_pb2.GetBalancesRequest(venue=VENUE)), seen)


def _limit_order(client_order_id: str) -> exchange_pb2.SubmitOrderRequest:
    return exchange_pb2.SubmitOrderRequest(
        venue=VENUE,
        symbol="BTC/USDT",
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity="0.001",
        price="60000",
        client_order_id=client_order_id,
    )


async def _record(call: object, seen: Seen) -> None:
    try:
        seen.add(await call)  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        seen.add(error.details())
        seen.add(error.trailing_metadata())


async def _exercise_through_the_gateway(stack: Stack, seen: Seen) -> None:
    paths = [
        "/v1/venues",
        f"/v1/venues/{VENUE}/markets",
        f"/v1/venues/{VENUE}/tickers/BTC/USDT",
        f"/v1/venues/{VENUE}/balances",
        "/v1/orders?venue=binance",
    ]
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=bearer("admin")) as client:
        for path in paths:
            response = await client.get(path)
            seen.add(response.headers)
            seen.add(response.text)
        order = {"venue": VENUE, "symbol": "BTC/USDT", "side": "SIDE_BUY",
                 "type": "ORDER_TYPE_LIMIT", "quantity": "0.001", "price": "60000",
                 "clientOrderId": "sec-3"}  # fmt: skip
        response = await client.post("/v1/orders", json=order)
        seen.add(response.text)


def _files_containing(directory: Path, *needles: str) -> list[str]:
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_socket():
            content = path.read_bytes()
            found += [
                f"{path}: {needle[:12]}..." for needle in needles if needle.encode() in content
            ]
    return found


async def test_the_venue_was_really_used(exposed: Exposed) -> None:
    assert exposed.fake.calls["GET /api/v3/account"] >= 4  # signed: the key in a header
    assert any("73369.84" in text for text in exposed.seen.responses)  # the fake's ticker


async def test_keys_never_appear_in_responses(exposed: Exposed) -> None:
    for text in exposed.seen.responses:
        assert API_KEY not in text
        assert API_SECRET not in text


async def test_keys_never_appear_in_logs_or_databases(exposed: Exposed) -> None:
    var_dir = exposed.stack.config.var_dir
    databases = {path.name for path in var_dir.glob("*.db*")}
    assert {"exchange.db", "exchange.db-wal"} <= databases  # the WAL is searched too
    assert {f"{name}.log" for name in SERVICE_NAMES} <= {p.name for p in var_dir.glob("log/*")}
    assert _files_containing(var_dir, API_KEY, API_SECRET) == []


async def test_every_listening_socket_is_on_loopback(exposed: Exposed) -> None:
    pids = _process_tree(exposed.stack.process.pid)
    listening = _listening_sockets(pids)
    ports = {port for _address, port in listening}
    config = exposed.stack.config
    expected = {
        int(address.rpartition(":")[2])
        for name in SERVICE_NAMES
        # The gRPC port and the Prometheus one (common.metrics).
        for address in (config.service(name).address, config.service(name).metrics_address)
    }
    assert expected | {config.gateway.port} <= ports
    exposed_sockets = [(str(a), p) for a, p in listening if not a.is_loopback]
    assert exposed_sockets == []


# --- /proc -----------------------------------------------------------------------------


def _process_tree(root: int) -> set[int]:
    """`root` and every process descending from it (supervisord, its programs, workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    tree = {root}
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def _socket_inodes(pids: set[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        with os.scandir(f"/proc/{pid}/fd") as descriptors:
            for descriptor in descriptors:
                try:
                    target = os.readlink(descriptor.path)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def _listening_sockets(
    pids: set[int],
) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]:
    """(address, port) of every TCP socket in LISTEN state that `pids` hold open."""
    inodes = _socket_inodes(pids)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            local, state, inode = columns[1], columns[3], columns[9]
            if state == TCP_LISTEN and inode in inodes:
                found.append(_address(local))
    return found


def _address(local: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """/proc/net/tcp's "0100007F:C350": the address as 32-bit words, little-endian."""
    hexaddress, hexport = local.split(":")
    raw = bytes.fromhex(hexaddress)
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(ordered)
    # gRPC listens on "127.0.0.1" through an IPv6 socket: ::ffff:127.0.0.1.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped, int(hexport, 16)
    return address, int(hexport, 16)
