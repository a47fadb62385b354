"""The executions outbox: sequence numbers, and the stream that replays then follows.

Sequences are assigned by this process under `writing`, the lock every order update
holds for its transaction, so they are committed in order and without gaps; a
consumer that resumes after the last sequence it applied misses nothing and sees
nothing twice.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Sequence

from services.exchange.orders import Execution
from services.exchange.storage import repository
from services.exchange.updates import GATHER_SECONDS
from services.exchange.wakeup import Wakeup

PAGE = 500
# The newest executions committed by this process, kept to serve live streams without a
# query per batch; a stream further behind reads the database.
RECENT = 2 * PAGE


class Outbox:
    def __init__(
        self,
        sessions: repository.Sessions,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._sessions = sessions
        # A live batched stream gathers what commits for this long before it sends (as
        # order updates do): the fill's SubmitOrder is answered first, and under a load the
        # portfolio gets one message for many executions, not one each.
        self.gather_seconds = gather_seconds
        self.writing = asyncio.Lock()
        self.last_sequence = 0
        self.appended = Wakeup()
        # Contiguous: committed in sequence order under `writing`, nothing missing between.
        self._recent: deque[Execution] = deque(maxlen=RECENT)

    async def load(self) -> None:
        async with self._sessions() as session:
            self.last_sequence = await repository.last_sequence(session)

    def next_sequence(self) -> int:
        """Only under `writing`; roll back with `rewind` if the transaction fails."""
        self.last_sequence += 1
        return self.last_sequence

    def rewind(self, to: int) -> None:
        self.last_sequence = to

    def committed(self, executions: Sequence[Execution]) -> None:
        """Only under `writing`, once the transaction that holds `executions` committed."""
        self._recent.extend(executions)

    def _recent_after(self, sequence: int, limit: int) -> list[Execution] | None:
        """Up to `limit` executions after `sequence` from memory; None when memory does
        not reach back to the one right after it."""
        recent = self._recent
        if not recent or recent[0].sequence > sequence + 1:
            return None
        start = sequence + 1 - recent[0].sequence
        return list(itertools.islice(recent, start, start + limit))

    async def stream(self, after_seq: int) -> AsyncIterator[Execution]:
        """Executions with a sequence above `after_seq`, oldest first, then live ones."""
        async for batch in self.batches(after_seq, PAGE, paced=False):
            for execution in batch:
                yield execution

    async def batches(
        self, after_seq: int, size: int, *, paced: bool = True
    ) -> AsyncIterator[list[Execution]]:
        """The same executions as `stream`, in lists of 1 to `size`, each holding only
        what is committed already. `paced`: once caught up, a commit waits out
        `gather_seconds` for the ones after it before the next list is read."""
        sent = after_seq
        # One query per page, whatever the batch size: a batch of 1 must not cost a query.
        page_size = max(size, PAGE)
        while True:
            seen = self.appended.version
            page = self._recent_after(sent, page_size)
            if page is None:
                async with self._sessions() as session:
                    page = await repository.executions_after(session, sent, page_size)
            for start in range(0, len(page), size):
                batch = page[start : start + size]
                yield batch
                sent = batch[-1].sequence
            if len(page) < page_size:
                await self.appended.wait(seen)
                if paced:
                    await asyncio.sleep(self.gather_seconds)
