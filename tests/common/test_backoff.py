"""Backoff waits grow to the maximum, with jitter, and start over after a success."""

from __future__ import annotations

import random

import pytest

from common.backoff import Backoff


def test_steps_double_to_the_maximum_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda _low, high: high)  # the top of each range
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.2


def test_jitter_stays_within_bounds() -> None:
    backoff = Backoff(0.2, 1.0)
    assert all(0.1 <= backoff.next() <= 1.0 for _ in range(100))
