# hftbacktest is imported inside the test that runs it, as in a worker.
# ruff: noqa: PLC0415
"""The tick engine on the real BTCUSDT futures feed: imported from the raw capture through
hftbacktest's own converter, run by the service, and run again here directly on
hftbacktest with the same strategy and settings: the two must agree."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration

from common.config import load_config
from common.server import running
from common.testing import isolated_config
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from services.backtest.main import SPEC

DATA = Path(__file__).parents[1] / "data"
RAW = "btcusdt_20240808_head.gz"
PARAMETERS = {
    "half_spread_bps": 0.2,
    "grid_spacing_bps": 0.3,
    "levels": 5,
    "order_quantity": 0.01,
    "max_position": 0.1,
    "update_interval_ms": 100,
}
INITIAL_CASH = 10_000.0


@pytest.fixture
async def service(
    tmp_path: Path,
) -> AsyncIterator[tuple[backtest_pb2_grpc.BacktestServiceAsyncStub, Path]]:
    environment = isolated_config(
        tmp_path,
        BACKTEST__DATASETS__IMPORT_DIR=str(DATA),
        # The service shares this process with pytest and hftbacktest: its memory guard
        # would count them.
        BACKTEST__MEMORY_BUDGET_MIB="4096",
    )
    async with (
        running(SPEC, load_config(environment)) as running_service,
        grpc.aio.insecure_channel(running_service.address) as channel,
    ):
        yield backtest_pb2_grpc.BacktestServiceStub(channel), tmp_path / "var" / "backtest"


def _direct_hftbacktest(npz: Path) -> np.ndarray[Any, Any]:
    """The same grid market maker, on an hftbacktest backtest configured here."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    from services.backtest.tick.market_maker import grid_market_maker

    asset = (
        BacktestAsset()
        .data([str(npz)])
        .linear_asset(1.0)
        .constant_order_latency(10_000_000, 10_000_000)
        .power_prob_queue_model(2.0)
        .no_partial_fill_exchange()
        .trading_value_fee_model(-0.00005, 0.0007)
        .tick_size(0.1)
        .lot_size(0.001)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    records = np.zeros((2_000_000 // 100 + 10, 5))
    count = grid_market_maker(hbt, 100_000_000, 0.2, 0.3, 5, 0.01, 0.1, records)
    hbt.close()
    return records[:count]


async def test_market_maker_agrees_with_hftbacktest_run_directly(
    service: tuple[backtest_pb2_grpc.BacktestServiceAsyncStub, Path],
) -> None:
    stub, var = service
    imported = await stub.ImportDataset(
        pb.ImportDatasetRequest(
            name="BTCUSDT futures",
            format=pb.DATASET_FORMAT_BINANCE_FUTURES_RAW,
            path=RAW,
            symbol="BTC/USDT:USDT",
            tick_size=0.1,
            lot_size=0.001,
        )
    )
    dataset = imported.dataset
    assert dataset.kind == pb.DATASET_KIND_TICKS
    assert dataset.rows > 50_000  # depth, trade and snapshot events of ~50 s
    assert dataset.end_time.ToMilliseconds() - dataset.start_time.ToMilliseconds() > 40_000

    submitted = await stub.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id,
            engine=pb.ENGINE_TICK,
            strategy="grid_market_maker",
            parameters=PARAMETERS,
            tick_settings=pb.TickSettings(
                maker_fee=-0.00005,
                taker_fee=0.0007,
                entry_latency=Duration(nanos=10_000_000),
                response_latency=Duration(nanos=10_000_000),
                queue_model="power_prob_2",
                initial_cash=INITIAL_CASH,
            ),
        )
    )
    # hftbacktest run directly, here, while the service's worker runs the same (numba
    # compiles the strategy in each process: running both at once halves the wait).
    direct = asyncio.create_task(
        asyncio.to_thread(_direct_hftbacktest, var / "datasets" / f"{dataset.dataset_id}.npz")
    )
    events = [e async for e in stub.StreamJob(pb.StreamJobRequest(job_id=submitted.job.job_id))]
    assert events[-2].progress.state == pb.JOB_STATE_SUCCEEDED, events[-1]
    result = await stub.GetResult(
        pb.GetResultRequest(job_id=submitted.job.job_id, page_size=1000, max_equity_points=20_000)
    )

    records = await direct
    quoted = records[~np.isnan(records[:, 1])]
    time, mid, position, balance, fee = quoted.T
    equity = INITIAL_CASH + balance + position * mid - fee
    assert result.metrics.final_equity == pytest.approx(equity[-1], rel=1e-12)
    curve = np.array([sample.equity for sample in result.equity_curve])
    np.testing.assert_allclose(curve, equity, rtol=1e-12)
    assert [s.time.ToNanoseconds() // 1_000_000 for s in result.equity_curve] == (
        time // 1_000_000
    ).astype(int).tolist()
    # The market maker did trade, both ways, and its round trips add up to its PnL.
    assert np.count_nonzero(np.diff(position)) > 5
    assert result.metrics.trades == len(result.trades) > 0
    assert sum(t.pnl for t in result.trades) == pytest.approx(equity[-1] - INITIAL_CASH, abs=1e-6)
    assert result.metrics.max_drawdown == pytest.approx(
        np.max(1 - equity / np.maximum.accumulate(equity))
    )
