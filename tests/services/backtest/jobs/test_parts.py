"""The job manager's parts on their own: admission's memory estimate, the queue's
launch decisions, how the local backend deals a sweep's runs, the typed pipe protocol
between real processes, and the memory watchdog on a real process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from multiprocessing.connection import Connection

import pytest

from common.errors import ResourceExhausted
from common.memory import MIB, rss_bytes
from services.backtest.jobs import admission
from services.backtest.jobs.backend import DaskBackend, LocalBackend
from services.backtest.jobs.protocol import (
    Batch,
    Progress,
    RunFinished,
    TaskDone,
    WorkerMessage,
    receive,
)
from services.backtest.jobs.scheduling import JobQueue, Queued
from services.backtest.jobs.spec import JobSpec, Run
from services.backtest.jobs.watchdog import watch_memory
from services.backtest.settings import ClusterSettings

GUARD_SECONDS = 10.0


def spec(job_id: str, runs: int) -> JobSpec:
    first = 0 if runs == 1 else 1
    return JobSpec(
        job_id=job_id,
        engine="bar",
        strategy="sma_cross",
        dataset_file="unused.npy",
        runs=tuple(Run(first + k, {"fast": float(k)}) for k in range(runs)),
        rank_by="sharpe_ratio" if runs > 1 else "",
    )


def test_a_bar_job_over_the_worker_budget_is_refused_before_it_starts() -> None:
    admission.check_worker_budget("bar", 1_000_000, 0, 768)  # ~263 MiB: fits

    with pytest.raises(ResourceExhausted) as refused:
        admission.check_worker_budget("bar", 10_000_000, 0, 768)

    assert refused.value.reason == "WORKER_MEMORY_BUDGET"
    assert refused.value.metadata == {"estimated_mib": "1911", "budget_mib": "768"}


def test_queued_jobs_start_in_order_while_workers_are_free() -> None:
    queue = JobQueue(max_workers=2)
    local = LocalBackend()
    for job_id in ("a", "b", "c"):
        queue.append(Queued(spec(job_id, 1), local, candles=1_000_000))

    launched = list(queue.due(busy=0, idle=2))

    assert [(launch.queued.spec.job_id, launch.processes) for launch in launched] == [
        ("a", 1),
        ("b", 1),
    ]
    assert len(queue) == 1
    assert list(queue.due(busy=2, idle=0)) == []


def test_a_small_sweep_runs_on_the_warm_worker_and_warms_another() -> None:
    queue = JobQueue(max_workers=2)
    queue.append(Queued(spec("s", 4), LocalBackend(), candles=5_000))

    [launch] = queue.due(busy=0, idle=1)

    assert (launch.processes, launch.warm) == (1, 1)


def test_a_big_sweep_spreads_over_cold_workers_too() -> None:
    queue = JobQueue(max_workers=2)
    queue.append(Queued(spec("s", 4), LocalBackend(), candles=1_000_000))

    [launch] = queue.due(busy=0, idle=0)

    assert (launch.processes, launch.warm) == (2, 0)


def test_a_cancelled_queued_job_leaves_the_queue() -> None:
    queue = JobQueue(max_workers=1)
    queue.append(Queued(spec("a", 1), LocalBackend(), candles=10))

    assert queue.remove("a")
    assert not queue.remove("a")
    assert list(queue.due(busy=0, idle=0)) == []


def test_the_local_backend_deals_a_sweep_round_robin_and_dask_takes_one_driver() -> None:
    sweep = spec("s", 5)
    dask = DaskBackend(ClusterSettings(scheduler="tcp://127.0.0.1:8786"))

    dealt = LocalBackend().tasks(sweep, 2, "/results")
    [driver] = dask.tasks(sweep, dask.processes(sweep, 2), "/results")

    assert [task.run_indices for task in dealt] == [(1, 3, 5), (2, 4)]
    assert all(task.cluster is None for task in dealt)
    assert driver.run_indices == (1, 2, 3, 4, 5)
    assert driver.cluster is not None
    assert driver.cluster.address == "tcp://127.0.0.1:8786"


def _send_batches(pipe: Connection) -> None:
    pipe.send(Batch((Progress(0.0, "loaded"),)))
    pipe.send(Batch((RunFinished(1, {"fast": 5.0}, {"sharpe_ratio": 1.5}, ""), TaskDone())))
    pipe.close()


async def test_a_workers_batches_arrive_typed_and_in_order_then_its_close() -> None:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=True)
    process = context.Process(target=_send_batches, args=(theirs,))
    process.start()
    theirs.close()
    received: list[WorkerMessage] = []
    closed = False
    try:
        while not closed:
            messages, closed = await asyncio.wait_for(receive(ours), GUARD_SECONDS)
            received += messages
    finally:
        process.join(GUARD_SECONDS)
        ours.close()

    assert received == [
        Progress(0.0, "loaded"),
        RunFinished(1, {"fast": 5.0}, {"sharpe_ratio": 1.5}, ""),
        TaskDone(),
    ]


async def test_the_watchdog_reports_a_process_over_its_budget() -> None:
    over = asyncio.Event()
    budget = rss_bytes(os.getpid()) - MIB  # this process is over it
    watching = asyncio.create_task(watch_memory(lambda: [os.getpid()], budget, over.set))
    try:
        await asyncio.wait_for(over.wait(), GUARD_SECONDS)
    finally:
        watching.cancel()


async def test_the_watchdog_leaves_a_process_within_its_budget_alone() -> None:
    over = asyncio.Event()
    rounds = 0
    three_rounds = asyncio.Event()

    def pids() -> list[int]:
        nonlocal rounds
        rounds += 1
        if rounds >= 3:
            three_rounds.set()
        return [os.getpid()]

    budget = rss_bytes(os.getpid()) + 512 * MIB
    watching = asyncio.create_task(watch_memory(pids, budget, over.set))
    try:
        await asyncio.wait_for(three_rounds.wait(), GUARD_SECONDS)
    finally:
        watching.cancel()

    assert not over.is_set()
