"""Entry point of the risk service: `python -m services.risk`.

The lifespan loads the stored limits and trading states (global and per account),
and starts the feeds that list the exchange's venues and keep a book per venue
account from the portfolio and the exchange; CheckOrder denies an account's orders
with RISK_STATE_STALE until its feeds have synced, and health says NOT_SERVING until
every account has synced once (RiskServicer.ready).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from common.channels import peer_channel
from common.config import ConfigError, parse_settings
from common.errors import InvalidArgument
from common.server import run
from common.service import Runtime, ServiceSpec
from common.validation import Violations
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from services.risk.closes import VAR_TIMEFRAMES, CloseSource
from services.risk.engine import AccountRisk, RiskEngine, load_trading_state
from services.risk.events import risk_events
from services.risk.feeds import Feeds
from services.risk.limits import Limits, RawLimits, validate_limits
from services.risk.portfolio_var import PortfolioVar
from services.risk.servicer import RiskServicer
from services.risk.settings import RiskSettings
from services.risk.storage.repository import RiskRepository
from services.risk.var_guard import VarGuard


def load_settings(runtime: Runtime) -> RiskSettings:
    settings = parse_settings(RiskSettings, runtime.settings.extensions, "risk.")
    if settings.var.timeframe not in VAR_TIMEFRAMES:
        raise ConfigError("risk.var.timeframe", f"must be one of {', '.join(VAR_TIMEFRAMES)}")
    return settings


def default_limits(defaults: RawLimits) -> Limits:
    """The configured limits of a fresh install; a bad one stops the start naming its key."""
    violations = Violations()
    limits = validate_limits(defaults, violations, prefix="risk.limits.")
    try:
        violations.raise_if_any()
    except InvalidArgument as error:
        first = error.violations[0]
        raise ConfigError(first.field, first.description) from None
    return limits


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[RiskServicer]:
    settings = load_settings(runtime)
    repository = RiskRepository(runtime.sessions)
    limits = await repository.load_limits() or default_limits(settings.limits)
    events = risk_events()
    engine = RiskEngine(
        limits=limits,
        trading_state=await load_trading_state(repository, datetime.now(UTC)),
        repository=repository,
        events=events,
        account_limits=await repository.load_account_limits(),
        account_states=await repository.account_trading_states(),
    )
    tasks: list[asyncio.Task[None]] = []
    async with (
        peer_channel(runtime.config.portfolio.address, runtime.config.grpc) as portfolio,
        peer_channel(runtime.config.exchange.address, runtime.config.grpc) as exchange,
    ):
        candles = CloseSource(exchange, settings.feeds.rpc_timeout_seconds)

        def guard_var(account: AccountRisk) -> None:
            """Each account's max_var rule reads its own venue's candles."""
            var_guard = VarGuard(account, candles, settings.var)
            account.var_estimate = var_guard.estimate
            tasks.append(
                asyncio.create_task(var_guard.run(), name=f"risk-var-{account.account_id}")
            )

        feeds = Feeds(engine, settings.feeds, portfolio, exchange, on_account=guard_var)
        tasks.append(asyncio.create_task(feeds.run(), name="risk-feeds"))
        try:
            yield RiskServicer(
                engine,
                events,
                PortfolioVar(candles, runtime.memory, settings.var.min_observations),
                settings.var,
                settings.feeds.account_id,
                ready_timeout_seconds=settings.feeds.ready_timeout_seconds,
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


SPEC = ServiceSpec(
    name="risk",
    descriptor=risk_pb2.DESCRIPTOR.services_by_name["RiskService"],
    lifespan=lifespan,
    add_to_server=risk_pb2_grpc.add_RiskServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
