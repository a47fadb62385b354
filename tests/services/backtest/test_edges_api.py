"""The backtest edges through the public API: chunked imports and CSV export through
the HTTP gateway, liquidation, exit reasons, calendars and monthly candles over gRPC
(real service, real SQLite, real worker processes, real gateway under uvicorn)."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import numpy as np
import numpy.typing as npt
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from common.config import load_config
from common.server import running
from common.testing import isolated_config
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from edgequant.common.v1 import common_pb2
from gateway.testing import bearer, serve_gateway, token_entries
from services.backtest.main import SPEC

if TYPE_CHECKING:
    from edgequant.backtest.v1.backtest_pb2_grpc import BacktestServiceAsyncStub as Stub

SHORT_STRATEGY = '''"""Short from the first bar on."""
import numpy as np
import numpy.typing as npt


def signals(candles):
    target = np.full(len(candles), np.nan)
    target[0] = -1.0
    return target
'''
HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
# The gateway's default body limit.
BODY_LIMIT = 1_048_576


@dataclass
class Stack:
    stub: Stub
    http: httpx.AsyncClient


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "short.py").write_text(SHORT_STRATEGY)
    environment = isolated_config(
        tmp_path,
        BACKTEST__JOBS__STRATEGIES_DIR=str(strategies),
        BACKTEST__MEMORY_BUDGET_MIB="4096",
        GATEWAY__AUTH__TOKENS=token_entries(),
    )
    config = load_config(environment)
    async with (
        running(SPEC, config) as service,
        grpc.aio.insecure_channel(service.address) as channel,
        serve_gateway(config) as http,
    ):
        yield Stack(backtest_pb2_grpc.BacktestServiceStub(channel), http)


def candle_csv(
    closes: npt.NDArray[Any], header: str = "Timestamp,Open,High,Low,Close,Volume"
) -> bytes:
    """Hourly candles (epoch seconds) opening at the previous close."""
    opens = np.concatenate(([closes[0]], closes[:-1]))
    lines = [header]
    for k, (o, c) in enumerate(zip(opens.tolist(), closes.tolist(), strict=True)):
        seconds = (START_MS + k * HOUR_MS) // 1000
        lines.append(f"{seconds},{o:.6f},{max(o, c) * 1.001:.6f},{min(o, c) * 0.999:.6f},{c:.6f},1")
    return ("\n".join(lines) + "\n").encode()


async def wait_done(stub: Stub, job_id: str) -> pb.Job:
    job = pb.Job()
    async for event in stub.StreamJob(pb.StreamJobRequest(job_id=job_id)):
        if event.HasField("progress"):
            job = event.progress
    assert job.state == pb.JOB_STATE_SUCCEEDED, job.error
    return job


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [f"{v.field}: {v.description}" for v in bad.field_violations]
    return found


async def post_json(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    return await http.post(path, json=body, headers=bearer("admin"))


async def test_a_file_over_the_body_limit_imports_through_the_gateway_in_chunks(
    stack: Stack,
) -> None:
    rng = np.random.default_rng(7)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.002, 30_000))
    content = candle_csv(closes)
    assert len(content) > 1.5 * BODY_LIMIT
    whole = {
        "name": "big",
        "format": "DATASET_FORMAT_CSV",
        "content": base64.b64encode(content).decode(),
    }
    too_large = await post_json(stack.http, "/v1/datasets", whole)
    assert too_large.status_code == 413

    chunk_size = 600_000  # base64 in JSON: ~800 KB a request
    pieces = [content[k : k + chunk_size] for k in range(0, len(content), chunk_size)]
    assert len(pieces) >= 3
    upload_id = ""
    offset = 0
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        body: dict[str, Any] = {
            "uploadId": upload_id,
            "chunkOffset": str(offset),
            "moreChunks": not last,
            "content": base64.b64encode(piece).decode(),
        }
        if last:
            # Sent without a format first: refused, and the upload is kept for a retry.
            refused = await post_json(stack.http, "/v1/datasets", body)
            assert refused.status_code == 400
            assert "format" in refused.text
            body.update(name="big", format="DATASET_FORMAT_CSV", symbol="XYZ/USD")
        answer = await post_json(stack.http, "/v1/datasets", body)
        assert answer.status_code == 200, answer.text
        document = answer.json()
        if index == 1:
            # The answer to this chunk was "lost": the client sends it again.
            answer = await post_json(stack.http, "/v1/datasets", body)
            assert answer.status_code == 200, answer.text
            document = answer.json()
        upload_id = document["uploadId"]
        offset += len(piece)
        assert document["receivedBytes"] == str(offset)
    dataset = document["dataset"]
    assert dataset["rows"] == str(len(closes))
    assert dataset["timeframe"] == "TIMEFRAME_1H"
    # Finished: the upload is gone.
    again = await post_json(
        stack.http, "/v1/datasets", {"uploadId": upload_id, "chunkOffset": "0", "moreChunks": True}
    )
    assert again.status_code == 400
    assert "uploadId" in again.text or "upload_id" in again.text

    # A gap in the offsets is refused, naming the offset expected.
    first = await stack.stub.ImportDataset(
        pb.ImportDatasetRequest(content=b"abc", more_chunks=True)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.stub.ImportDataset(
            pb.ImportDatasetRequest(
                upload_id=first.upload_id, chunk_offset=10, content=b"d", more_chunks=True
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(raised.value) == ["chunk_offset: expected at most 3, got 10"]


async def test_trades_carry_bars_and_exit_reasons_and_export_as_csv_through_the_gateway(
    stack: Stack,
) -> None:
    rng = np.random.default_rng(11)
    closes = 100 * np.cumprod(1 + rng.normal(0, 0.01, 3_000))
    imported = await stack.stub.ImportDataset(
        pb.ImportDatasetRequest(name="h", format=pb.DATASET_FORMAT_CSV, content=candle_csv(closes))
    )
    submitted = await stack.stub.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=imported.dataset.dataset_id,
            strategy="sma_cross",
            parameters={"fast": 5, "slow": 20},
            bar_settings=pb.BarSettings(
                fee_rate=0.001, stop_loss=0.01, end_of_data=pb.END_OF_DATA_LEAVE_OPEN
            ),
        )
    )
    job_id = submitted.job.job_id
    await wait_done(stack.stub, job_id)
    result = await stack.stub.GetResult(pb.GetResultRequest(job_id=job_id, page_size=1000))
    trades = list(result.trades)
    assert len(trades) > 20
    reasons = {trade.exit_reason for trade in trades}
    assert {pb.EXIT_REASON_SIGNAL, pb.EXIT_REASON_STOP_LOSS} <= reasons
    assert trades[-1].exit_reason in (pb.EXIT_REASON_OPEN, pb.EXIT_REASON_STOP_LOSS)
    for trade in trades:
        assert trade.entry_time.ToMilliseconds() == START_MS + trade.entry_bar * HOUR_MS
        assert trade.exit_time.ToMilliseconds() == START_MS + trade.exit_bar * HOUR_MS
        assert trade.entry_bar <= trade.exit_bar

    answer = await stack.http.get(f"/v1/jobs/{job_id}/result:export", headers=bearer("reader"))
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["contentType"] == "text/csv"
    assert document["fileName"] == f"{job_id}-run-0-trades.csv"
    rows = list(csv.DictReader(io.StringIO(document["csv"])))
    assert document["rows"] == str(len(trades)) == str(len(rows))
    names = {value: name for name, value in pb.ExitReason.items()}
    for row, trade in zip(rows, trades, strict=True):
        assert int(row["entry_bar"]) == trade.entry_bar
        assert int(row["exit_bar"]) == trade.exit_bar
        assert names[trade.exit_reason] == "EXIT_REASON_" + row["exit_reason"].upper()
        assert float(row["pnl"]) == trade.pnl
        assert float(row["entry_price"]) == trade.entry_price
        assert row["side"] == ("buy" if trade.side == common_pb2.SIDE_BUY else "sell")

    curve = await stack.http.get(
        f"/v1/jobs/{job_id}/result:export",
        params={"table": "EXPORT_TABLE_EQUITY_CURVE"},
        headers=bearer("reader"),
    )
    points = list(csv.DictReader(io.StringIO(curve.json()["csv"])))
    assert len(points) == len(closes)
    assert points[0]["time"] == "2024-01-01T00:00:00.000Z"


async def test_a_runaway_short_is_reported_liquidated(stack: Stack) -> None:
    # Flat, then up 1 % an hour: the short's equity (2x cash less 100 % of the
    # notional) reaches zero when the price doubles, 70 hours in.
    closes = np.concatenate((np.full(10, 50.0), 50.0 * 1.01 ** np.arange(1, 200)))
    imported = await stack.stub.ImportDataset(
        pb.ImportDatasetRequest(name="up", format=pb.DATASET_FORMAT_CSV, content=candle_csv(closes))
    )
    submitted = await stack.stub.SubmitBacktest(
        pb.SubmitBacktestRequest(
            dataset_id=imported.dataset.dataset_id,
            strategy="short",
            bar_settings=pb.BarSettings(allow_short=True),
        )
    )
    await wait_done(stack.stub, submitted.job.job_id)
    result = await stack.stub.GetResult(
        pb.GetResultRequest(job_id=submitted.job.job_id, max_equity_points=1000)
    )
    metrics = result.metrics
    assert metrics.liquidated
    bar = metrics.liquidation_bar
    assert 10 + 69 <= bar <= 10 + 71
    assert metrics.liquidation_time.ToMilliseconds() == START_MS + bar * HOUR_MS
    assert metrics.final_equity == 0.0
    assert metrics.total_return == -1.0
    assert metrics.uncovered_loss >= 0.0
    (trade,) = result.trades
    assert trade.exit_reason == pb.EXIT_REASON_LIQUIDATION
    assert trade.exit_bar == bar
    # The curve ends at the liquidation bar and never goes below zero.
    assert len(result.equity_curve) == bar + 1
    assert min(point.equity for point in result.equity_curve) == 0.0


async def test_monthly_candles_in_ccxt_spelling_and_a_trading_day_calendar(stack: Stack) -> None:
    months = np.arange("2015-01", "2024-01", dtype="datetime64[M]")
    closes = 100 * np.cumprod(1 + np.random.default_rng(3).normal(0.01, 0.04, len(months)))
    lines = ["Date,Open,High,Low,Close"] + [
        f"{month}-01,{c:.4f},{c * 1.05:.4f},{c * 0.95:.4f},{c:.4f}"
        for month, c in zip(months.astype(str), closes.tolist(), strict=True)
    ]
    request = pb.ImportDatasetRequest(
        name="monthly",
        format=pb.DATASET_FORMAT_CSV,
        content="\n".join(lines).encode(),
        ccxt_timeframe="1M",
        calendar=pb.CALENDAR_TRADING_DAYS,
    )
    dataset = (await stack.stub.ImportDataset(request)).dataset
    assert dataset.timeframe == common_pb2.TIMEFRAME_1MO
    assert dataset.calendar == pb.CALENDAR_TRADING_DAYS
    assert list(dataset.gaps) == []
    listed = await stack.stub.ListDatasets(pb.ListDatasetsRequest())
    assert [d.timeframe for d in listed.datasets] == [common_pb2.TIMEFRAME_1MO]

    submitted = await stack.stub.SubmitBacktest(
        pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="buy_and_hold")
    )
    await wait_done(stack.stub, submitted.job.job_id)
    result = await stack.stub.GetResult(pb.GetResultRequest(job_id=submitted.job.job_id))
    assert result.metrics.periods_per_year == 12

    for bad, expected in (
        (pb.ImportDatasetRequest(ccxt_timeframe="2M"), "ccxt_timeframe"),
        (
            pb.ImportDatasetRequest(
                ccxt_timeframe="1M", timeframe=common_pb2.TIMEFRAME_1D, content=b"x"
            ),
            "ccxt_timeframe",
        ),
        (
            pb.ImportDatasetRequest(
                format=pb.DATASET_FORMAT_EXCHANGE,
                venue="paper",
                symbol="BTC/USDT",
                timeframe=common_pb2.TIMEFRAME_1MO,
            ),
            "timeframe",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stack.stub.ImportDataset(bad)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert any(v.startswith(expected) for v in violations(raised.value))


async def test_a_daily_stock_dataset_annualizes_with_252_days(stack: Stack) -> None:
    days = np.busday_offset(np.datetime64("2023-01-02"), np.arange(250), roll="forward")
    closes = 100 * np.cumprod(1 + np.random.default_rng(9).normal(0.0005, 0.01, len(days)))
    lines = ["date,open,high,low,close,adj close,volume"] + [
        f"{day},{c:.4f},{c * 1.01:.4f},{c * 0.99:.4f},{c:.4f},{c * 0.98:.4f},100"
        for day, c in zip(days.astype(str), closes.tolist(), strict=True)
    ]
    content = "\n".join(lines).encode()
    results = {}
    for calendar in (pb.CALENDAR_TRADING_DAYS, pb.CALENDAR_UNSPECIFIED):
        dataset = (
            await stack.stub.ImportDataset(
                pb.ImportDatasetRequest(
                    name="stock", format=pb.DATASET_FORMAT_CSV, content=content, calendar=calendar
                )
            )
        ).dataset
        submitted = await stack.stub.SubmitBacktest(
            pb.SubmitBacktestRequest(dataset_id=dataset.dataset_id, strategy="buy_and_hold")
        )
        await wait_done(stack.stub, submitted.job.job_id)
        results[calendar] = (
            await stack.stub.GetResult(pb.GetResultRequest(job_id=submitted.job.job_id))
        ).metrics
    stock, crypto = results[pb.CALENDAR_TRADING_DAYS], results[pb.CALENDAR_UNSPECIFIED]
    assert stock.periods_per_year == 252
    assert crypto.periods_per_year == 365
    assert stock.sharpe_ratio == pytest.approx(crypto.sharpe_ratio * (252 / 365) ** 0.5)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stack.stub.SubmitBacktest(
            pb.SubmitBacktestRequest(
                dataset_id="x",
                strategy="buy_and_hold",
                bar_settings=pb.BarSettings(maintenance_margin=1.5, periods_per_year=-1),
            )
        )
    assert sorted(violations(raised.value)) == [
        "bar_settings.maintenance_margin: must be within [0, 1)",
        "bar_settings.periods_per_year: must not be negative",
    ]
