"""Entry point of the portfolio service: `python -m services.portfolio`.

The lifespan loads the ledger, then runs three background tasks beside the servicer:
the executions consumer (ingestion), the transfer checks, the marks feed and the equity
snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from common.channels import peer_channel
from common.server import run
from common.service import Runtime, ServiceSpec
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from services.portfolio.equity import EquityRecorder
from services.portfolio.ingestion import ExecutionConsumer
from services.portfolio.ledger import Ledger
from services.portfolio.marks import MarkBook
from services.portfolio.reports import Reports
from services.portfolio.servicer import PortfolioServicer
from services.portfolio.settings import load_settings
from services.portfolio.storage.repository import PortfolioRepository
from services.portfolio.ticker_feed import MarkFeed
from services.portfolio.transfer_watch import TransferWatch


@asynccontextmanager
async def lifespan(runtime: Runtime) -> AsyncIterator[PortfolioServicer]:
    settings = load_settings(runtime)
    repository = PortfolioRepository(runtime.sessions)
    ledger = Ledger(repository, settings.ledger)
    await ledger.load()
    runtime.metrics.stream_sequence("executions", "applied", lambda: ledger.cursor or 0)
    marks = MarkBook()
    recorder = EquityRecorder(repository, ledger, marks)
    channel = peer_channel(runtime.config.exchange.address, runtime.config.grpc)
    reports = Reports(ledger, marks, repository, runtime.memory)
    servicer = PortfolioServicer(ledger, marks, reports)
    jobs: list[Coroutine[Any, Any, None]] = [recorder.run(settings.equity.snapshot_seconds)]
    if settings.ingestion.enabled:
        jobs.append(ExecutionConsumer(channel, ledger, settings.ingestion).run())
        if settings.ingestion.transfer_check_seconds:
            watch = TransferWatch(
                channel,
                ledger,
                every_seconds=settings.ingestion.transfer_check_seconds,
                timeout=settings.ingestion.rpc_timeout_seconds,
            )
            jobs.append(watch.run())
    if settings.marks.enabled:
        ingestion = settings.ingestion
        jobs.append(
            MarkFeed(
                channel,
                marks,
                venues=lambda: {book.account.venue for book in ledger.books.values()},
                backoff_seconds=(ingestion.backoff_initial_seconds, ingestion.backoff_max_seconds),
            ).run()
        )
    tasks = [asyncio.create_task(job) for job in jobs]
    try:
        yield servicer
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await channel.close()
        repository.close()


SPEC = ServiceSpec(
    name="portfolio",
    descriptor=portfolio_pb2.DESCRIPTOR.services_by_name["PortfolioService"],
    lifespan=lifespan,
    add_to_server=portfolio_pb2_grpc.add_PortfolioServiceServicer_to_server,
)


def main() -> None:
    run(SPEC)
