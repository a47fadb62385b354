# Each peer is imported only inside the worker process that runs it.
# ruff: noqa: PLC0415
"""Backtests: the numpy bar engine beside backtesting.py and vectorbt, the tick engine
beside hftbacktest called directly, sweeps, and worker memory.

The data: 1,000,000 one-minute candles built from the real ETH/BTC candles in
tests/services/backtest/data (14,397 rows, Freqtrade's test data): the slice is
repeated end to end, each copy's prices scaled so that it opens where the previous one
closed and its times shifted past the previous copy (so the series stays continuous
and strictly increasing on the 1m grid, real gaps included), then cut at 1,000,000.

Every engine runs in its own spawned process (a worker, as the service runs them), on
the same candles, with sma_cross(10, 30) long-only, all-in, no fees, filled at the next
open. "Warm" is the median of repeated runs in a process that has run once already.

Small jobs (5,000 and 50,000 candles, the start of the same series) go through the
real service as an interactive user's do: submit to finished, over gRPC, through its
warm workers, beside backtesting.py running the same candles in-process. A sweep of
100 runs of 5,000 candles is set against the engine's own time for the same 100 runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Row, percentile
from bench.section import sized

SECTION = "backtest"
CANDLES = sized(1_000_000, 20_000)
REPEATS = sized(5, 1)
DATA = Path(__file__).resolve().parents[1] / "tests" / "services" / "backtest" / "data"
RAW_TICKS = DATA / "btcusdt_20240808_head.gz"
SWEEP_FAST = sized([2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [5, 10])
SWEEP_SLOW = sized([20, 30, 40, 50, 60, 70, 80, 90, 100, 110], [30, 40])
SMALL_SIZES = sized((5_000, 50_000), (5_000,))
SMALL_JOBS = sized(60, 5)  # submitted one after another, per size
PEER_REPEATS = sized(30, 2)
SMALL_SWEEPS = sized(7, 1)  # the median is reported


def build_candles(count: int = CANDLES) -> np.ndarray[Any, Any]:
    """(count, 6) rows [ts_ms, o, h, l, c, v]: the real slice, extended as described above."""
    with gzip.open(DATA / "ETH_BTC-1m.json.gz", "rt") as source:
        real = np.array(json.load(source), dtype=np.float64)
    copies: list[np.ndarray[Any, Any]] = []
    offset_ms, scale = 0.0, 1.0
    span_ms = real[-1, 0] - real[0, 0] + 60_000
    while sum(map(len, copies)) < count:
        copy = real.copy()
        copy[:, 0] += offset_ms
        copy[:, 1:5] *= scale
        copies.append(copy)
        offset_ms += span_ms
        scale = copy[-1, 4] / real[0, 1]
    candles: np.ndarray[Any, Any] = np.concatenate(copies)[:count]
    return candles


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(function: Any, repeats: int = REPEATS) -> tuple[float, Any]:
    samples, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def ours(columns_file: str, spawned_at: float) -> dict[str, float]:
    """A fresh worker: the first run (imports included), then warm runs."""
    from services.backtest.bars.backtest import run_bar_backtest
    from services.backtest.bars.settings import BarSettings
    from strategies.candles import Candles
    from strategies.catalog import StrategyCatalog

    imported = time.perf_counter()
    candles = Candles.from_columns(np.load(columns_file, mmap_mode="r"))
    strategy = StrategyCatalog().get("sma_cross")
    parameters = {"fast": 10.0, "slow": 30.0}
    started = time.perf_counter()
    first = run_bar_backtest(candles, strategy, parameters, BarSettings())
    first_done = time.perf_counter()
    warm, outcome = _timed(lambda: run_bar_backtest(candles, strategy, parameters, BarSettings()))
    return {
        "spawn_to_first_result": first_done - spawned_at,
        "load": started - imported,
        "first_run": first_done - started,
        "warm_run": warm,
        "final_equity": outcome.metrics.final_equity,
        "trades": float(outcome.metrics.trades),
        "first_final_equity": first.metrics.final_equity,
        "peak_rss_mib": _peak_rss_mib(),
    }


def _backtesting_py_sma_cross(rows_file: str) -> Any:
    """A backtesting.py Backtest of its own SmaCross (its docs' example, long-only) on the
    bench's candles, ready to run()."""
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    rows = np.load(rows_file)
    frame = pd.DataFrame(
        rows[:, 1:6],
        columns=["Open", "High", "Low", "Close", "Volume"],
        index=pd.to_datetime(rows[:, 0], unit="ms"),
    )

    def sma(values: Any, window: int) -> Any:
        return pd.Series(values).rolling(window).mean()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    return Backtest(frame, SmaCross, cash=10_000, finalize_trades=True)


def backtesting_py(rows_file: str) -> dict[str, float]:
    """backtesting.py's SmaCross on the same candles: one run."""
    backtest = _backtesting_py_sma_cross(rows_file)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtest.run()
    return {
        "run": time.perf_counter() - started,
        "trades": float(stats["# Trades"]),
        "peak_rss_mib": _peak_rss_mib(),
    }


def backtesting_py_small(rows_file: str, repeats: int) -> list[float]:
    """backtesting.py's SmaCross on small data, timed `repeats` times in one warm process
    (the frame built once; each sample is run()), its progress bar off."""
    import os

    os.environ["TQDM_DISABLE"] = "1"
    backtest = _backtesting_py_sma_cross(rows_file)
    samples = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats + 1):  # the first (imports, caches) is not counted
            started = time.perf_counter()
            backtest.run()
            samples.append(time.perf_counter() - started)
    return samples[1:]


