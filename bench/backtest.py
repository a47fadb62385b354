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
"""

from __future__ import annotations

import asyncio
import gzip
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Row
from bench.section import sized

SECTION = "backtest"
CANDLES = sized(1_000_000, 20_000)
REPEATS = sized(5, 1)
DATA = Path(__file__).resolve().parents[1] / "tests" / "services" / "backtest" / "data"
RAW_TICKS = DATA / "btcusdt_20240808_head.gz"
SWEEP_FAST = sized([2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [5, 10])
SWEEP_SLOW = sized([20, 30, 40, 50, 60, 70, 80, 90, 100, 110], [30, 40])


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
    from services.backtest.bars.candles import Candles
    from services.backtest.bars.settings import BarSettings
    from services.backtest.strategies.catalog import StrategyCatalog

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


def backtesting_py(rows_file: str) -> dict[str, float]:
    """backtesting.py's own SmaCross (its docs' example, long-only), on the same candles."""
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

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, SmaCross, cash=10_000, finalize_trades=True).run()
    return {
        "run": time.perf_counter() - started,
        "trades": float(stats["# Trades"]),
        "peak_rss_mib": _peak_rss_mib(),
    }


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


async def _sweep_through_the_service(root: Path, rows: np.ndarray[Any, Any]) -> tuple[float, int]:
    """A 100-run sweep submitted to the real service (its own process, as deployed),
    timed from submit to succeeded."""
    import subprocess
    import sys

    import grpc

    from common.config import load_config
    from common.testing import isolated_config, wait_until_serving
    from edgequant.backtest.v1 import backtest_pb2 as pb
    from edgequant.backtest.v1 import backtest_pb2_grpc

    imports = root / "import"
    imports.mkdir()
    (imports / "candles.json").write_text(json.dumps(rows.tolist()))
    environment = isolated_config(root / "stack", BACKTEST__DATASETS__IMPORT_DIR=str(imports))
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
            stub = backtest_pb2_grpc.BacktestServiceStub(channel)
            request = pb.ImportDatasetRequest(
                name="bench", format=pb.DATASET_FORMAT_FREQTRADE_JSON, path="candles.json"
            )
            dataset = (await stub.ImportDataset(request)).dataset
            sweep = pb.Sweep(
                grids=[
                    pb.ParameterGrid(name="fast", values=SWEEP_FAST),
                    pb.ParameterGrid(name="slow", values=SWEEP_SLOW),
                ],
                rank_by="sharpe_ratio",
            )
            started = time.perf_counter()
            submit = pb.SubmitBacktestRequest(
                dataset_id=dataset.dataset_id, strategy="sma_cross", sweep=sweep
            )
            job = (await stub.SubmitBacktest(submit)).job
            async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job.job_id)):
                if event.HasField("result"):
                    break
                if event.progress.state in (pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED):
                    raise RuntimeError(event.progress.error)
            return time.perf_counter() - started, job.runs_total
    finally:
        process.terminate()
        await process.wait()


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
        npz = root / "btcusdt.npz"
        await spawned(convert_ticks, str(npz))
        tick = await spawned(tick_engines, str(npz))

    agreement = abs(mine["final_equity"] / peer_vbt["final_equity"] - 1)
    ms = 1000.0
    return [
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
