"""A sweep on a Dask cluster, driven from a job worker process (see `backend`).

The worker process that receives a `Task` with a `cluster` becomes the cluster's
client: it loads the dataset and scatters it to the cluster's workers once (every run
reads that one copy), ships the user strategy module's source with the sweep (the
cluster's workers load it from there; a module they cannot load fails the sweep with
an error naming it), submits the runs in chunks (which send back numbers only),
reports every finished run in the same messages as a local worker, and at the end has
the details (curve and trades) of the sweep's best runs computed once more, for those
runs alone. Dask retries a chunk whose worker was lost (and, `RETRIES` times, one that
raised). SIGTERM (cancel, the memory watchdog, a stop) cancels the sweep's tasks on
the cluster before the process goes.

The cluster's workers run this module too: EdgeQuant must be installed there, same
version (results come back as pickles of its classes).
"""

from __future__ import annotations

import hashlib
import heapq
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from services.backtest.bars.backtest import run_bar_backtest
from services.backtest.jobs import results
from services.backtest.jobs.protocol import (
    ClusterTarget,
    DetailsKept,
    Progress,
    RunFinished,
    Task,
    TaskDone,
    TaskFailed,
    WorkerMessage,
)
from services.backtest.jobs.spec import JobSpec, Run
from services.backtest.reasons import Reason
from strategies.base import StrategyDefinition
from strategies.candles import Candles
from strategies.catalog import StrategyCatalog, load_user_strategy

# How long the client waits for the scheduler, and for a first worker.
CONNECT_SECONDS = 5.0
# Times Dask reruns a chunk that raised (a lost worker's chunks are rescheduled anyway).
RETRIES = 2
# A sweep is cut into at least this many chunks (and at least CHUNKS_PER_THREAD per
# cluster worker thread): progress comes per chunk, and a lost worker loses only its
# chunk; a chunk's scheduling (~ms) stays far below its runs' time.
MIN_CHUNKS = 50
CHUNKS_PER_THREAD = 4


class ClusterUnavailable(Exception):
    """The scheduler does not answer, or has no workers."""


class _Stopped(BaseException):
    """SIGTERM arrived while the sweep ran on the cluster."""


@dataclass(frozen=True)
class StrategySource:
    """A user strategy module, as shipped to the cluster's workers."""

    name: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


# What a chunk sends back per run: (run index, parameters, metrics). Only numbers: the
# details (curve and trades) of the sweep's best runs are computed again at the end, for
# those runs alone, rather than shipped for every chunk's best.
Measured = tuple[int, dict[str, float], dict[str, float]]


def run_on_cluster(
    task: Task,
    send: Callable[[WorkerMessage], None],
    run_locally: Callable[[Task, Callable[[WorkerMessage], None]], None],
) -> None:
    """Runs the task's runs on its cluster, reporting like a local worker; falls back to
    `run_locally` when the cluster does not answer and the target allows it."""
    target = task.cluster
    assert target is not None
    try:
        client = _connect(target)
    except ClusterUnavailable as error:
        if target.fallback_to_local:
            send(Progress(0.0, f"on this device: {error}"))
            run_locally(replace(task, cluster=None), send)
        else:
            send(TaskFailed(f"{Reason.CLUSTER_UNAVAILABLE}: {error}"))
        return
    futures: list[Any] = []
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        _sweep(client, task, send, futures)
    except _Stopped:
        send(TaskFailed("stopped"))
    except Exception as error:  # reported as the job's error, like a local worker's
        send(TaskFailed(f"{type(error).__name__}: {error}"))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            # Forgets the sweep's tasks on the scheduler: none stays queued or
            # processing for a job that is over.
            client.cancel(futures, force=True)
            client.close(timeout=CONNECT_SECONDS)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - a signal handler
    raise _Stopped