_engine_loaded: dict[str, Any] = {}


def engine_sweep_time(columns_file: str) -> float:
    """The engine's own time per run for the bench sweep's 100 runs, in a process that
    keeps the candles loaded and has run once already (as a warm worker has)."""
    from services.backtest.bars.backtest import run_bar_backtest
    from services.backtest.bars.settings import BarSettings
    from strategies.candles import Candles
    from strategies.catalog import StrategyCatalog

    grid = [{"fast": float(f), "slow": float(s)} for f in SWEEP_FAST for s in SWEEP_SLOW]
    if columns_file not in _engine_loaded:
        candles = Candles.from_columns(np.load(columns_file, mmap_mode="r"))
        strategy = StrategyCatalog().get("sma_cross")
        run_bar_backtest(candles, strategy, grid[0], BarSettings())
        _engine_loaded[columns_file] = (candles, strategy)
    candles, strategy = _engine_loaded[columns_file]
    started = time.perf_counter()
    for parameters in grid:
        run_bar_backtest(candles, strategy, parameters, BarSettings())
    return (time.perf_counter() - started) / len(grid)


def vectorbt(rows_file: str) -> dict[str, float]:
    """vectorbt's MA crossover (its docs' example), filled at the next open, all cash."""
    import vectorbt as vbt

    rows = np.load(rows_file)
    opening, close = rows[:, 1], rows[:, 4]

    def run() -> Any:
        fast = vbt.MA.run(close, 10)
        slow = vbt.MA.run(close, 30)
        entries = np.roll(fast.ma_crossed_above(slow).to_numpy(), 1)
        exits = np.roll(fast.ma_crossed_below(slow).to_numpy(), 1)
        entries[0] = exits[0] = False
        exits[-1] = True
        price = opening.copy()
        price[-1] = close[-1]
        return vbt.Portfolio.from_signals(
            close, entries, exits, price=price, size=np.inf, init_cash=10_000, freq="1min"
        )

    started = time.perf_counter()
    first = run()
    first_run = time.perf_counter() - started
    warm, portfolio = _timed(run)
    return {
        "first_run": first_run,
        "warm_run": warm,
        "final_equity": float(portfolio.final_value()),
        "trades": float(portfolio.trades.count()),
        "first_final_equity": float(first.final_value()),
        "peak_rss_mib": _peak_rss_mib(),
    }


