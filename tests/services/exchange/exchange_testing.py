"""Helpers of the exchange tests: a scripted RiskService, the exchange served over real
gRPC with its servicer at hand (to step the paper replay), error details, orders."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy.engine import make_url

from common.config import Config
from common.database import create_engine, session_factory, upgrade_in_child
from common.memory import MemoryGuard
from common.service import Runtime
from common.testing import serving
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.exchange.main import lifespan
from services.exchange.paper.venue import PaperVenue
from services.exchange.servicer import ExchangeServicer

StartExchange = Callable[..., AbstractAsyncContextManager["Exchange"]]

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
MARKET, LIMIT = common_pb2.ORDER_TYPE_MARKET, common_pb2.ORDER_TYPE_LIMIT


def order(**fields: Any) -> exchange_pb2.SubmitOrderRequest:
    """A valid paper market buy of 0.01 BTC, with `fields` changed."""
    request: dict[str, Any] = {
        "venue": "paper",
        "symbol": "BTC/USDT",
        "side": BUY,
        "type": MARKET,
        "quantity": "0.01",
    }
    request.update(fields)
    return exchange_pb2.SubmitOrderRequest(**request)


def error_info(error: grpc.aio.AioRpcError) -> Any:
    """The ErrorInfo of a failed call."""
    status = rpc_status.from_call(error)
    info = error_details_pb2.ErrorInfo()
    assert status is not None
    assert status.details[0].Unpack(info)
    return info


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The BadRequest field violations of a failed call, by field."""
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in status.details)
    return {v.field: v.description for v in bad.field_violations}


@dataclass
class ScriptedRisk(risk_pb2_grpc.RiskServiceServicer):
    """A RiskService that answers as the test says."""

    mode: str = "approve"  # approve | deny | hang
    # The first this many checks fail with this code (a GOAWAY under the call, a restart).
    failures: int = 0
    failure_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    violations: list[risk_pb2.Violation] = field(default_factory=list)
    checks: list[risk_pb2.CheckOrderRequest] = field(default_factory=list)
    state: risk_pb2.TradingState.ValueType = risk_pb2.TRADING_STATE_ACTIVE
    # None: end the stream as risk ends a subscriber's that fell behind (STREAM_OVERFLOW).
    events: asyncio.Queue[risk_pb2.RiskEvent | None] = field(default_factory=asyncio.Queue)
    subscribers: int = 0
    halted_accounts: list[str] = field(default_factory=list)

    async def CheckOrder(self, request: Any, context: Any) -> risk_pb2.CheckOrderResponse:
        self.checks.append(request)
        if len(self.checks) <= self.failures:
            await context.abort(self.failure_code, "Too many pings")
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "deny":
            return risk_pb2.CheckOrderResponse(
                decision=risk_pb2.DECISION_DENY, violations=self.violations
            )
        return risk_pb2.CheckOrderResponse(decision=risk_pb2.DECISION_APPROVE)

    async def GetTradingState(self, request: Any, context: Any) -> Any:
        return risk_pb2.GetTradingStateResponse(
            trading_state=risk_pb2.TradingStateInfo(state=self.state),
            accounts=[
                risk_pb2.TradingStateInfo(account_id=account, state=risk_pb2.TRADING_STATE_HALTED)
                for account in self.halted_accounts
            ],
        )

    async def StreamRiskEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.subscribers += 1
        # As the risk service does: the headers say the subscriber is registered.
        await context.send_initial_metadata(())
        while True:
            event = await self.events.get()
            if event is None:
                await context.abort(grpc.StatusCode.ABORTED, "fell behind and was cut")
            yield risk_pb2.StreamRiskEventsResponse(event=event)

    def halt_unheard(self) -> None:
        """Halts globally without sending the event: the stream is cut instead (as risk
        cuts a subscriber that fell behind), so only GetTradingState tells."""
        self.state = risk_pb2.TRADING_STATE_HALTED
        self.events.put_nowait(None)

    def halt(self, reason: str, account_id: str = "") -> None:
        """Halts globally, or with `account_id` that venue account only."""
        halted = risk_pb2.TRADING_STATE_HALTED
        if account_id:
            self.halted_accounts.append(account_id)
        else:
            self.state = halted
        info = risk_pb2.TradingStateInfo(state=halted, reason=reason, account_id=account_id)
        self.events.put_nowait(
            risk_pb2.RiskEvent(
                type=risk_pb2.RISK_EVENT_TYPE_TRADING_STATE_CHANGED,
                trading_state=info,
                account_id=account_id,
            )
        )


@dataclass
class Exchange:
    """A running exchange: its gRPC stub and, for stepping the replay, its servicer."""

    stub: exchange_pb2_grpc.ExchangeServiceAsyncStub
    servicer: ExchangeServicer
    # Where it serves, for peers (the portfolio) to connect.
    address: str = ""

    @property
    def paper(self) -> PaperVenue:
        venue = self.servicer.venues.get("paper")
        assert isinstance(venue, PaperVenue)
        return venue


def _copy_migrated(migrated: Path | None, database: Path) -> bool:
    if migrated is None or database.exists():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated, database)
    return True


@asynccontextmanager
async def running_exchange(config: Config, migrated: Path | None = None) -> AsyncIterator[Exchange]:
    """Serves the exchange; `migrated` is a database file already at head, copied in place
    of running the migrations (a child process) when the exchange's file does not exist."""
    url = config.database_url("exchange")
    if not _copy_migrated(migrated, Path(make_url(url).database or "")):
        await upgrade_in_child("exchange", url)
    engine = create_engine(url)
    settings = config.service("exchange")
    runtime = Runtime(
        name="exchange",
        config=config,
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        memory=MemoryGuard(settings.memory_budget_mib, settings.soft_limit_ratio),
    )
    try:
        async with lifespan(runtime) as servicer:
            add = exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
            async with (
                serving(servicer, add) as address,
                grpc.aio.insecure_channel(address) as channel,
            ):
                yield Exchange(exchange_pb2_grpc.ExchangeServiceStub(channel), servicer, address)
    finally:
        await engine.dispose()
