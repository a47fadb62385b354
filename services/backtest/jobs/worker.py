"""The code that runs inside a worker process (multiprocessing, spawn start method).

It imports numpy and the engines, never gRPC or SQLAlchemy, and talks to the server
only through its end of a pipe, in the typed messages of `protocol`. A worker stays up
between jobs (warm: its imports and the engine's first-run costs are paid once) and
runs one `Task` at a time until the server closes the pipe.

Results are written to files by the worker itself, so no large array crosses the pipe.
A sweep's worker keeps (thinned) only its best `keep_details` runs by the ranking metric
and saves those at the end: no job keeps more than that many per worker.
"""

from __future__ import annotations

import heapq
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from services.backtest.bars.backtest import BarRun, run_bar_backtest
from services.backtest.bars.candles import Candles
from services.backtest.jobs import results
from services.backtest.jobs.protocol import (
    Batch,
    DetailsKept,
    Progress,
    RunFinished,
    Task,
    TaskDone,
    TaskFailed,
    WorkerMessage,
)
from services.backtest.jobs.spec import JobSpec, Run
from services.backtest.strategies.catalog import StrategyCatalog

# Reports go to the server at most this often (and at the end of a task): a sweep of
# small runs would otherwise spend more on messages than on the runs.
REPORT_SECONDS = 0.1


def serve(pipe: Connection) -> None:
    """Entry point of a worker: runs the tasks it is sent until the pipe closes."""
    while True:
        try:
            task = pipe.recv()
        except (EOFError, OSError):
            return
        run_task(task, _Reporter(pipe.send))


class _Reporter:
    """Collects a task's messages and sends them as one Batch every REPORT_SECONDS,
    and at once with the message that ends the task."""

    def __init__(self, send: Callable[[Batch], None]) -> None:
        self._send = send
        self._pending: list[WorkerMessage] = []
        self._sent_at = time.monotonic()

    def __call__(self, message: WorkerMessage) -> None:
        self._pending.append(message)
        ends = isinstance(message, TaskDone | TaskFailed)
        if ends or time.monotonic() - self._sent_at >= REPORT_SECONDS:
            batch, self._pending = Batch(tuple(self._pending)), []
            self._sent_at = time.monotonic()
            self._send(batch)


def run_task(task: Task, send: Callable[[WorkerMessage], None]) -> None:
    """Runs the task's runs (here, or on its cluster) and reports each; ends with
    TaskDone or TaskFailed."""
    if task.cluster is not None:
        # Dask loads only in a worker that drives a cluster.
        from services.backtest.jobs.cluster import run_on_cluster  # noqa: PLC0415

        run_on_cluster(task, send, run_task)
        return
    try:
        spec = task.spec
        wanted = set(task.run_indices)
        selected = [run for run in spec.runs if run.index in wanted]
        runner = _tick_runner(spec) if spec.engine == "tick" else _BarRunner(spec)
        send(Progress(0.0, "loaded"))
        best: list[tuple[float, int, results.StoredRun]] = []
        for done, run in enumerate(selected, start=1):
            metrics, stored = runner(run)
            file_name = f"{spec.job_id}/run-{run.index}.npz"
            if spec.is_sweep:
                score = float(metrics[spec.rank_by])
                heapq.heappush(best, (score, -run.index, results.thinned(stored)))
                if len(best) > spec.keep_details:
                    heapq.heappop(best)
                file_name = ""
            else:
                results.save(Path(task.results_dir) / file_name, stored)
            send(RunFinished(run.index, run.parameters, metrics, file_name))
            send(Progress(done / len(selected), f"{done}/{len(selected)} runs"))
        for _, negative_index, stored in best:
            file_name = f"{spec.job_id}/run-{-negative_index}.npz"
            results.save(Path(task.results_dir) / file_name, stored)
            send(DetailsKept(-negative_index, file_name))
        send(TaskDone())
    except BaseException as error:  # a worker reports every failure; the server retires it
        traceback.print_exc()
        send(TaskFailed(f"{type(error).__name__}: {error}"))


class _BarRunner:
    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.candles = Candles.from_columns(np.load(spec.dataset_file, mmap_mode="r"))
        catalog = StrategyCatalog(Path(spec.strategies_dir) if spec.strategies_dir else None)
        self.strategy = catalog.get(spec.strategy)

    def __call__(self, run: Run) -> tuple[dict[str, float], results.StoredRun]:
        outcome = run_bar_backtest(self.candles, self.strategy, run.parameters, self.spec.bar)
        metrics = outcome.metrics
        # Flat fields: a shallow dict (dataclasses.asdict deep-copies, a sweep's cost).
        measured = {name: getattr(metrics, name) for name in metrics.__dataclass_fields__}
        return measured, stored_bar_run(self.candles, outcome)


def stored_bar_run(candles: Candles, outcome: BarRun) -> results.StoredRun:
    trades = outcome.result.trades
    return results.StoredRun(
        # A liquidated run's curve ends at the liquidation bar.
        equity_time_ms=candles.time[: len(outcome.result.equity)],
        equity=outcome.result.equity,
        trades={
            "direction": trades.direction,
            "entry_time_ms": candles.time[trades.entry_bar],
            "exit_time_ms": candles.time[trades.exit_bar],
            "quantity": trades.quantity,
            "entry_price": trades.entry_price,
            "exit_price": trades.exit_price,
            "pnl": trades.pnl,
            "return_fraction": trades.return_fraction,
            "fees": trades.fees,
            "entry_bar": trades.entry_bar,
            "exit_bar": trades.exit_bar,
            "exit_reason": trades.exit_reason,
        },
    )


def _tick_runner(spec: JobSpec) -> Any:
    # hftbacktest (and numba) load only in workers that run tick jobs.
    from services.backtest.tick.runner import TickRunner  # noqa: PLC0415

    return TickRunner(spec)
