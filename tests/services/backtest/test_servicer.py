"""The backtest service end to end: real gRPC, real SQLite, real worker processes, real
candles. Metrics are checked against values computed here from the returned curve."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import multiprocessing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.config import load_config
from common.server import running
from common.testing import isolated_config, serving
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.backtest.main import SPEC

if TYPE_CHECKING:
    from edgequant.backtest.v1.backtest_pb2_grpc import BacktestServiceAsyncStub as Stub

DATA = Path(__file__).parent / "data"

SLOW_STRATEGY = '''"""Sleeps before answering: a job that is still running when cancelled."""
import time

import numpy as np

from services.backtest.strategies import Parameter

PARAMETERS = [Parameter("seconds", "float", 60.0, 0.0, 600.0, "how long to think")]


def signals(candles, seconds):
    time.sleep(seconds)
    return np.full(len(candles), np.nan)
'''

MOMENTUM_STRATEGY = '''"""Long after `lookback` rising closes in a row, flat after a falling one."""
import numpy as np

from services.backtest.strategies import Parameter

PARAMETERS = [Parameter("lookback", "int", 3, 1, 50, "rising closes in a row")]


def signals(candles, lookback):
    rising = np.diff(candles.close, prepend=np.inf) > 0
    run = np.convolve(rising, np.ones(lookback), mode="full")[: len(rising)]
    target = np.full(len(candles), np.nan)
    target[run >= lookback] = 1.0
    target[~rising] = 0.0
    return target
'''


async def _serve(tmp_path: Path, **overrides: str) -> AsyncIterator[Stub]:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "slow.py").write_text(SLOW_STRATEGY)
    (strategies / "momentum.py").write_text(MOMENTUM_STRATEGY)
    environment = isolated_config(
        tmp_path,
        BACKTEST__JOBS__STRATEGIES_DIR=str(strategies),
        # The service shares this process with pytest (and pandas, hftbacktest, ...):
        # its own memory guard would count all of that.
        BACKTEST__MEMORY_BUDGET_MIB="4096",
        **overrides,
    )
    async with (
        running(SPEC, load_config(environment)) as service,
        grpc.aio.insecure_channel(service.address) as channel,
    ):
        yield backtest_pb2_grpc.BacktestServiceStub(channel)


@pytest.fixture
async def backtest(tmp_path: Path) -> AsyncIterator[Stub]:
    async for stub in _serve(tmp_path):
        yield stub


async def _import_eth(stub: Stub) -> pb.Dataset:
    content = (DATA / "ETH_BTC-1m.json.gz").read_bytes()
    response = await stub.ImportDataset(
        pb.ImportDatasetRequest(
            name="ETH/BTC 1m",
            format=pb.DATASET_FORMAT_FREQTRADE_JSON,
            content=content,
            symbol="ETH/BTC",
        )
    )
    dataset: pb.Dataset = response.dataset
    return dataset


async def _finish(stub: Stub, job_id: str) -> list[pb.StreamJobResponse]:
    return [event async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job_id))]


def _error_info(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, list[str]]:
    status = rpc_status.from_call(error)
    assert status is not None
    info, violations = error_details_pb2.ErrorInfo(), []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return info, violations


async def test_strategies_list_builtins_and_user_modules(backtest: Stub) -> None:
    strategies = {
        s.name: s for s in (await backtest.ListStrategies(pb.ListStrategiesRequest())).strategies
    }
    assert {
        "buy_and_hold",
        "sma_cross",
        "ema_cross",
        "rsi_reversion",
        "bollinger_breakout",
        "macd",
    } <= set(strategies)
    assert strategies["grid_market_maker"].engine == pb.ENGINE_TICK
    momentum = strategies["momentum"]
    assert momentum.user_defined
    assert momentum.description.startswith("Long after")
    (lookback,) = momentum.parameters
    assert (lookback.type, lookback.default_value, lookback.max_value) == (
        pb.PARAMETER_TYPE_INT,
        3,
        50,
    )


async def test_import_list_delete(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    assert dataset.rows == 14_397
    assert dataset.kind == pb.DATASET_KIND_CANDLES
    assert [(g.after_time.ToMilliseconds(), g.missing_candles) for g in dataset.gaps] == [
        (1516771020000, 1)
    ]
    second = await _import_eth(backtest)
    first_page = await backtest.ListDatasets(pb.ListDatasetsRequest(page_size=1))
    second_page = await backtest.ListDatasets(
        pb.ListDatasetsRequest(page_size=1, page_token=first_page.next_page_token)
    )
    assert [d.dataset_id for d in (*first_page.datasets, *second_page.datasets)] == [
        dataset.dataset_id,
        second.dataset_id,
    ]
    await backtest.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id))
    remaining = await backtest.ListDatasets(pb.ListDatasetsRequest())
    assert [d.dataset_id for d in remaining.datasets] == [second.dataset_id]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await backtest.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset.dataset_id))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_dataset_is_invalid_argument(backtest: Stub) -> None:
    rows = b"time,open,high,low,close,volume\n60000,1,2,0.5,1.5,3\n60000,1,2,0.5,1.5,3\n"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await backtest.ImportDataset(
            pb.ImportDatasetRequest(name="dup", format=pb.DATASET_FORMAT_CSV, content=rows)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations = _error_info(raised.value)
    assert info.reason == "MALFORMED_DATASET"
    assert violations == ["content: row 2: duplicate timestamp"]
    assert not (await backtest.ListDatasets(pb.ListDatasetsRequest())).datasets


async def test_single_run_result_and_metrics(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    submitted = await backtest.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id,
            strategy="sma_cross",
            parameters={"fast": 10, "slow": 30},
            bar_settings=pb.BarSettings(initial_cash=1000, fee_rate=0.001, allow_short=True),
        )
    )
    assert submitted.job.state in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING)
    events = await _finish(backtest, submitted.job.job_id)
    assert events[-2].progress.state == pb.JOB_STATE_SUCCEEDED
    streamed = events[-1].result

    result = await backtest.GetResult(
        pb.GetResultRequest(job_id=submitted.job.job_id, page_size=1000, max_equity_points=20_000)
    )
    assert result.metrics == streamed.metrics
    trades = list(result.trades)
    token = result.next_page_token
    while token:
        page = await backtest.GetResult(
            pb.GetResultRequest(job_id=submitted.job.job_id, page_size=1000, page_token=token)
        )
        trades += page.trades
        token = page.next_page_token
    metrics = result.metrics
    assert metrics.trades == len(trades) > 100

    # Independently, from the returned curve and trades.
    equity = np.array([sample.equity for sample in result.equity_curve])
    assert len(equity) == dataset.rows
    pnl = np.array([trade.pnl for trade in trades])
    assert metrics.final_equity == pytest.approx(equity[-1])
    assert metrics.total_return == pytest.approx(equity[-1] / 1000 - 1)
    assert equity[-1] == pytest.approx(1000 + pnl.sum(), rel=1e-9)
    assert metrics.win_rate == pytest.approx(np.mean(pnl > 0))
    assert metrics.profit_factor == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert metrics.sqn == pytest.approx(math.sqrt(len(pnl)) * pnl.mean() / pnl.std(ddof=1))
    peak = np.maximum.accumulate(equity)
    assert metrics.max_drawdown == pytest.approx(np.max(1 - equity / peak))
    returns = np.diff(np.concatenate(([1000.0], equity))) / np.concatenate(([1000.0], equity[:-1]))
    per_year = math.sqrt(365 * 24 * 60)
    assert metrics.sharpe_ratio == pytest.approx(returns.mean() / returns.std(ddof=1) * per_year)
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert metrics.sortino_ratio == pytest.approx(returns.mean() / downside * per_year)
    with gzip.open(DATA / "ETH_BTC-1m.json.gz", "rt") as source:
        closes = [row[4] for row in json.load(source)]
    assert metrics.buy_and_hold_return == pytest.approx(closes[-1] / closes[0] - 1)
    years = (dataset.end_time.ToMilliseconds() - dataset.start_time.ToMilliseconds() + 60_000) / (
        365 * 86_400_000
    )
    assert metrics.cagr == pytest.approx((equity[-1] / 1000) ** (1 / years) - 1)
    assert metrics.calmar_ratio == pytest.approx(metrics.cagr / metrics.max_drawdown)
    assert {t.side for t in trades} == {1, 2}

    thinned = await backtest.GetResult(
        pb.GetResultRequest(job_id=submitted.job.job_id, max_equity_points=50)
    )
    assert len(thinned.equity_curve) == 50
    assert thinned.equity_curve[-1].equity == pytest.approx(equity[-1])


async def test_sweep_is_ranked_by_the_chosen_metric(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    sweep = pb.Sweep(
        grids=[
            pb.ParameterGrid(name="fast", values=[5, 10, 20]),
            pb.ParameterGrid(name="slow", values=[10, 30, 60]),
        ],
        rank_by="total_return",
    )
    submitted = await backtest.SubmitBacktest(
        pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="sma_cross", sweep=sweep)
    )
    # fast >= slow is skipped: (10, 10), (20, 10).
    assert submitted.job.runs_total == 7
    events = await _finish(backtest, submitted.job.job_id)
    best = events[-1].result
    returns = [summary.metrics.total_return for summary in best.ranking]
    assert returns == sorted(returns, reverse=True)
    assert best.run_index == best.ranking[0].run_index
    assert best.metrics.total_return == max(returns)
    assert len(best.equity_curve) > 0
    pairs = {(s.parameters["fast"], s.parameters["slow"]) for s in best.ranking}
    assert pairs == {(5, 10), (5, 30), (5, 60), (10, 30), (10, 60), (20, 30), (20, 60)}


async def test_user_strategy_runs(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    submitted = await backtest.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id, strategy="momentum", parameters={"lookback": 4}
        )
    )
    events = await _finish(backtest, submitted.job.job_id)
    assert events[-1].result.metrics.trades > 0


async def test_cancel_stops_the_worker_mid_run(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    submitted = await backtest.SubmitBacktest(
        pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="slow")
    )
    async for event in backtest.StreamJob(pb.StreamJobRequest(job_id=submitted.job.job_id)):
        if event.progress.state == pb.JOB_STATE_RUNNING:
            break
    assert multiprocessing.active_children()
    cancelled = await backtest.CancelJob(pb.CancelJobRequest(job_id=submitted.job.job_id))
    assert cancelled.job.state == pb.JOB_STATE_CANCELLED
    assert not multiprocessing.active_children()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await backtest.GetResult(pb.GetResultRequest(job_id=submitted.job.job_id))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    listed = await backtest.ListJobs(pb.ListJobsRequest(states=[pb.JOB_STATE_CANCELLED]))
    assert [job.job_id for job in listed.jobs] == [submitted.job.job_id]


async def test_a_job_over_the_worker_budget_is_refused(tmp_path: Path) -> None:
    async for stub in _serve(tmp_path, BACKTEST__JOBS__WORKER_BUDGET_MIB="64"):
        dataset = await _import_eth(stub)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.SubmitBacktest(
                pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="sma_cross")
            )
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info, _ = _error_info(raised.value)
        assert info.reason == "WORKER_MEMORY_BUDGET"
        assert "over the worker budget of 64 MiB" in (raised.value.details() or "")
        assert not (await stub.ListJobs(pb.ListJobsRequest())).jobs


async def test_bad_submissions_name_their_fields(backtest: Stub) -> None:
    dataset = await _import_eth(backtest)
    cases = {
        "strategy": pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="nope"),
        "parameters.fast": pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id, strategy="sma_cross", parameters={"fast": 50, "slow": 20}
        ),
        "bar_settings.size": pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id,
            strategy="sma_cross",
            bar_settings=pb.BarSettings(size=1.5),
        ),
        "dataset_id": pb.SubmitBacktestRequest(
            dataset_id=dataset.dataset_id, engine=pb.ENGINE_TICK, strategy="grid_market_maker"
        ),
    }
    for field, request in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await backtest.SubmitBacktest(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        _, violations = _error_info(raised.value)
        assert violations, field
        assert violations[0].startswith(f"{field}:"), violations
    await asyncio.sleep(0)


async def test_five_hundred_bad_grids_give_twenty_violations_and_a_count(
    backtest: Stub,
) -> None:
    grids = [pb.ParameterGrid(name=f"nope{k}") for k in range(500)]  # unknown, no values
    request = pb.SubmitBacktestRequest(
        dataset_id="any", strategy="sma_cross", sweep=pb.Sweep(grids=grids)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await backtest.SubmitBacktest(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, violations = _error_info(raised.value)
    assert violations[:2] == [
        "sweep.grids[0].name: sma_cross has no parameter 'nope0'",
        "sweep.grids[0].values: needs at least one value",
    ]
    assert len(violations) == 21
    assert violations[-1].endswith("and 980 more violations, not listed")
    jobs = await backtest.ListJobs(pb.ListJobsRequest())
    assert list(jobs.jobs) == []


class _CandleExchange(exchange_pb2_grpc.ExchangeServiceServicer):
    """A scripted exchange service that serves the real ETH/BTC candles by time."""

    def __init__(self) -> None:
        with gzip.open(DATA / "ETH_BTC-1m.json.gz", "rt") as source:
            self.rows = json.load(source)
        self.requests: list[exchange_pb2.GetCandlesRequest] = []

    async def GetCandles(
        self, request: exchange_pb2.GetCandlesRequest, context: object
    ) -> exchange_pb2.GetCandlesResponse:
        self.requests.append(request)
        start, end = request.start_time.ToMilliseconds(), request.end_time.ToMilliseconds()
        rows = [row for row in self.rows if start <= row[0] < end][: request.limit or 500]
        return exchange_pb2.GetCandlesResponse(
            candles=[
                common_pb2.Candle(
                    open_time=Timestamp(seconds=int(row[0]) // 1000),
                    open=repr(row[1]),
                    high=repr(row[2]),
                    low=repr(row[3]),
                    close=repr(row[4]),
                    volume=repr(row[5]),
                )
                for row in rows
            ]
        )


async def test_candles_fetched_through_the_exchange_service(tmp_path: Path) -> None:
    exchange = _CandleExchange()  # type: ignore[abstract]  # serves GetCandles only
    async with serving(
        exchange, exchange_pb2_grpc.add_ExchangeServiceServicer_to_server
    ) as address:
        async for stub in _serve(tmp_path, EXCHANGE__ADDRESS=address):
            start, end = exchange.rows[100][0], exchange.rows[2600][0]
            dataset = (
                await stub.ImportDataset(
                    pb.ImportDatasetRequest(
                        name="from the exchange",
                        format=pb.DATASET_FORMAT_EXCHANGE,
                        venue="paper",
                        symbol="ETH/BTC",
                        timeframe=common_pb2.TIMEFRAME_1M,
                        start_time=Timestamp(seconds=int(start) // 1000),
                        end_time=Timestamp(seconds=int(end) // 1000),
                    )
                )
            ).dataset
    assert dataset.rows == 2500
    assert dataset.start_time.ToMilliseconds() == start
    assert dataset.timeframe == common_pb2.TIMEFRAME_1M
    # Paged: 1000 + 1000 + 500, each page starting after the last candle received.
    assert [r.limit for r in exchange.requests] == [1000, 1000, 1000]
    assert [r.venue for r in exchange.requests] == ["paper"] * 3
