"""The pre-trade risk hop: RiskService.CheckOrder with a short deadline, failing closed;
and the watch on RiskService.StreamRiskEvents that cancels open orders on HALTED.

CheckOrder is idempotent per order id (risk counts an order once in its rate windows,
reservations and events), so a transient UNAVAILABLE (a connection closing under the
call, a risk restart) is retried within the deadline instead of rejecting the order and
using up its client_order_id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import grpc

from common.channels import peer_channel
from common.config import GrpcSettings
from common.errors import EdgeQuantError, FailedPrecondition, Unavailable
from common.reconnect import Reconnect
from edgequant.common.v1 import common_pb2
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.exchange.orders import Order, OrderType, Side
from services.exchange.reasons import Reason
from services.exchange.settings import RiskClientSettings

log = logging.getLogger("edgequant.exchange.risk")

HALTED = risk_pb2.TRADING_STATE_HALTED
STATE_CHANGED = risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED
# (the venue account halted, '' for the global kill switch; why).
OnHalt = Callable[[str, str], Awaitable[None]]
# First pause before retrying an UNAVAILABLE check (doubling): a reconnect to a peer
# that is up takes a few milliseconds.
RETRY_PAUSE_SECONDS = 0.01

_SIDES = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
_TYPES = {
    OrderType.MARKET: common_pb2.ORDER_TYPE_MARKET,
    OrderType.LIMIT: common_pb2.ORDER_TYPE_LIMIT,
}


class RiskGate:
    def __init__(
        self, address: str, settings: RiskClientSettings, grpc_settings: GrpcSettings
    ) -> None:
        self.settings = settings
        self._channel = peer_channel(address, grpc_settings)
        self._stub = risk_pb2_grpc.RiskServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def check(self, order: Order) -> None:
        """Returns when risk approves; raises the rejection otherwise (fail closed).

        A denial is FAILED_PRECONDITION with the first violation's reason and every
        reason in metadata["reasons"]; no answer in time, or any error, is UNAVAILABLE
        with reason RISK_UNAVAILABLE. UNAVAILABLE is retried until the deadline."""
        request = risk_pb2.CheckOrderRequest(
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            venue=order.venue,
            symbol=order.symbol,
            side=_SIDES[order.side],
            type=_TYPES[order.type],
            quantity=f"{order.quantity:f}",
            price="" if order.price is None else f"{order.price:f}",
            reduce_only=order.reduce_only,
        )
        try:
            response = await self._check_within_deadline(request)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(
                f"order rejected: the risk service did not approve it ({error.code().name}: "
                f"{error.details()}); trading fails closed. Submit again with a new "
                "client_order_id once risk answers",
                reason=Reason.RISK_UNAVAILABLE,
                metadata={"reasons": Reason.RISK_UNAVAILABLE},
            ) from None
        if response.decision == risk_pb2.DECISION_APPROVE:
            return
        raise denial(response)

    async def _check_within_deadline(
        self, request: risk_pb2.CheckOrderRequest
    ) -> risk_pb2.CheckOrderResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.check_timeout_seconds
        pause = RETRY_PAUSE_SECONDS
        while True:
            try:
                return await self._stub.CheckOrder(request, timeout=deadline - loop.time())
            except grpc.aio.AioRpcError as error:
                left = deadline - loop.time()
                if error.code() is not grpc.StatusCode.UNAVAILABLE or left <= pause:
                    raise
                log.info(
                    "risk check unavailable: retrying",
                    extra={"order_id": request.order_id, "details": error.details()},
                )
            await asyncio.sleep(pause)
            pause *= 2

    async def watch_halts(self, on_halt: OnHalt) -> None:
        """Follows StreamRiskEvents forever; calls `on_halt` when trading is HALTED, globally
        ('') or on one venue account. Every (re)connection reads GetTradingState first: a
        HALTED event sent while the stream was down, or lost when risk cut the stream
        (STREAM_OVERFLOW), is found there. Warns once the risk service has been
        unreachable for `reconnect_max_seconds`."""
        reconnect = Reconnect(
            "risk events",
            initial_seconds=self.settings.reconnect_min_seconds,
            max_seconds=self.settings.reconnect_max_seconds,
        )
        outage = _Outage(self.settings.reconnect_max_seconds)

        async def follow() -> None:
            outage.attempting()
            # Subscribed before the state is read: a change in between is in the stream.
            # Risk sends the headers once the subscriber is registered: wait for them.
            events = self._stub.StreamRiskEvents(risk_pb2.StreamRiskEventsRequest())
            try:
                await events.initial_metadata()
                state = await self._stub.GetTradingState(
                    risk_pb2.GetTradingStateRequest(), timeout=self.settings.check_timeout_seconds
                )
                outage.connected()
                reconnect.connected()
                for info in (state.trading_state, *state.accounts):
                    if info.state == HALTED:
                        await on_halt(info.account_id, info.reason)
                async for message in events:
                    event = message.event
                    if event.type == STATE_CHANGED and event.trading_state.state == HALTED:
                        await on_halt(
                            event.account_id or event.trading_state.account_id,
                            event.trading_state.reason or event.message,
                        )
            finally:
                events.cancel()

        await reconnect.forever(follow)


class _Outage:
    """Warns once when the risk service stays unreachable `warn_after` seconds."""

    def __init__(self, warn_after: float) -> None:
        self.warn_after = warn_after
        self.since: float | None = None
        self.warned = False

    def attempting(self) -> None:
        now = time.monotonic()
        if self.since is None:
            self.since = now
        elif not self.warned and now - self.since >= self.warn_after:
            self.warned = True
            log.warning(
                "risk service unreachable: orders are rejected (fail closed) and "
                "HALTED cannot be followed until it answers"
            )

    def connected(self) -> None:
        if self.warned:
            log.info("risk events connected again")
        self.since, self.warned = None, False


def denial(response: risk_pb2.CheckOrderResponse) -> EdgeQuantError:
    reasons = [v.reason for v in response.violations if v.reason] or [Reason.RISK_DENIED]
    details = "; ".join(_described(v) for v in response.violations if v.message)
    return FailedPrecondition(
        f"order rejected by risk: {details or ', '.join(reasons)}",
        reason=reasons[0],
        metadata={"reasons": ",".join(reasons)},
    )


def _described(violation: risk_pb2.Violation) -> str:
    """The violation's message with its figures, as a trader needs them to adjust the
    order: "... would reach the limit (3.2 against 3)". Not "a limit of 3": for some
    rules the bound is what is available (the cash left, for a buy)."""
    if violation.actual and violation.limit:
        return f"{violation.message} ({violation.actual} against {violation.limit})"
    return violation.message
