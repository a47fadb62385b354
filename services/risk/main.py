"""Entry point of the risk service: `python -m services.risk`.

The lifespan loads the stored limits and trading state, builds the in-memory book
and starts the feeds that fill it from the portfolio and the exchange; CheckOrder
denies with RISK_STATE_STALE until they have synced.
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
from services.risk.book import RiskBook
from services.risk.candles import TIMEFRAME_NAMES, CandleSource
from services.risk.engine import RiskEngine, load_trading_state
from services.risk.events import EventHub
from services.risk.feeds import Feeds
from services.risk.limits import Limits, RawLimits, validate_limits
from services.risk.portfolio_var import PortfolioVar
from services.risk.servicer import RiskServicer
from services.risk.settings import RiskSettings
from services.risk.storage.repository import RiskRepository
from services.risk.var_guard import VarGuard


def load_settings(runtime: Runtime) -> RiskSettings:
    settings = parse_settings(RiskSettings, runtime.settings.extensions, "risk.")
    if settings.var.timeframe not in TIMEFRAME_NAMES:
        raise ConfigError("risk.var.timeframe", f"must be one of {', '.join(TIMEFRAME_NAMES)}")
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
    events = EventHub()
    engine = RiskEngine(
        book=RiskBook(),
        limits=limits,
        trading_state=await load_trading_state(repository, datetime.now(UTC)),
        repository=repository,
        events=events,
    )
    async with (
        peer_channel(runtime.config.portfolio.address, runtime.config.grpc) as portfolio,
        peer_channel(runtime.config.exchange.address, runtime.config.grpc) as exchange,
    ):
        candles = CandleSource(exchange, settings.feeds.venue, settings.feeds.rpc_timeout_seconds)
        var_guard = VarGuard(engine, candles, settings.var)
        engine.var_estimate = var_guard.estimate
        feeds = Feeds(engine, settings.feeds, portfolio, exchange)
        tasks = [
            asyncio.create_task(feeds.run(), name="risk-feeds"),
            asyncio.create_task(var_guard.run(), name="risk-var-history"),
        ]
        try:
            yield RiskServicer(
                engine,
                events,
                PortfolioVar(engine.book, candles, runtime.memory, settings.var.min_observations),
                settings.var,
                settings.feeds.venue,
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
