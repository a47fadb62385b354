"""The code that runs inside a worker process (multiprocessing, spawn start method).

It imports numpy and the engines, never gRPC or SQLAlchemy, and talks to the server
only through its end of a pipe:

    ("progress", fraction, message)       fraction of this worker's share, 0..1
    ("run", index, parameters, metrics, file_name)   file_name "" in a sweep: see "kept"
    ("kept", index, file_name)            a sweep run whose curve and trades were saved
    ("done",) | ("error", message)

Results are written to files by the worker itself, so no large array crosses the pipe.
A sweep's worker keeps (thinned) only its best `keep_details` runs by the ranking metric
and saves those at the end: no job keeps more than that many per worker.
"""

from __future__ import annotations

import heapq
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from services.backtest.bars.backtest import BarRun, run_bar_backtest
from services.backtest.bars.candles import Candles
from services.backtest.jobs import results
from services.backtest.jobs.spec import JobSpec, Run
from services.backtest.strategies.catalog import StrategyCatalog


def work(
    spec_document: dict[str, Any], run_indices: list[int], results_dir: str, pipe: Connection
) -> None:
    """Entry point of a worker: runs `run_indices` of the job and reports each."""
    try:
        spec = JobSpec.from_json(spec_document)
        selected = [run for run in spec.runs if run.index in set(run_indices)]
        runner = _tick_runner(spec) if spec.engine == "tick" else _BarRunner(spec)
        pipe.send(("progress", 0.0, "loaded"))
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
                results.save(Path(results_dir) / file_name, stored)
            pipe.send(("run", run.index, run.parameters, metrics, file_name))
            pipe.send(("progress", done / len(selected), f"{done}/{len(selected)} runs"))
        for _, negative_index, stored in best:
            file_name = f"{spec.job_id}/run-{-negative_index}.npz"
            results.save(Path(results_dir) / file_name, stored)
            pipe.send(("kept", -negative_index, file_name))
        pipe.send(("done",))
    except BaseException as error:  # a worker reports every failure, then exits
        pipe.send(("error", f"{type(error).__name__}: {error}"))
        traceback.print_exc()
    finally:
        pipe.close()


class _BarRunner:
    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.candles = Candles.from_columns(np.load(spec.dataset_file, mmap_mode="r"))
        catalog = StrategyCatalog(Path(spec.strategies_dir) if spec.strategies_dir else None)
        self.strategy = catalog.get(spec.strategy)

    def __call__(self, run: Run) -> tuple[dict[str, float], results.StoredRun]:
        outcome = run_bar_backtest(self.candles, self.strategy, run.parameters, self.spec.bar)
        return outcome.metrics.as_dict(), stored_bar_run(self.candles, outcome)


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
