"""The jobs repository on a real database (SQLite, and PostgreSQL when the server's
binaries are there): jobs and runs go in and come back as domain objects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common import migrate
from common.database import create_engine, session_factory, upgrade_in_child
from services.backtest.jobs.records import FAILED, QUEUED, RUNNING, SUCCEEDED, Job, RunResult
from services.backtest.storage.jobs import JobRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[JobRepository]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        await asyncio.to_thread(migrate.upgrade, "backtest", url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'backtest.db'}"
        await upgrade_in_child("backtest", url)
    engine = create_engine(url)
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    yield JobRepository(sessions)
    await engine.dispose()


def job(n: int, state: str = QUEUED, rank_by: str = "") -> Job:
    return Job(
        job_id=f"00000000-0000-0000-0000-{n:012d}",
        state=state,
        engine="bar",
        strategy="sma_cross",
        dataset_id="d",
        runs_total=3,
        runs_done=0,
        progress=0.0,
        message="",
        error="",
        rank_by=rank_by,
        submit_time=T0 + timedelta(minutes=n),
    )


def run_row(job_id: str, index: int, sharpe: float, file_name: str = "") -> dict[str, Any]:
    return {
        "job_id": job_id,
        "run_index": index,
        "parameters": {"fast": float(index)},
        "file_name": file_name,
        "total_return": 0.1,
        "cagr": 0.1,
        "sharpe_ratio": sharpe,
        "sortino_ratio": 1.0,
        "calmar_ratio": 1.0,
        "max_drawdown": 0.05,
        "max_drawdown_duration_ms": 60_000,
        "win_rate": 0.5,
        "profit_factor": 1.5,
        "sqn": 1.0,
        "time_in_market": 0.5,
        "trades": 4,
        "average_trade_return": 0.01,
        "buy_and_hold_return": 0.02,
        "final_equity": 11_000.0,
    }


async def test_a_job_comes_back_as_it_went_in(repository: JobRepository) -> None:
    added = job(1)
    await repository.add(added, {"job_id": added.job_id})

    assert await repository.get(added.job_id) == added
    assert await repository.get("missing") is None


async def test_pages_are_newest_first_and_filter_by_state(repository: JobRepository) -> None:
    for n, state in ((1, QUEUED), (2, SUCCEEDED), (3, QUEUED)):
        await repository.add(job(n, state), {})

    newest = await repository.page([], 0, 2)
    queued = await repository.page([QUEUED], 0, 10)

    assert [j.job_id[-1] for j in newest] == ["3", "2"]
    assert [j.job_id[-1] for j in queued] == ["3", "1"]


async def test_an_update_writes_the_job_and_its_runs_in_one_go(repository: JobRepository) -> None:
    added = job(1)
    await repository.add(added, {})

    written = await repository.update(
        added.job_id, [run_row(added.job_id, 1, 2.0)], state=RUNNING, message=None, runs_done=1
    )

    assert written == {"state": RUNNING, "runs_done": 1}
    assert await repository.get(added.job_id) == replace(added, state=RUNNING, runs_done=1)
    [stored] = await repository.runs(added.job_id, "")
    assert isinstance(stored, RunResult)
    assert (stored.run_index, stored.sharpe_ratio, stored.parameters) == (1, 2.0, {"fast": 1.0})


async def test_finishing_a_sweep_keeps_the_details_of_its_best_runs_only(
    repository: JobRepository,
) -> None:
    added = job(1, RUNNING, rank_by="sharpe_ratio")
    await repository.add(added, {})
    rows = [
        run_row(added.job_id, index, sharpe) for index, sharpe in ((1, 0.5), (2, 3.0), (3, 1.0))
    ]
    kept = {2: "j/run-2.npz", 3: "j/run-3.npz"}

    _, unwanted = await repository.finish(
        added.job_id,
        runs=rows,
        drop_runs=False,
        keep_best=("sharpe_ratio", 1, kept),
        state=SUCCEEDED,
    )
    ranked = await repository.runs(added.job_id, "sharpe_ratio")

    assert [(r.run_index, r.file_name) for r in ranked] == [(2, "j/run-2.npz"), (3, ""), (1, "")]
    assert unwanted == ["j/run-3.npz"]


async def test_a_cancelled_job_keeps_no_runs(repository: JobRepository) -> None:
    added = job(1, RUNNING)
    await repository.add(added, {})
    await repository.update(added.job_id, [run_row(added.job_id, 1, 1.0)])

    await repository.finish(
        added.job_id, runs=[], drop_runs=True, keep_best=None, state="cancelled"
    )

    assert await repository.runs(added.job_id, "") == []


async def test_jobs_cut_short_by_a_stop_end_failed(repository: JobRepository) -> None:
    for n, state in ((1, QUEUED), (2, RUNNING), (3, SUCCEEDED)):
        await repository.add(job(n, state), {})

    await repository.fail_unfinished("interrupted", T0)

    states = {j.job_id[-1]: (j.state, j.error) for j in await repository.page([], 0, 10)}
    assert states == {
        "1": (FAILED, "interrupted"),
        "2": (FAILED, "interrupted"),
        "3": (SUCCEEDED, ""),
    }
