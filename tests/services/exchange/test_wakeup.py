"""The broadcast wake-up: every waiter learns of a change, several changes coalesce, and
a waiter that has seen the latest version waits for the next."""

from __future__ import annotations

import asyncio

from services.exchange.wakeup import Wakeup


async def test_every_waiter_wakes_once_for_changes_it_has_not_seen() -> None:
    wakeup = Wakeup()
    waiters = [asyncio.ensure_future(wakeup.wait(0)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)

    wakeup.notify()
    wakeup.notify()  # two changes before anyone looked: one wake-up

    assert await asyncio.gather(*waiters) == [2, 2, 2]


async def test_a_waiter_behind_the_version_returns_at_once() -> None:
    wakeup = Wakeup()
    wakeup.notify()

    assert await wakeup.wait(0) == 1
    waiting = asyncio.ensure_future(wakeup.wait(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    wakeup.notify()
    assert await waiting == 2
