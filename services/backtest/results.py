"""GetResult's and ExportResult's reads: which run a request names, and the page of its
trades and the sample of its equity curve kept on disk (numpy, loaded on demand)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from common import paging
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.backtest.jobs import manager as jobs
from services.backtest.jobs.records import Job, RunResult
from services.backtest.reasons import Reason

DEFAULT_EQUITY_POINTS = 1000
MAX_EQUITY_POINTS = 20_000


@dataclass(frozen=True)
class RunDetails:
    """A page of a run's trades (column arrays) and a sample of its equity curve."""

    page: paging.Page
    trades: dict[str, Any]
    trade_count: int
    equity_time_ms: list[int]
    equity: list[float]


@dataclass(frozen=True)
class ResultView:
    """A succeeded job's run: its metrics (the run), the job's runs ranked, its details."""

    job: Job
    run: RunResult
    ranked: list[RunResult]
    details: RunDetails | None


@dataclass(frozen=True)
class Export:
    file_name: str
    csv: str
    rows: int


class ResultReader:
    def __init__(self, manager: jobs.JobManager) -> None:
        self.jobs = manager

    async def result(
        self, job: Job, run_index: int, page: paging.Page, max_points: int
    ) -> ResultView:
        """The run a request names, with a page of its trades and its equity sample."""
        run, ranked = await self.run_of(job, run_index)
        return ResultView(job, run, ranked, await self.details(run, page, max_points))

    async def run_of(self, job: Job, run_index: int) -> tuple[RunResult, list[RunResult]]:
        """The run a request names (0: the single run, or the sweep's best), and the
        job's runs ranked."""
        _require_succeeded(job)
        ranked = await self.jobs.runs(job.job_id, job.rank_by)
        if run_index == 0:
            run = ranked[0] if ranked else None
        else:
            run = next((r for r in ranked if r.run_index == run_index), None)
        if run is None:
            raise InvalidArgument(
                [FieldViolation("run_index", f"job {job.job_id} has runs 1..{len(ranked)}")]
            )
        return run, ranked

    async def details(
        self, run: RunResult, page: paging.Page, max_points: int
    ) -> RunDetails | None:
        """The run's trades on `page` and up to `max_points` of its equity curve (0: the
        default); None for a sweep run that kept no details."""
        if not run.file_name:
            return None
        from services.backtest.jobs import results  # noqa: PLC0415 - numpy, on demand

        stored = await asyncio.to_thread(results.load, self.jobs.results_dir / run.file_name)
        points = min(max_points or DEFAULT_EQUITY_POINTS, MAX_EQUITY_POINTS)
        times, values = results.equity_sample(stored, points)
        return RunDetails(
            page=page,
            trades=results.trade_page(stored, page.offset, page.size),
            trade_count=stored.trade_count,
            equity_time_ms=times.tolist(),
            equity=values.tolist(),
        )

    async def export(self, job: Job, run_index: int, table: str) -> Export:
        """One table of a run ("trades" or "equity_curve") as CSV."""
        run, ranked = await self.run_of(job, run_index)
        if not run.file_name:
            kept = ", ".join(str(r.run_index) for r in ranked)
            raise FailedPrecondition(
                f"run {run.run_index} of job {job.job_id} kept no trades or curve (a sweep "
                f"keeps those of its best runs: {kept})",
                reason=Reason.RUN_DETAILS_NOT_KEPT,
            )
        from services.backtest import export  # noqa: PLC0415 - numpy, on demand
        from services.backtest.jobs import results  # noqa: PLC0415 - numpy, on demand

        stored = await asyncio.to_thread(results.load, self.jobs.results_dir / run.file_name)
        text, rows = await asyncio.to_thread(export.to_csv, stored, table)
        name = f"{job.job_id}-run-{run.run_index}-{table.replace('_', '-')}.csv"
        return Export(file_name=name, csv=text, rows=rows)


def _require_succeeded(job: Job) -> None:
    if job.state != jobs.SUCCEEDED:
        detail = f": {job.error}" if job.error else ""
        raise FailedPrecondition(
            f"job {job.job_id} is {job.state}{detail}; results exist once it has succeeded",
            reason=Reason.JOB_NOT_SUCCEEDED,
        )
