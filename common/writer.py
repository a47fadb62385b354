"""The write path of a service whose writes are on its hot path (the exchange's orders and
executions, the portfolio's ledger): each transaction is one synchronous call.

Through aiosqlite every statement is several hops between the event loop and its
thread (cursor, execute, fetch, close, commit), ~2.4 ms for one insert on this machine.
A write transaction of SubmitOrder on a synchronous SQLite connection takes ~0.3 ms, so
it runs inline, on the event loop: handing it to a thread instead cost more than the
write itself under load (the loop and the thread queue for the GIL), and made SubmitOrder
at 200 requests/s queue up. Inline, writes are also trivially in order. A service that
writes this way writes only this way (a second writer on aiosqlite could hold the lock
across an await while the loop waits on it).

The one slow step of a WAL database is the checkpoint, which copies the log into the
database file and fsyncs it. The writer's connection never checkpoints by itself; after
every CHECKPOINT_EVERY commits a passive checkpoint runs in a side thread instead, so the
loop never waits on the disk's fsync.

For any other database (PostgreSQL) the same functions run through the async engine's
`run_sync`: the code path is the same.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from common.database import SQLITE_PRAGMAS

log = logging.getLogger("edgequant.storage")

# An order's transaction writes 2-4 pages: about SQLite's own threshold of 1,000 pages.
CHECKPOINT_EVERY = 300

_Result = TypeVar("_Result")
Transaction = Callable[[Connection], _Result]


class Writer:
    def __init__(self, database_url: str | URL, engine: AsyncEngine, name: str = "writer") -> None:
        self._async_engine = engine
        self._engine: Engine | None = None
        # Kept between transactions: checking a pooled connection out and back in (and the
        # pool's reset) cost ~45 us a transaction, a third of an order's insert.
        self._connection: Connection | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._commits = 0
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._engine = create_engine(url.set(drivername="sqlite"))
            event.listen(self._engine, "connect", _apply_pragmas)
            self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-checkpoint")

    async def run(self, transaction: Transaction[_Result]) -> _Result:
        """Runs `transaction` in one database transaction, committed when it returns."""
        if self._engine is None:
            async with self._async_engine.begin() as connection:
                return await connection.run_sync(transaction)
        if self._connection is None:
            self._connection = self._engine.connect()
        try:
            with self._connection.begin():
                result = transaction(self._connection)
        except BaseException:
            # Rolled back; a connection a failure may have left unusable is not kept.
            self._connection.close()
            self._connection = None
            raise
        self._commits += 1
        self._checkpoint_when_due()
        return result

    def _checkpoint_when_due(self) -> None:
        if self._commits < CHECKPOINT_EVERY or self._checkpoint is not None:
            return
        assert self._checkpointer is not None
        self._commits = 0
        loop = asyncio.get_running_loop()
        self._checkpoint = loop.run_in_executor(self._checkpointer, self._run_checkpoint)
        self._checkpoint.add_done_callback(self._checkpoint_done)

    def _run_checkpoint(self) -> None:
        assert self._engine is not None
        with self._engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint_done(self, checkpoint: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not checkpoint.cancelled() and checkpoint.exception() is not None:
            # The log only grows until the next one succeeds; nothing committed is at risk.
            log.warning("WAL checkpoint failed", exc_info=checkpoint.exception())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
        if self._engine is not None:
            self._engine.dispose()


def _apply_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    for pragma in (*SQLITE_PRAGMAS, "PRAGMA wal_autocheckpoint=0"):
        cursor.execute(pragma)
    cursor.close()
