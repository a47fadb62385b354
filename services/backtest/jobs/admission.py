"""Admission: a submitted backtest, checked and expanded into the runs a worker will do.

Every check happens here, before anything is stored or started: unknown strategy or
parameter, values outside a parameter's range, bad execution settings, a sweep too
large, a dataset of the wrong kind (each problem names its field), and a worker that
would not fit its memory budget.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from common.errors import ResourceExhausted
from common.memory import MIB
from common.validation import Violations
from services.backtest.bars import metric_names
from services.backtest.bars.settings import BarSettings, Sizing
from services.backtest.datasets.dataset import Dataset
from services.backtest.jobs.spec import Run, TickSettings
from services.backtest.reasons import Reason
from services.backtest.tick.strategies import QUEUE_MODELS
from strategies.base import StrategyDefinition

DEFAULT_RANK_BY = "sharpe_ratio"
# A worker's fixed cost: the interpreter and numpy (bar), plus hftbacktest and numba (tick).
BAR_WORKER_BASE_BYTES = 80 * MIB
TICK_WORKER_BASE_BYTES = 640 * MIB  # measured ~605 MiB peak: numba/LLVM compiling
# Float64 arrays as long as the candles that one bar run holds at its peak.
BAR_ARRAYS_PER_CANDLE = 24
# hftbacktest's events (64 bytes each) decompressed from the stored .npz, with room.
TICK_BYTES_PER_STORED_BYTE = 12


@dataclass(frozen=True)
class SubmitRequest:
    dataset_id: str
    engine: str  # "bar" | "tick"
    strategy: str
    parameters: dict[str, float]
    bar: BarSettings
    tick: TickSettings
    # Parameter name -> values; empty for a single run.
    grid: dict[str, list[float]] = field(default_factory=dict)
    rank_by: str = ""


def check_bar_settings(settings: BarSettings, problems: Violations) -> BarSettings:
    """The settings with defaults filled in (0 cash -> 10,000; 0 fraction -> 1)."""
    if settings.initial_cash == 0:
        settings = replace(settings, initial_cash=10_000.0)
    if settings.size == 0 and settings.sizing is not Sizing.FIXED_QUANTITY:
        settings = replace(settings, size=1.0)
    checks = (
        ("initial_cash", settings.initial_cash > 0, "must be positive"),
        ("fee_rate", 0 <= settings.fee_rate < 0.1, "must be within [0, 0.1)"),
        ("fee_fixed", settings.fee_fixed >= 0, "must not be negative"),
        ("slippage_bps", 0 <= settings.slippage_bps < 1000, "must be within [0, 1000)"),
        ("stop_loss", 0 <= settings.stop_loss < 1, "must be within [0, 1)"),
        ("take_profit", settings.take_profit >= 0, "must not be negative"),
        ("maintenance_margin", 0 <= settings.maintenance_margin < 1, "must be within [0, 1)"),
        ("periods_per_year", settings.periods_per_year >= 0, "must not be negative"),
    )
    for name, ok, problem in checks:
        if not ok or not math.isfinite(getattr(settings, name)):
            problems.add(f"bar_settings.{name}", problem)
    if settings.sizing is Sizing.FIXED_QUANTITY:
        problems.require(
            settings.size > 0, "bar_settings.size", "a fixed quantity must be positive"
        )
    else:
        problems.require(
            0 < settings.size <= 1, "bar_settings.size", "a fraction must be within (0, 1]"
        )
    return settings


def check_tick_settings(settings: TickSettings, problems: Violations) -> TickSettings:
    """The settings with defaults filled in (0 cash -> 10,000)."""
    if settings.initial_cash == 0:
        settings = replace(settings, initial_cash=10_000.0)
    checks = (
        ("maker_fee", -0.01 <= settings.maker_fee < 0.01, "must be within [-0.01, 0.01)"),
        ("taker_fee", -0.01 <= settings.taker_fee < 0.01, "must be within [-0.01, 0.01)"),
        ("entry_latency", settings.entry_latency_ns >= 0, "must not be negative"),
        ("response_latency", settings.response_latency_ns >= 0, "must not be negative"),
        ("initial_cash", settings.initial_cash > 0, "must be positive"),
        (
            "queue_model",
            settings.queue_model in QUEUE_MODELS,
            f"must be one of {', '.join(QUEUE_MODELS)}",
        ),
    )
    for name, ok, problem in checks:
        problems.require(ok, f"tick_settings.{name}", problem)
    return settings


def expand_runs(
    request: SubmitRequest, strategy: StrategyDefinition, max_runs: int
) -> tuple[tuple[Run, ...], int]:
    """The runs of the request, and how many grid points were skipped because they break a
    constraint between parameters (e.g. fast >= slow): a sweep skips those, as
    backtesting.py's `optimize(constraint=...)` does."""
    if not request.grid:
        values, problems = strategy.resolve(request.parameters)
        if not problems:
            problems = strategy.constraint_problems(values)
        _refuse((f"parameters.{name}", problem) for name, problem in problems)
        return (Run(0, values),), 0
    found = Violations()
    known = {parameter.name for parameter in strategy.parameters}
    size = 1
    for position, (name, grid_values) in enumerate(request.grid.items()):
        where = f"sweep.grids[{position}]"
        found.require(name in known, f"{where}.name", f"{strategy.name} has no parameter {name!r}")
        found.require(bool(grid_values), f"{where}.values", "needs at least one value")
        size *= max(len(grid_values), 1)
    found.require(size <= max_runs, "sweep.grids", f"{size} runs; at most {max_runs} are allowed")
    found.raise_if_any()
    runs: list[Run] = []
    skipped = 0
    names = list(request.grid)
    for combination in itertools.product(*request.grid.values()):
        given = {**request.parameters, **dict(zip(names, combination, strict=True))}
        values, problems = strategy.resolve(given)
        _refuse((f"sweep.grids.{name}", problem) for name, problem in problems)
        if strategy.constraint_problems(values):
            skipped += 1
            continue
        runs.append(Run(len(runs) + 1, values))
    if not runs:
        _refuse([("sweep.grids", "every combination breaks a parameter constraint")])
    return tuple(runs), skipped


