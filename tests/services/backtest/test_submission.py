"""SubmitBacktest's sweep checks, before any job exists: each grid names a parameter of
the strategy once and gives values; every problem is reported, at most twenty listed."""

from __future__ import annotations

import pytest

from common.errors import InvalidArgument
from common.validation import Violations
from services.backtest.strategies.catalog import StrategyCatalog
from services.backtest.submission import check_grids


def test_grids_become_the_sweep_by_parameter_name() -> None:
    strategy = StrategyCatalog(None).get("sma_cross")
    problems = Violations()

    grid = check_grids((("fast", (5.0, 10.0)), ("slow", (30.0,))), strategy, problems)

    assert grid == {"fast": [5.0, 10.0], "slow": [30.0]}
    assert not problems


def test_each_bad_grid_is_named() -> None:
    strategy = StrategyCatalog(None).get("sma_cross")
    problems = Violations()

    check_grids((("fast", (5.0,)), ("fast", (6.0,)), ("nope", ())), strategy, problems)

    with pytest.raises(InvalidArgument) as raised:
        problems.raise_if_any()
    assert [(v.field, v.description) for v in raised.value.violations] == [
        ("sweep.grids[1].name", "appears twice"),
        ("sweep.grids[2].name", "sma_cross has no parameter 'nope'"),
        ("sweep.grids[2].values", "needs at least one value"),
    ]


def test_a_thousand_problems_are_twenty_listed_and_a_count() -> None:
    strategy = StrategyCatalog(None).get("sma_cross")
    problems = Violations()

    check_grids(tuple((f"nope{k}", ()) for k in range(500)), strategy, problems)

    with pytest.raises(InvalidArgument) as raised:
        problems.raise_if_any()
    violations = raised.value.violations
    assert len(violations) == Violations.MAX_REPORTED + 1
    assert violations[-1].description == "and 980 more violations, not listed"
