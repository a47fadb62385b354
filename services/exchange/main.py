"""Entry point of the exchange service: `python -m services.exchange`.

The lifespan wires the venues (paper always, ccxt ones when configured), the risk gate,
the order flow and the outbox, restores the paper account from the database, and runs
the background tasks: the paper replay clock and the watch for HALTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from common.errors import EdgeQuantError, StartupError
from common.memory import MIB, rss_bytes
from common.server import run
from common.service import Runtime, ServiceSpec
from common.stack import exchange_budget_mib
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.exchange.candle_cache import CandleCache
from services.exchange.orderflow import OrderFlow
from services.exchange.orders import OrderStatus
from services.exchange.outbox import Outbox
from services.exchange.paper.venue import PaperVenue
from services.exchange.risk_gate import RiskGate
from services.exchange.servicer import ExchangeServicer
from services.exchange.settings import ExchangeSettings, load_settings
from services.exchange.storage import repository
from services.exchange.storage.writer import Writer
from services.exchange.updates import OrderUpdates
from services.exchange.venue import Venue
from services.exchange.venues import Venues

log = logging.getLogger("edgequant.exchange")


def build_venues(settings: ExchangeSettings) -> list[Venue]:
    venues: list[Venue] = []
    if settings.paper.enabled:
        venues.append(PaperVenue(settings.paper))
        if settings.paper.source:
            # Imported only here: it imports ccxt (~100 MiB of RSS).
            from services.exchange.paper.live import PaperLiveVenue  # noqa: PLC0415

            venues.append(PaperLiveVenue(settings.paper))
    if settings.venues:
        # Imported only here: ccxt costs ~100 MiB of RSS.
        from services.exchange.ccxt_venue import CcxtVenue  # noqa: PLC0415

        venues += [CcxtVenue(name, table) for name, table in settings.venues.items()]
    return venues


async def _restore_paper(runtime: Runtime, venues: Venues, flow: OrderFlow) -> None:
    """Every paper venue (`paper`, and `paper-live` when configured) from the database."""
    for paper in venues:
        if not isinstance(paper, PaperVenue):
            continue
        name = paper.info.name
        async with runtime.sessions() as session:
            open_orders = await repository.open_orders(session, name)
            executions = await repository.executions_of_venue(session, name)
        # A crash (kill -9) between storing an order and recording the venue's answer.
        placed = [order for order in open_orders if order.status is not OrderStatus.PENDING_NEW]
        await flow.reject_unplaced([order for order in open_orders if order not in placed])
        paper.restore(placed, executions)


async def _check_memory(runtime: Runtime, settings: ExchangeSettings, venues: Venues) -> None:
    """Loads every ccxt venue's markets now and refuses to start when the process is
    already above its budget: memmon would restart it in a loop. A venue that does not
    answer now loads its markets on first use instead."""
    for name, table in settings.venues.items():
        try:
            await asyncio.wait_for(venues.require(name).markets(), 3 * table.timeout_ms / 1000)
        except (EdgeQuantError, TimeoutError) as error:
            log.warning(
                "venue markets not loaded at start", extra={"venue": name, "error": str(error)}
            )
    budget = exchange_budget_mib(runtime.config)
    used = rss_bytes(os.getpid()) / MIB
    # Only the service's own process has the RSS memmon sees (tests host it in theirs).
    own_process = getattr(sys.modules["__main__"].__spec__, "name", "") == __package__ + ".__main__"
    if settings.venues and own_process and used > budget:
        raise StartupError(
            f"exchange: {used:.0f} MiB after loading the ccxt venues' markets, above its "
            f"budget of {budget} MiB: restrict market_types or symbols of "
            f"[exchange.venues.*], or raise their memory_budget_mib"
        )


async def _unknown_after_restart(
    runtime: Runtime, settings: ExchangeSettings, flow: OrderFlow
) -> None:
    """ccxt orders left PENDING_NEW by a restart may be at the venue: reconciled (the
    order polls start with them), never rejected."""
    for name in settings.venues:
        async with runtime.sessions() as session:
            orders = await repository.open_orders(session, name)
        await flow.mark_unknown([o for o in orders if o.status is OrderStatus.PENDING_NEW])


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[ExchangeServicer]:
    settings = load_settings(runtime.settings)
    venues = Venues(build_venues(settings))
    risk = RiskGate(runtime.config.risk.address, settings.risk, runtime.config.grpc)
    outbox = Outbox(runtime.sessions)
    await outbox.load()
    updates = OrderUpdates()
    writer = Writer(runtime.config.database_url(runtime.name), runtime.engine)
    flow = OrderFlow(
        sessions=runtime.sessions,
        writer=writer,
        venues=venues,
        risk=risk,
        outbox=outbox,
        updates=updates,
    )
    await _restore_paper(runtime, venues, flow)
    await _unknown_after_restart(runtime, settings, flow)
    await _check_memory(runtime, settings, venues)
    for venue in venues:
        await venue.start(flow.on_report)
    tasks = [asyncio.create_task(risk.watch_halts(flow.cancel_on_halt), name="risk-halts")]
    for name, table in settings.venues.items():
        poll = flow.poll_open_orders(
            venues.require(name),
            alert_after_seconds=table.unknown_alert_seconds,
            slow_poll_seconds=table.unknown_slow_poll_seconds,
        )
        tasks.append(asyncio.create_task(poll, name=f"{name}-orders"))
    try:
        yield ExchangeServicer(venues, flow, outbox, updates, CandleCache(runtime.sessions, writer))
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for venue in venues:
            await venue.close()
        await risk.close()
        writer.close()


SPEC = ServiceSpec(
    name="exchange",
    descriptor=exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"],
    lifespan=lifespan,
    add_to_server=exchange_pb2_grpc.add_ExchangeServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
