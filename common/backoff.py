"""Exponential backoff with full jitter, for loops that reconnect to a peer."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the seconds to wait before the next attempt; `reset()` after a success.

    Doubles from `initial` up to `maximum`; each wait is drawn uniformly from [initial/2,
    the current step] so that many clients that lost the same peer do not come back at once.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._step = initial

    def next(self) -> float:
        wait = random.uniform(self.initial / 2, self._step)
        self._step = min(self._step * 2, self.maximum)
        return wait

    def reset(self) -> None:
        self._step = self.initial