def check_rank_by(rank_by: str) -> str:
    if not rank_by:
        return DEFAULT_RANK_BY
    if rank_by not in metric_names.RANKABLE:
        choices = ", ".join(metric_names.RANKABLE)
        _refuse([("sweep.rank_by", f"must be one of {choices}")])
    return rank_by


def check_dataset(dataset: Dataset, engine: str) -> None:
    wanted = "candles" if engine == "bar" else "ticks"
    if dataset.kind != wanted:
        _refuse(
            [
                (
                    "dataset_id",
                    f"the {engine} engine needs a {wanted} dataset; "
                    f"{dataset.dataset_id} holds {dataset.kind}",
                )
            ]
        )


def _refuse(problems: Iterable[tuple[str, str]]) -> None:
    """INVALID_ARGUMENT naming each (field, problem), if there are any."""
    found = Violations()
    for field_name, problem in problems:
        found.add(field_name, problem)
    found.raise_if_any()


def check_worker_budget(engine: str, rows: int, size_bytes: int, budget_mib: int) -> None:
    """Refuses a job whose worker would not fit its budget, before it starts."""
    if engine == "bar":
        estimate = BAR_WORKER_BASE_BYTES + rows * 8 * BAR_ARRAYS_PER_CANDLE
    else:
        estimate = TICK_WORKER_BASE_BYTES + size_bytes * TICK_BYTES_PER_STORED_BYTE
    if estimate > budget_mib * MIB:
        raise ResourceExhausted(
            f"a {engine} worker for this dataset needs about {estimate // MIB} MiB, over the "
            f"worker budget of {budget_mib} MiB "
            "(backtest.jobs.worker_budget_mib); use a shorter dataset or raise the budget",
            reason=Reason.WORKER_MEMORY_BUDGET,
            metadata={"estimated_mib": str(estimate // MIB), "budget_mib": str(budget_mib)},
        )
