"""SubmitBacktest's checks before the job manager sees a request: the strategy exists for
the engine, the settings are sane, the sweep's grids name the strategy's parameters once
each and give values. Every problem is a field violation (at most Violations.MAX_REPORTED
listed, then a count), all reported at once."""

from __future__ import annotations

from dataclasses import dataclass, replace

from common.validation import Violations
from services.backtest.bars.settings import BarSettings, Calendar
from services.backtest.datasets.store import DatasetStore
from services.backtest.jobs import admission
from services.backtest.jobs import manager as jobs
from services.backtest.jobs.records import Job
from services.backtest.jobs.spec import TickSettings
from services.backtest.tick.strategies import TICK_STRATEGIES
from strategies.base import StrategyDefinition, UnknownStrategy
from strategies.catalog import StrategyCatalog

DEFAULT_TICK_STRATEGY = "grid_market_maker"


@dataclass(frozen=True)
class Submission:
    """What a SubmitBacktest request asks for, in domain terms."""

    dataset_id: str
    engine: str  # "bar" | "tick"
    strategy: str
    parameters: dict[str, float]
    bar: BarSettings
    tick: TickSettings
    # (parameter name, values) of each sweep grid, as given; none for a single run.
    grids: tuple[tuple[str, tuple[float, ...]], ...] = ()
    rank_by: str = ""


class Submitter:
    def __init__(
        self, catalog: StrategyCatalog, datasets: DatasetStore, manager: jobs.JobManager
    ) -> None:
        self.catalog = catalog
        self.datasets = datasets
        self.jobs = manager

    def strategy_named(
        self, name: str, engine: str, problems: Violations
    ) -> StrategyDefinition | None:
        if engine == "tick":
            name = name or DEFAULT_TICK_STRATEGY
            if name in TICK_STRATEGIES:
                return TICK_STRATEGIES[name]
        else:
            try:
                return self.catalog.get(name)
            except UnknownStrategy:
                pass
        problems.add("strategy", f"no {engine} strategy {name[:80]!r}; see ListStrategies")
        return None

    async def submit(self, submission: Submission, problems: Violations) -> Job:
        """The queued job; raises InvalidArgument with `problems` and its own."""
        strategy = self.strategy_named(submission.strategy, submission.engine, problems)
        bar = admission.check_bar_settings(submission.bar, problems)
        tick = admission.check_tick_settings(submission.tick, problems)
        grid = check_grids(submission.grids, strategy, problems)
        problems.raise_if_any()
        assert strategy is not None
        # Annualization follows the dataset's calendar (unless periods_per_year is given).
        dataset = await self.datasets.get(submission.dataset_id)
        bar = replace(bar, calendar=Calendar(dataset.calendar or "continuous"))
        return await self.jobs.submit(
            admission.SubmitRequest(
                dataset_id=submission.dataset_id,
                engine=submission.engine,
                strategy=strategy.name,
                parameters=submission.parameters,
                bar=bar,
                tick=tick,
                grid=grid,
                rank_by=submission.rank_by,
            ),
            strategy,
        )


def check_grids(
    grids: tuple[tuple[str, tuple[float, ...]], ...],
    strategy: StrategyDefinition | None,
    problems: Violations,
) -> dict[str, list[float]]:
    """The sweep as parameter name -> values; each grid names a parameter of the strategy
    once and gives at least one value."""
    known = {parameter.name for parameter in strategy.parameters} if strategy else None
    strategy_name = strategy.name if strategy else ""
    grid: dict[str, list[float]] = {}
    for position, (name, values) in enumerate(grids):
        where = f"sweep.grids[{position}]"
        if name in grid:
            problems.add(f"{where}.name", "appears twice")
        elif known is not None and name not in known:
            problems.add(f"{where}.name", f"{strategy_name} has no parameter {name[:80]!r}")
        problems.require(bool(values), f"{where}.values", "needs at least one value")
        grid[name] = list(values)
    return grid