def tick_engines(npz: str) -> dict[str, float]:
    """The tick engine and hftbacktest directly, both warm (numba compiled once here)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    from services.backtest.jobs.spec import TickSettings
    from services.backtest.tick.market_maker import grid_market_maker
    from services.backtest.tick.runner import run_market_maker, summarize

    settings = TickSettings(
        maker_fee=-0.00005,
        taker_fee=0.0007,
        entry_latency_ns=10_000_000,
        response_latency_ns=10_000_000,
        queue_model="power_prob_2",
    )
    parameters = {
        "half_spread_bps": 0.2,
        "grid_spacing_bps": 0.3,
        "levels": 5.0,
        "order_quantity": 0.01,
        "max_position": 0.1,
        "update_interval_ms": 100.0,
    }
    with np.load(npz) as archive:
        local = archive["data"]["local_ts"]
        span_ns = int(local.max() - local.min())

    def engine() -> Any:
        records = run_market_maker(npz, 0.1, 0.001, settings, parameters, span_ns)
        return summarize(records, 10_000.0, 100, 0.001)

    def direct() -> Any:
        asset = (
            BacktestAsset()
            .data([npz])
            .linear_asset(1.0)
            .constant_order_latency(10_000_000, 10_000_000)
            .power_prob_queue_model(2.0)
            .no_partial_fill_exchange()
            .trading_value_fee_model(-0.00005, 0.0007)
            .tick_size(0.1)
            .lot_size(0.001)
        )
        hbt = HashMapMarketDepthBacktest([asset])
        records = np.zeros((span_ns // 100_000_000 + 2, 5))
        count = grid_market_maker(hbt, 100_000_000, 0.2, 0.3, 5, 0.01, 0.1, records)
        hbt.close()
        return records[:count]

    started = time.perf_counter()
    direct()  # compiles the strategy once, for both
    compile_and_first = time.perf_counter() - started
    # Interleaved, and each first in turn: the run after another pays for the memory the
    # previous one freed, and the machine is shared.
    engine_samples: list[float] = []
    direct_samples: list[float] = []
    for repeat in range(2 * REPEATS):
        pair = ((engine_samples, engine), (direct_samples, direct))
        for samples, function in pair if repeat % 2 else reversed(pair):
            samples.append(_timed(function, 1)[0])
    engine_time = statistics.median(engine_samples)
    direct_time = statistics.median(direct_samples)
    return {
        "compile_and_first": compile_and_first,
        "engine": engine_time,
        "direct": direct_time,
        "peak_rss_mib": _peak_rss_mib(),
    }


def convert_ticks(destination: str) -> int:
    from services.backtest.datasets.importer import ImportJob, run_import

    job = ImportJob("binance_futures_raw", b"", str(RAW_TICKS), "path", None, destination)
    return run_import(job).rows


def _in_worker(function: Any, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


@contextlib.asynccontextmanager
async def _service(root: Path) -> AsyncIterator[Any]:
    """The real backtest service in its own process (as deployed), and a stub to it."""
    import subprocess
    import sys

    import grpc

    from common.config import load_config
    from common.testing import isolated_config, wait_until_serving
    from edgequant.backtest.v1 import backtest_pb2_grpc

    environment = isolated_config(
        root / "stack", BACKTEST__DATASETS__IMPORT_DIR=str(root / "import")
    )
    address = load_config(environment).backtest.address
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.backtest",
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_until_serving(address)
        async with grpc.aio.insecure_channel(address) as channel:
            yield backtest_pb2_grpc.BacktestServiceStub(channel)
    finally:
        process.terminate()
        await process.wait()


async def _import(stub: Any, root: Path, name: str, rows: np.ndarray[Any, Any]) -> str:
    from edgequant.backtest.v1 import backtest_pb2 as pb

    imports = root / "import"
    imports.mkdir(exist_ok=True)
    (imports / f"{name}.json").write_text(json.dumps(rows.tolist()))
    request = pb.ImportDatasetRequest(
        name=name, format=pb.DATASET_FORMAT_FREQTRADE_JSON, path=f"{name}.json"
    )
    dataset_id: str = (await stub.ImportDataset(request)).dataset.dataset_id
    return dataset_id


async def _until_finished(stub: Any, request: Any) -> tuple[float, float, Any]:
    """Submits, follows StreamJob to the finished job: (submit to finished in seconds,
    finished event's arrival after the job's end_time in seconds, the job)."""
    from edgequant.backtest.v1 import backtest_pb2 as pb

    started = time.perf_counter()
    job = (await stub.SubmitBacktest(request)).job
    finished: tuple[float, float, Any] | None = None
    async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job.job_id)):
        if event.progress.state in (pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
            raise RuntimeError(event.progress.error)
        if event.progress.state == pb.JOB_STATE_SUCCEEDED:
            arrived = time.time()
            end_time = event.progress.end_time.ToNanoseconds() / 1e9
            finished = (time.perf_counter() - started, arrived - end_time, event.progress)
        # The stream ends with the result, as a user reads it, before the next job.
    if finished is None:
        raise RuntimeError("StreamJob ended before the job finished")
    return finished


def _sweep_request(dataset_id: str) -> Any:
    from edgequant.backtest.v1 import backtest_pb2 as pb

    sweep = pb.Sweep(
        grids=[
            pb.ParameterGrid(name="fast", values=SWEEP_FAST),
            pb.ParameterGrid(name="slow", values=SWEEP_SLOW),
        ],
        rank_by="sharpe_ratio",
    )
    return pb.SubmitBacktestRequest(dataset_id=dataset_id, strategy="sma_cross", sweep=sweep)


async def _sweep_through_the_service(root: Path, rows: np.ndarray[Any, Any]) -> tuple[float, int]:
    """A 100-run sweep submitted to the real service, timed from submit to succeeded."""
    async with _service(root / "sweep") as stub:
        dataset_id = await _import(stub, root / "sweep", "candles", rows)
        seconds, _, job = await _until_finished(stub, _sweep_request(dataset_id))
        return seconds, int(job.runs_total)


async def _small_jobs_through_the_service(root: Path) -> dict[str | int, Any]:
    """Single sma_cross(10, 30) jobs of SMALL_SIZES candles one after another, then
    100-run sweeps of 5,000 candles: submit to finished and StreamJob's delay. Each
    sweep is followed by the engine's own 100 runs in a warm process of its own, so
    that both see the same load of a shared machine."""
    from edgequant.backtest.v1 import backtest_pb2 as pb

    measured: dict[str | int, Any] = {"delays": []}
    sweep_columns = root / "columns-sweep.npy"
    np.save(sweep_columns, np.ascontiguousarray(build_candles(SMALL_SIZES[0]).T))
    engine = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    loop = asyncio.get_running_loop()
    async with _service(root / "small") as stub:
        for size in SMALL_SIZES:
            dataset_id = await _import(stub, root / "small", f"c{size}", build_candles(size))
            request = pb.SubmitBacktestRequest(
                dataset_id=dataset_id, strategy="sma_cross", parameters={"fast": 10, "slow": 30}
            )
            await _until_finished(stub, request)  # the first one warms a worker
            samples = []
            for _ in range(SMALL_JOBS):
                seconds, delay, _ = await _until_finished(stub, request)
                samples.append(seconds)
                measured["delays"].append(delay)
            measured[size] = samples
        dataset_id = await _import(stub, root / "small", "sweep", build_candles(SMALL_SIZES[0]))
        # The first sweep runs on the one warm worker and warms the second.
        await _until_finished(stub, _sweep_request(dataset_id))
        per_run, engine_per_run = [], []
        with engine:
            await loop.run_in_executor(engine, engine_sweep_time, str(sweep_columns))
            for _ in range(SMALL_SWEEPS):
                seconds, _, job = await _until_finished(stub, _sweep_request(dataset_id))
                per_run.append(seconds / job.runs_total)
                engine_per_run.append(
                    await loop.run_in_executor(engine, engine_sweep_time, str(sweep_columns))
                )
        measured["sweep_per_run"] = statistics.median(per_run)
        measured["engine_per_run"] = statistics.median(engine_per_run)
    return measured


async def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="edgequant-bench-backtest-") as directory:
        root = Path(directory)
        rows = build_candles()
        rows_file, columns_file = root / "rows.npy", root / "columns.npy"
        np.save(rows_file, rows)
        np.save(columns_file, np.ascontiguousarray(rows.T))
        loop = asyncio.get_running_loop()

        def spawned(function: Any, *args: Any) -> Any:
            return loop.run_in_executor(None, _in_worker, function, *args)

        mine = await spawned(ours, str(columns_file), time.perf_counter())
        peer_bt = await spawned(backtesting_py, str(rows_file))
        peer_vbt = await spawned(vectorbt, str(rows_file))
        sweep_seconds, sweep_runs = await _sweep_through_the_service(root, rows)
        small = await _small_jobs_through_the_service(root)
        peer_small: dict[int, list[float]] = {}
        for size in SMALL_SIZES:
            small_file = root / f"rows-{size}.npy"
            np.save(small_file, rows[:size])
            peer_small[size] = await spawned(backtesting_py_small, str(small_file), PEER_REPEATS)
        engine_per_run = small["engine_per_run"]
        npz = root / "btcusdt.npz"
        await spawned(convert_ticks, str(npz))
        tick = await spawned(tick_engines, str(npz))

    agreement = abs(mine["final_equity"] / peer_vbt["final_equity"] - 1)
    ms = 1000.0
    small_rows = []
    for size in SMALL_SIZES:
        for q in (50, 99):
            small_rows.append(
                Row(
                    SECTION,
                    f"sma_cross {size:,} candles: submit to finished via gRPC, p{q}",
                    "ms",
                    percentile(small[size], q) * ms,
                    percentile(peer_small[size], q) * ms,
                    "backtesting.py in-process",
                    "<= 25" if (size, q) == (SMALL_SIZES[0], 50) else "",
                )
            )
    return [
        *small_rows,
        Row(
            SECTION,
            "StreamJob: finished job reported after its end, p50",
            "ms",
            percentile(small["delays"], 50) * ms,
        ),
        Row(
            SECTION,
            "StreamJob: finished job reported after its end, p99",
            "ms",
            percentile(small["delays"], 99) * ms,
            target="<= 10",
        ),
        Row(
            SECTION,
            "StreamJob: finished job reported after its end, max",
            "ms",
            max(small["delays"]) * ms,
        ),
        Row(
            SECTION,
            f"sweep of 100 runs, {SMALL_SIZES[0]:,} candles, via the service, per run",
            "ms",
            small["sweep_per_run"] * ms,
            engine_per_run * ms,
            "the engine's own time per run",
            "<= 2x the engine",
        ),
        Row(
            SECTION,
            "small sweep: per run / the engine's own time",
            "x",
            small["sweep_per_run"] / engine_per_run,
            target="<= 2",
        ),
        Row(
            SECTION,
            "sma_cross 1M candles, warm worker",
            "ms",
            mine["warm_run"] * ms,
            peer_vbt["warm_run"] * ms,
            "vectorbt, warm",
            "<= 100, < vectorbt",
        ),
        Row(
            SECTION,
            "sma_cross 1M candles vs backtesting.py",
            "ms",
            mine["warm_run"] * ms,
            peer_bt["run"] * ms,
            "backtesting.py",
            ">= 50x faster",
        ),
        Row(
            SECTION,
            "speed-up over backtesting.py",
            "x",
            peer_bt["run"] / mine["warm_run"],
            target=">= 50",
        ),
        Row(
            SECTION,
            "first run in a fresh worker",
            "ms",
            mine["first_run"] * ms,
            peer_vbt["first_run"] * ms,
            "vectorbt, first run (JIT)",
            "no multi-second warm-up",
        ),
        Row(
            SECTION, "fresh worker: spawn to first result", "ms", mine["spawn_to_first_result"] * ms
        ),
        Row(
            SECTION, f"sweep of {sweep_runs} runs, 1M candles, via the service", "s", sweep_seconds
        ),
        Row(
            SECTION,
            "final equity vs vectorbt (relative difference)",
            "ppm",
            agreement * 1e6,
            target="<= 1",
        ),
        Row(
            SECTION,
            "trades (ours vs vectorbt)",
            "count",
            mine["trades"],
            peer_vbt["trades"],
            "vectorbt",
        ),
        Row(
            SECTION,
            "tick: grid market maker, ~50 s of BTCUSDT L2",
            "ms",
            tick["engine"] * ms,
            tick["direct"] * ms,
            "hftbacktest directly",
            "<= 1.1x",
        ),
        Row(
            SECTION,
            "tick: engine / hftbacktest directly",
            "x",
            tick["engine"] / tick["direct"],
            target="<= 1.1",
        ),
        Row(SECTION, "tick: numba compile + first run (both)", "s", tick["compile_and_first"]),
        Row(
            SECTION,
            "bar worker peak RSS (1M candles)",
            "MiB",
            mine["peak_rss_mib"],
            peer_vbt["peak_rss_mib"],
            "vectorbt process",
            "<= 768",
        ),
        Row(SECTION, "tick worker peak RSS", "MiB", tick["peak_rss_mib"], target="<= 768"),
        Row(SECTION, "backtesting.py process peak RSS", "MiB", peer_bt["peak_rss_mib"]),
    ]


if __name__ == "__main__":  # `python -m bench.backtest`: this section alone
    from bench.report import table

    print(table(asyncio.run(run())))
