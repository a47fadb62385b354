"""The executions outbox: sequence numbers, and the stream that replays then follows.

Sequences are assigned by this process under `writing`, the lock every order update
holds for its transaction, so they are committed in order and without gaps; a
consumer that resumes after the last sequence it applied misses nothing and sees
nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.exchange.orders import Execution
from services.exchange.storage import repository
from services.exchange.wakeup import Wakeup

PAGE = 500


class Outbox:
    def __init__(self, sessions: repository.Sessions) -> None:
        self._sessions = sessions
        self.writing = asyncio.Lock()
        self.last_sequence = 0
        self.appended = Wakeup()

    async def load(self) -> None:
        async with self._sessions() as session:
            self.last_sequence = await repository.last_sequence(session)

    def next_sequence(self) -> int:
        """Only under `writing`; roll back with `rewind` if the transaction fails."""
        self.last_sequence += 1
        return self.last_sequence

    def rewind(self, to: int) -> None:
        self.last_sequence = to

    async def stream(self, after_seq: int) -> AsyncIterator[Execution]:
        """Executions with a sequence above `after_seq`, oldest first, then live ones."""
        async for batch in self.batches(after_seq, PAGE):
            for execution in batch:
                yield execution

    async def batches(self, after_seq: int, size: int) -> AsyncIterator[list[Execution]]:
        """The same executions as `stream`, in lists of 1 to `size`: each list holds what is
        committed already, so a quiet stream still sends each execution at once."""
        sent = after_seq
        # One query per page, whatever the batch size: a batch of 1 must not cost a query.
        page_size = max(size, PAGE)
        while True:
            seen = self.appended.version
            async with self._sessions() as session:
                page = await repository.executions_after(session, sent, page_size)
            for start in range(0, len(page), size):
                batch = page[start : start + size]
                yield batch
                sent = batch[-1].sequence
            if len(page) < page_size:
                await self.appended.wait(seen)
