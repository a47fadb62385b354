"""The chaos test's parts: supervisord's XML-RPC, a steady order load and read probes
through the gateway, each request with a client-side deadline and every answer recorded.

An order client retries one client_order_id until it gets a final answer, as a client
of an exchange must after a lost answer (DESIGN.md: an order create is never blindly
retried): 200 is accepted; 4xx, or a 503 that carries the exchange's stored rejection
(its ErrorInfo names the order), is rejected; anything else (503 from a service that is
down, 504, a gateway that does not answer) leaves the outcome unknown, so the same id is
sent again and the exchange's idempotency answers it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common.testing import supervisor_rpc

# Every request's client-side deadline, and the gRPC deadline the gateway is asked to
# keep (grpc-timeout): an answer, even a 504, must come before the client gives up.
CLIENT_DEADLINE_SECONDS = 5.0
GATEWAY_GRPC_TIMEOUT = "3S"
# The pause between two orders of one client, and between two tries of one order.
ORDER_INTERVAL_SECONDS = 0.2
RETRY_INTERVAL_SECONDS = 0.1
PROBE_INTERVAL_SECONDS = 0.2
# An order that has no final answer after this long fails the test.
ORDER_GIVE_UP_SECONDS = 30.0

# A read through the gateway per program: its outage is visible to clients.
PROBES = {
    "exchange": "/v1/venues",
    "portfolio": "/v1/accounts",
    "risk": "/v1/risk/trading-state",
    "backtest": "/v1/strategies",
    "strategy": "/v1/runners",
}


class Supervisor:
    """supervisord's XML-RPC interface on its Unix socket (what supervisorctl uses)."""

    def __init__(self, socket_path: Path) -> None:
        self._socket_path = socket_path

    def _process_info(self, name: str) -> dict[str, Any]:
        # One connection per call: the transport's connection must not be shared by threads.
        with supervisor_rpc(self._socket_path) as supervisor:
            info: dict[str, Any] = supervisor.getProcessInfo(name)
            return info

    async def process_info(self, name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._process_info, name)

    async def pid(self, name: str) -> int:
        return int((await self.process_info(name))["pid"])

    async def wait_for_new_pid_running(self, name: str, old_pid: int, within: float) -> int:
        """Polls until `name` runs with a pid other than `old_pid` in state RUNNING."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            info = await self.process_info(name)
            if info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid):
                return int(info["pid"])
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{name} was not RUNNING again within {within} s")


@dataclass(frozen=True)
class Answer:
    """One HTTP request as a client saw it."""

    path: str
    started: float  # time.monotonic()
    elapsed: float
    status: int | None  # None: no HTTP answer (connection refused or dropped)
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # the transport error's class name when status is None

    @property
    def timed_out(self) -> bool:
        """Waited past the client's deadline without an answer: a hang."""
        return self.error in {
            "TimeoutError",  # CLIENT_DEADLINE_SECONDS passed
            "ReadTimeout",
            "WriteTimeout",
            "PoolTimeout",
            "ConnectTimeout",
        }

    @property
    def unavailable(self) -> bool:
        """503, or no gateway to answer at all (refused or dropped connection)."""
        return self.status == 503 or (self.status is None and not self.timed_out)


@dataclass
class Order:
    client_order_id: str
    side: str
    order_id: str = ""
    outcome: str = ""  # "accepted", "rejected", or "" while unknown
    status: str = ""
    reason: str = ""
    answers: list[Answer] = field(default_factory=list)


class Traffic:
    """Every answer clients saw, the orders they placed, and when to stop."""

    def __init__(self, client: httpx.AsyncClient, trade_token: str, read_token: str) -> None:
        self._client = client
        self._trade = {"Authorization": f"Bearer {trade_token}"}
        self._read = {"Authorization": f"Bearer {read_token}"}
        self.answers: list[Answer] = []
        self.orders: list[Order] = []
        self.stopping = asyncio.Event()

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> Answer:
        started = time.monotonic()
        try:
            # The whole request, not only each phase as httpx's own timeout counts.
            async with asyncio.timeout(CLIENT_DEADLINE_SECONDS):
                response = await self._client.request(
                    method,
                    path,
                    json=body,
                    headers={**headers, "grpc-timeout": GATEWAY_GRPC_TIMEOUT},
                    timeout=CLIENT_DEADLINE_SECONDS,
                )
        except (TimeoutError, httpx.TransportError) as error:
            answer = Answer(path, started, _since(started), None, error=type(error).__name__)
        else:
            answer = Answer(path, started, _since(started), response.status_code, _json(response))
        self.answers.append(answer)
        return answer

    def accepted(self) -> list[Order]:
        return [order for order in self.orders if order.outcome == "accepted"]

    async def accepted_count_reaches(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.accepted()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} orders accepted within {within} s")
            await asyncio.sleep(0.05)

    # -- orders ---------------------------------------------------------------------

    async def order_client(self, name: str, quantity: str) -> None:
        """Places market orders until stopped: two buys, then a sell."""
        for number in itertools.count():
            if self.stopping.is_set():
                return
            side = "SIDE_SELL" if number % 3 == 2 else "SIDE_BUY"
            order = Order(f"chaos-{name}-{number}", side)
            self.orders.append(order)
            await self._place(order, quantity)
            await asyncio.sleep(ORDER_INTERVAL_SECONDS)

    async def _place(self, order: Order, quantity: str) -> None:
        body = {
            "venue": "paper",
            "symbol": "BTC/USDT",
            "side": order.side,
            "type": "ORDER_TYPE_MARKET",
            "quantity": quantity,
            "clientOrderId": order.client_order_id,
        }
        give_up = time.monotonic() + ORDER_GIVE_UP_SECONDS
        while time.monotonic() < give_up:
            answer = await self.request("POST", "/v1/orders", self._trade, body)
            order.answers.append(answer)
            if _settle(order, answer):
                return
            await asyncio.sleep(RETRY_INTERVAL_SECONDS)

    # -- probes ---------------------------------------------------------------------

    async def probe(self, path: str) -> None:
        """Reads `path` every PROBE_INTERVAL_SECONDS until stopped."""
        while not self.stopping.is_set():
            await self.request("GET", path, self._read)
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)


def _settle(order: Order, answer: Answer) -> bool:
    """Records a final answer on `order`; False while the outcome is unknown."""
    if answer.status == 200:
        placed = answer.body["order"]
        order.outcome = "accepted"
        order.order_id, order.status = placed["orderId"], placed["status"]
        return True
    info = _error_info(answer.body)
    stored_rejection = bool(info.get("metadata", {}).get("order_id"))
    if answer.status is not None and (400 <= answer.status < 500 or stored_rejection):
        order.outcome, order.reason = "rejected", str(info.get("reason", ""))
        return True
    return False


def _error_info(body: dict[str, Any]) -> dict[str, Any]:
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return dict(detail)
    return {}


def _since(started: float) -> float:
    return time.monotonic() - started


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