def _connect(target: ClusterTarget) -> Any:
    try:
        from distributed import Client  # noqa: PLC0415 - only a driving worker loads Dask
        from distributed.security import Security  # noqa: PLC0415
    except ImportError as error:
        raise ClusterUnavailable(
            "Dask is not installed in this venv (pip install 'edgequant[cluster]')"
        ) from error

    security = None
    if target.address.startswith("tls://"):
        security = Security(
            tls_ca_file=target.tls_ca_file,
            tls_client_cert=target.tls_cert_file,
            tls_client_key=target.tls_key_file,
            require_encryption=True,
        )
    try:
        client = Client(target.address, security=security, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        raise ClusterUnavailable(
            f"the Dask scheduler at {target.address} does not answer ({error})"
        ) from error
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        client.close()
        raise ClusterUnavailable(
            f"the Dask scheduler at {target.address} has no workers"
        ) from error
    return client


def _sweep(
    client: Any, task: Task, send: Callable[[WorkerMessage], None], futures: list[Any]
) -> None:
    from distributed import as_completed  # noqa: PLC0415

    spec = task.spec
    source = strategy_source(spec)
    problems = client.run(load_check, spec.strategy, source)
    for address, problem in problems.items():
        if problem:
            raise RuntimeError(
                f"the cluster's worker {address} cannot load strategy module "
                f"{spec.strategy}.py: {problem}"
            )
    columns = np.load(spec.dataset_file)  # a copy, not a map: it is pickled once
    # Once per sweep: every chunk reads this one copy on its worker.
    [dataset] = client.scatter([columns], broadcast=True, hash=False)
    del columns
    wanted = set(task.run_indices)
    selected = [run for run in spec.runs if run.index in wanted]
    threads = sum(client.nthreads().values()) or 1
    chunks = max(MIN_CHUNKS, threads * CHUNKS_PER_THREAD)
    for number, chunk in enumerate(_chunks(selected, chunks)):
        futures.append(
            client.submit(
                run_chunk,
                spec,
                chunk,
                dataset,
                source,
                key=f"edgequant-{spec.job_id}-{number}",
                retries=RETRIES,
                pure=False,
            )
        )
    send(Progress(0.0, "submitted"))
    # The best keep_details runs by the ranking metric (ties: the lower index), as the
    # service ranks them: a min-heap of (score, -index).
    best: list[tuple[float, int]] = []
    done = 0
    for future in as_completed(futures):
        measured: tuple[Measured, ...] = future.result()
        for index, parameters, metrics in measured:
            send(RunFinished(index, parameters, metrics, ""))
            heapq.heappush(best, (float(metrics[spec.rank_by]), -index))
            if len(best) > spec.keep_details:
                heapq.heappop(best)
        done += len(measured)
        send(Progress(done / len(selected), f"{done}/{len(selected)} runs"))
    best_indices = {-negative_index for _, negative_index in best}
    kept = tuple(run for run in selected if run.index in best_indices)
    # One task per run: the details spread over the cluster's workers.
    details = [
        client.submit(
            run_details,
            spec,
            (run,),
            dataset,
            source,
            key=f"edgequant-{spec.job_id}-details-{run.index}",
            retries=RETRIES,
            pure=False,
        )
        for run in kept
    ]
    futures += details
    for future in details:
        stored_runs: tuple[tuple[int, results.StoredRun], ...] = future.result()
        for index, stored in stored_runs:
            file_name = f"{spec.job_id}/run-{index}.npz"
            results.save(Path(task.results_dir) / file_name, stored)
            send(DetailsKept(index, file_name))
    send(TaskDone())


def _chunks(runs: list[Run], count: int) -> Iterator[tuple[Run, ...]]:
    size = max(1, -(-len(runs) // max(count, 1)))
    for start in range(0, len(runs), size):
        yield tuple(runs[start : start + size])


def strategy_source(spec: JobSpec) -> StrategySource | None:
    """The user module the sweep's strategy comes from (None for a built-in)."""
    if spec.strategy in {strategy.name for strategy in StrategyCatalog(None)}:
        return None
    path = Path(spec.strategies_dir) / f"{spec.strategy}.py"
    try:
        return StrategySource(spec.strategy, path.read_text())
    except OSError as error:
        raise RuntimeError(
            f"strategy module {path} cannot be read to ship it to the cluster: {error}"
        ) from error


# --- on the cluster's workers ------------------------------------------------------

_LOADED: dict[tuple[str, str], StrategyDefinition] = {}


def strategy_on_worker(name: str, source: StrategySource | None) -> StrategyDefinition:
    """The sweep's strategy in this (cluster worker) process, loaded once per module
    version from the shipped source."""
    if source is None:
        return StrategyCatalog(None).get(name)
    key = (source.name, source.digest)
    if key not in _LOADED:
        directory = Path(tempfile.gettempdir()) / "edgequant-strategies" / source.digest
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{source.name}.py"
        # Written aside, then renamed over: the workers of one machine (and a worker's
        # threads) share this file, and one rewriting it in place (truncate, write) let
        # another import it empty.
        descriptor, partial = tempfile.mkstemp(dir=directory, suffix=".partial")
        with os.fdopen(descriptor, "w") as file:
            file.write(source.text)
        os.replace(partial, path)
        _LOADED[key] = load_user_strategy(path)
    return _LOADED[key]


def load_check(name: str, source: StrategySource | None) -> str:
    """ "" when the strategy loads on this worker, else what went wrong."""
    try:
        strategy_on_worker(name, source)
    except Exception as error:  # any failure of a user module, reported by name
        return f"{type(error).__name__}: {error}"
    return ""


def run_chunk(
    spec: JobSpec, chunk: tuple[Run, ...], columns: Any, source: StrategySource | None
) -> tuple[Measured, ...]:
    """On a cluster worker: the chunk's runs, measured."""
    candles = Candles.from_columns(columns)
    strategy = strategy_on_worker(spec.strategy, source)
    measured = []
    for run in chunk:
        metrics = run_bar_backtest(candles, strategy, run.parameters, spec.bar).metrics
        values = {name: getattr(metrics, name) for name in metrics.__dataclass_fields__}
        measured.append((run.index, run.parameters, values))
    return tuple(measured)


def run_details(
    spec: JobSpec, runs: tuple[Run, ...], columns: Any, source: StrategySource | None
) -> tuple[tuple[int, results.StoredRun], ...]:
    """On a cluster worker: the curve and trades of the sweep's best runs (the engine is
    deterministic: the same runs give the same details), thinned as stored."""
    from services.backtest.jobs.worker import stored_bar_run  # noqa: PLC0415 - no cycle

    candles = Candles.from_columns(columns)
    strategy = strategy_on_worker(spec.strategy, source)
    return tuple(
        (
            run.index,
            results.thinned(
                stored_bar_run(
                    candles, run_bar_backtest(candles, strategy, run.parameters, spec.bar)
                )
            ),
        )
        for run in runs
    )
