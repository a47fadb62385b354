"""The jobs repository: jobs and their runs in the database, read back as domain
objects (`services.backtest.jobs.records`), so no ORM row leaves storage.

Jobs and runs are written through their tables (Core): the ORM's bulk insert and
update cost more than a small sweep's runs themselves.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, desc, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.backtest.jobs.records import QUEUED, RUNNING, Job, RunResult
from services.backtest.storage.models import JobRow, RunRow

_JOBS: Table = JobRow.__table__  # type: ignore[assignment]
_RUNS: Table = RunRow.__table__  # type: ignore[assignment]
_JOB_FIELDS = tuple(field.name for field in fields(Job))
_RUN_FIELDS = tuple(field.name for field in fields(RunResult))
_TIMES = ("submit_time", "start_time", "end_time")


class JobRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def fail_unfinished(self, error: str, now: datetime) -> None:
        """Jobs left queued or running (by a stop) end as failed."""
        async with self.sessions.begin() as session:
            await session.execute(
                _JOBS.update()
                .where(_JOBS.c.state.in_((QUEUED, RUNNING)))
                .values(state="failed", error=error, end_time=now)
            )

    async def add(self, job: Job, spec: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await session.execute(_JOBS.insert().values(**asdict(job), spec=spec))

    async def get(self, job_id: str) -> Job | None:
        async with self.sessions() as session:
            row = (await session.execute(select(_JOBS).where(_JOBS.c.job_id == job_id))).first()
        return _job(row._mapping) if row is not None else None

    async def page(self, states: list[str], offset: int, limit: int) -> list[Job]:
        query = select(_JOBS).order_by(desc(_JOBS.c.submit_time), _JOBS.c.job_id)
        if states:
            query = query.where(_JOBS.c.state.in_(states))
        async with self.sessions() as session:
            rows = await session.execute(query.offset(offset).limit(limit))
        return [_job(row._mapping) for row in rows]

    async def update(
        self, job_id: str, runs: list[dict[str, Any]] | None = None, **values: Any
    ) -> dict[str, Any]:
        """Changes the job (and adds `runs`, as `runs` table rows) in one transaction;
        the values written (None ones left out)."""
        async with self.sessions.begin() as session:
            if runs:
                await session.execute(_RUNS.insert(), runs)
            return await _write_job(session, job_id, values)

    async def finish(
        self,
        job_id: str,
        *,
        runs: list[dict[str, Any]],
        drop_runs: bool,
        keep_best: tuple[str, int, dict[int, str]] | None,
        **values: Any,
    ) -> tuple[dict[str, Any], list[str]]:
        """One transaction: the last runs (or all dropped), a sweep's pruning to its best
        runs' details and the job's end. `keep_best` is (rank_by, count, kept: run index
        -> details file). Returns the values written and the detail files no longer
        wanted (the caller deletes them)."""
        unwanted: list[str] = []
        async with self.sessions.begin() as session:
            if drop_runs:
                await session.execute(delete(_RUNS).where(_RUNS.c.job_id == job_id))
            elif runs:
                await session.execute(_RUNS.insert(), runs)
            if keep_best is not None:
                unwanted = await _prune(session, job_id, *keep_best)
            written = await _write_job(session, job_id, values)
        return written, unwanted

    async def runs(self, job_id: str, rank_by: str) -> list[RunResult]:
        query = select(_RUNS).where(_RUNS.c.job_id == job_id)
        if rank_by:
            query = query.order_by(desc(_RUNS.c[rank_by]), _RUNS.c.run_index)
        async with self.sessions() as session:
            rows = await session.execute(query)
        return [RunResult(**{name: row._mapping[name] for name in _RUN_FIELDS}) for row in rows]


async def _write_job(session: AsyncSession, job_id: str, values: dict[str, Any]) -> dict[str, Any]:
    values = {name: value for name, value in values.items() if value is not None}
    if values:
        await session.execute(_JOBS.update().where(_JOBS.c.job_id == job_id).values(**values))
    return values


async def _prune(
    session: AsyncSession, job_id: str, rank_by: str, count: int, kept: dict[int, str]
) -> list[str]:
    """Names the details files of the sweep's best `count` runs on their rows (each
    worker saved its own best ones); the other files are returned, unwanted."""
    best = set(
        await session.scalars(
            select(_RUNS.c.run_index)
            .where(_RUNS.c.job_id == job_id)
            .order_by(desc(_RUNS.c[rank_by]), _RUNS.c.run_index)
            .limit(count)
        )
    )
    named = [
        {"run_job_id": job_id, "run_index_": index, "kept_file": file_name}
        for index, file_name in kept.items()
        if index in best
    ]
    if named:
        await session.execute(
            _RUNS.update()
            .where(
                _RUNS.c.job_id == bindparam("run_job_id"),
                _RUNS.c.run_index == bindparam("run_index_"),
            )
            .values(file_name=bindparam("kept_file")),
            named,
        )
    return [file_name for index, file_name in kept.items() if index not in best]


def _job(mapping: Any) -> Job:
    values = {name: mapping[name] for name in _JOB_FIELDS}
    for name in _TIMES:
        values[name] = _utc(values[name])
    return Job(**values)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands times back without their zone; they were written in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
