"""BacktestService: translates each RPC to the backtest domain and back.

One method per RPC, named as in protos/edgequant/backtest/v1/backtest.proto. Datasets
live in datasets/, jobs (workers, progress, results) in jobs/, engines in bars/ and
tick/; this module only converts messages.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from google.protobuf.duration_pb2 import Duration

from common.config import GrpcSettings
from common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from common.service import Context
from common.wire import timestamp, timestamp_ms
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.backtest.v1 import backtest_pb2_grpc
from edgequant.common.v1 import common_pb2
from services.backtest import paging
from services.backtest.bars.metric_names import FLOAT_METRICS
from services.backtest.bars.settings import BarSettings, Calendar, EndOfData, FillTiming, Sizing
from services.backtest.datasets import candle_pages
from services.backtest.datasets.exchange import fetch_candles
from services.backtest.datasets.store import Chunk, DatasetStore, ImportRequest
from services.backtest.datasets.timeframes import TIMEFRAMES as DATASET_TIMEFRAMES
from services.backtest.jobs import manager as jobs
from services.backtest.jobs import requests
from services.backtest.jobs.spec import TickSettings
from services.backtest.storage.models import DatasetRow, JobRow, RunRow
from services.backtest.strategies.base import StrategyDefinition, UnknownStrategy
from services.backtest.strategies.catalog import StrategyCatalog
from services.backtest.tick.strategies import TICK_STRATEGIES

if TYPE_CHECKING:
    # numpy: a run's arrays are read only for a request that asks for them (GetResult's
    # details, ExportResult); the idle server never loads numpy.
    from services.backtest.jobs import results

FORMATS = {
    pb.DATASET_FORMAT_CSV: "csv",
    pb.DATASET_FORMAT_FREQTRADE_JSON: "freqtrade_json",
    pb.DATASET_FORMAT_HFTBACKTEST_NPZ: "hftbacktest_npz",
    pb.DATASET_FORMAT_BINANCE_FUTURES_RAW: "binance_futures_raw",
}
TIMEFRAMES = {
    common_pb2.TIMEFRAME_1M: "1m",
    common_pb2.TIMEFRAME_3M: "3m",
    common_pb2.TIMEFRAME_5M: "5m",
    common_pb2.TIMEFRAME_15M: "15m",
    common_pb2.TIMEFRAME_30M: "30m",
    common_pb2.TIMEFRAME_1H: "1h",
    common_pb2.TIMEFRAME_2H: "2h",
    common_pb2.TIMEFRAME_4H: "4h",
    common_pb2.TIMEFRAME_6H: "6h",
    common_pb2.TIMEFRAME_8H: "8h",
    common_pb2.TIMEFRAME_12H: "12h",
    common_pb2.TIMEFRAME_1D: "1d",
    common_pb2.TIMEFRAME_1W: "1w",
    # ccxt's "1M" is a month; TIMEFRAME_1M stays one minute.
    common_pb2.TIMEFRAME_1MO: "1M",
}
TIMEFRAME_ENUMS = {name: value for value, name in TIMEFRAMES.items()}
CALENDARS = {
    pb.CALENDAR_UNSPECIFIED: "continuous",
    pb.CALENDAR_CONTINUOUS: "continuous",
    pb.CALENDAR_TRADING_DAYS: "trading_days",
}
CALENDAR_ENUMS = {"continuous": pb.CALENDAR_CONTINUOUS, "trading_days": pb.CALENDAR_TRADING_DAYS}
END_OF_DATA = {
    pb.END_OF_DATA_UNSPECIFIED: EndOfData.LAST_CLOSE,
    pb.END_OF_DATA_LAST_CLOSE: EndOfData.LAST_CLOSE,
    pb.END_OF_DATA_LAST_OPEN: EndOfData.LAST_OPEN,
    pb.END_OF_DATA_LEAVE_OPEN: EndOfData.LEAVE_OPEN,
}
# By bars.engine's exit reason codes (EXIT_REASONS' order); -1 (unknown) is unspecified.
EXIT_REASONS = (
    pb.EXIT_REASON_SIGNAL,
    pb.EXIT_REASON_STOP_LOSS,
    pb.EXIT_REASON_TAKE_PROFIT,
    pb.EXIT_REASON_END_OF_DATA,
    pb.EXIT_REASON_LIQUIDATION,
    pb.EXIT_REASON_OPEN,
)
STATES = {
    jobs.QUEUED: pb.JOB_STATE_QUEUED,
    jobs.RUNNING: pb.JOB_STATE_RUNNING,
    jobs.SUCCEEDED: pb.JOB_STATE_SUCCEEDED,
    jobs.FAILED: pb.JOB_STATE_FAILED,
    jobs.CANCELLED: pb.JOB_STATE_CANCELLED,
}
STATE_NAMES = {value: name for name, value in STATES.items()}
FILL_TIMINGS = {
    pb.FILL_TIMING_UNSPECIFIED: FillTiming.NEXT_OPEN,
    pb.FILL_TIMING_NEXT_OPEN: FillTiming.NEXT_OPEN,
    pb.FILL_TIMING_SAME_CLOSE: FillTiming.SAME_CLOSE,
}
SIZINGS = {
    pb.SIZING_UNSPECIFIED: Sizing.FRACTION_OF_EQUITY,
    pb.SIZING_FRACTION_OF_EQUITY: Sizing.FRACTION_OF_EQUITY,
    pb.SIZING_FIXED_QUANTITY: Sizing.FIXED_QUANTITY,
    pb.SIZING_ALL_IN_WHOLE_UNITS: Sizing.ALL_IN_WHOLE_UNITS,
}
PARAMETER_TYPES = {
    "int": pb.PARAMETER_TYPE_INT,
    "float": pb.PARAMETER_TYPE_FLOAT,
    "bool": pb.PARAMETER_TYPE_BOOL,
}
EXPORT_TABLES = {
    pb.EXPORT_TABLE_UNSPECIFIED: "trades",
    pb.EXPORT_TABLE_TRADES: "trades",
    pb.EXPORT_TABLE_EQUITY_CURVE: "equity_curve",
}
DEFAULT_EQUITY_POINTS = 1000
MAX_EQUITY_POINTS = 20_000


class BacktestServicer(backtest_pb2_grpc.BacktestServiceServicer):
    def __init__(
        self,
        catalog: StrategyCatalog,
        datasets: DatasetStore,
        manager: jobs.JobManager,
        exchange_address: str,
        grpc_settings: GrpcSettings,
    ) -> None:
        self.catalog = catalog
        self.datasets = datasets
        self.jobs = manager
        self.exchange_address = exchange_address
        self.grpc_settings = grpc_settings

    async def ListStrategies(
        self, request: pb.ListStrategiesRequest, context: Context
    ) -> pb.ListStrategiesResponse:
        return pb.ListStrategiesResponse(
            strategies=[_strategy(s, pb.ENGINE_BAR) for s in self.catalog]
            + [_strategy(s, pb.ENGINE_TICK) for s in TICK_STRATEGIES.values()]
        )

    async def ImportDataset(
        self, request: pb.ImportDatasetRequest, context: Context
    ) -> pb.ImportDatasetResponse:
        chunked = bool(request.upload_id or request.more_chunks)
        upload, upload_size = None, 0
        if chunked:
            if request.format == pb.DATASET_FORMAT_EXCHANGE or request.path:
                raise InvalidArgument(
                    [FieldViolation("upload_id", "chunks carry file content, not a path")]
                )
            received = await self.datasets.receive_chunk(
                Chunk(request.upload_id, request.chunk_offset, request.content, request.more_chunks)
            )
            if request.more_chunks:
                return pb.ImportDatasetResponse(
                    upload_id=received.upload_id, received_bytes=received.size
                )
            upload, upload_size = received.path, received.size
        timeframe = _timeframe(request)
        content, source_format = request.content, FORMATS.get(request.format, "")
        if request.format == pb.DATASET_FORMAT_EXCHANGE:
            content, source_format = await self._fetch_from_exchange(request), "freqtrade_json"
        elif not source_format:
            # A chunked upload stays: the last chunk can be sent again, completed.
            raise InvalidArgument([FieldViolation("format", "choose a dataset format")])
        row = await self.datasets.import_dataset(
            ImportRequest(
                name=request.name,
                source_format=source_format,
                content=b"" if upload is not None else content,
                path=request.path,
                symbol=request.symbol,
                timeframe=timeframe,
                tick_size=request.tick_size,
                lot_size=request.lot_size,
                calendar=CALENDARS.get(request.calendar, ""),
                adjusted_close=request.adjusted_close,
                upload=upload,
            )
        )
        response = pb.ImportDatasetResponse(dataset=_dataset(row))
        if upload is not None:
            response.upload_id = request.upload_id
            response.received_bytes = upload_size
        return response

    async def _fetch_from_exchange(self, request: pb.ImportDatasetRequest) -> bytes:
        violations = [
            FieldViolation(name, "is required to fetch candles through the exchange service")
            for name, given in (
                ("venue", request.venue),
                ("symbol", request.symbol),
                ("timeframe", request.timeframe in TIMEFRAMES),
                ("start_time", request.HasField("start_time")),
            )
            if not given
        ]
        if request.timeframe == common_pb2.TIMEFRAME_1MO:
            violations.append(
                FieldViolation(
                    "timeframe",
                    "the exchange service has no monthly candles; import a file of them",
                )
            )
        if request.content or request.path:
            violations.append(FieldViolation("content", "give no content or path with EXCHANGE"))
        if violations:
            raise InvalidArgument(violations)
        end = request.end_time if request.HasField("end_time") else None
        return await fetch_candles(
            self.exchange_address,
            self.grpc_settings,
            venue=request.venue,
            symbol=request.symbol,
            timeframe=request.timeframe,
            start_ms=request.start_time.ToMilliseconds(),
            end_ms=end.ToMilliseconds() if end is not None else _now_ms(),
        )

    async def ListDatasets(
        self, request: pb.ListDatasetsRequest, context: Context
    ) -> pb.ListDatasetsResponse:
        offset, limit = paging.page_window(request.page_size, request.page_token)
        rows = await self.datasets.page(offset, limit)
        return pb.ListDatasetsResponse(
            datasets=[_dataset(row) for row in rows],
            next_page_token=paging.next_token(offset, limit, len(rows)),
        )

    async def ListDatasetCandles(
        self, request: pb.ListDatasetCandlesRequest, context: Context
    ) -> pb.ListDatasetCandlesResponse:
        page = await candle_pages.list_candles(self.datasets, request)
        return pb.ListDatasetCandlesResponse(
            candles=page.candles, next_page_token=page.next_page_token
        )

    async def DeleteDataset(
        self, request: pb.DeleteDatasetRequest, context: Context
    ) -> pb.DeleteDatasetResponse:
        await self.datasets.delete(request.dataset_id)
        return pb.DeleteDatasetResponse()

    async def SubmitBacktest(
        self, request: pb.SubmitBacktestRequest, context: Context
    ) -> pb.SubmitBacktestResponse:
        violations: list[FieldViolation] = []
        engine = "tick" if request.engine == pb.ENGINE_TICK else "bar"
        strategy = self._strategy_named(request.strategy, engine, violations)
        bar = requests.check_bar_settings(_bar_settings(request.bar_settings), violations)
        if request.bar_settings.end_of_data not in END_OF_DATA:
            violations.append(FieldViolation("bar_settings.end_of_data", "unknown value"))
        tick = requests.check_tick_settings(_tick_settings(request.tick_settings), violations)
        grid: dict[str, list[float]] = {}
        for position, parameter_grid in enumerate(request.sweep.grids):
            if parameter_grid.name in grid:
                violations.append(FieldViolation(f"sweep.grids[{position}].name", "appears twice"))
            grid[parameter_grid.name] = list(parameter_grid.values)
        if violations or strategy is None:
            raise InvalidArgument(violations)
        # Annualization follows the dataset's calendar (unless periods_per_year is given).
        dataset = await self.datasets.get(request.dataset_id)
        bar = replace(bar, calendar=Calendar(dataset.calendar or "continuous"))
        row = await self.jobs.submit(
            requests.SubmitRequest(
                dataset_id=request.dataset_id,
                engine=engine,
                strategy=strategy.name,
                parameters=dict(request.parameters),
                bar=bar,
                tick=tick,
                grid=grid,
                rank_by=request.sweep.rank_by,
            ),
            strategy,
        )
        return pb.SubmitBacktestResponse(job=_job(row))

    def _strategy_named(
        self, name: str, engine: str, violations: list[FieldViolation]
    ) -> StrategyDefinition | None:
        if engine == "tick":
            name = name or "grid_market_maker"
            if name in TICK_STRATEGIES:
                return TICK_STRATEGIES[name]
        else:
            try:
                return self.catalog.get(name)
            except UnknownStrategy:
                pass
        violations.append(
            FieldViolation("strategy", f"no {engine} strategy {name!r}; see ListStrategies")
        )
        return None

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=_job(await self.jobs.get(request.job_id)))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        offset, limit = paging.page_window(request.page_size, request.page_token)
        states = [STATE_NAMES[s] for s in request.states if s in STATE_NAMES]
        rows = await self.jobs.page(states, offset, limit)
        return pb.ListJobsResponse(
            jobs=[_job(row) for row in rows],
            next_page_token=paging.next_token(offset, limit, len(rows)),
        )

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: Context
    ) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(job=_job(await self.jobs.cancel(request.job_id)))

    async def StreamJob(
        self, request: pb.StreamJobRequest, context: Context
    ) -> AsyncIterator[pb.StreamJobResponse]:
        async for row in self.jobs.watch(request.job_id):
            yield pb.StreamJobResponse(progress=_job(row))
            if row.state == jobs.SUCCEEDED:
                result = await self._result(row, 0, 0, "", 0)
                yield pb.StreamJobResponse(result=result)

    async def GetResult(
        self, request: pb.GetResultRequest, context: Context
    ) -> pb.GetResultResponse:
        row = await self.jobs.get(request.job_id)
        return await self._result(
            row,
            request.run_index,
            request.page_size,
            request.page_token,
            request.max_equity_points,
        )

    async def ExportResult(
        self, request: pb.ExportResultRequest, context: Context
    ) -> pb.ExportResultResponse:
        job = await self.jobs.get(request.job_id)
        if job.state != jobs.SUCCEEDED:
            raise _not_ready(job)
        if request.table not in EXPORT_TABLES:
            raise InvalidArgument([FieldViolation("table", "unknown value")])
        run, ranked = await self._run_of(job, request.run_index)
        if not run.file_name:
            raise FailedPrecondition(
                f"run {run.run_index} of job {job.job_id} kept no trades or curve (a sweep "
                f"keeps those of its best runs: {', '.join(str(r.run_index) for r in ranked)})",
                reason="RUN_DETAILS_NOT_KEPT",
            )
        from services.backtest import export  # noqa: PLC0415 - numpy, on demand
        from services.backtest.jobs import results  # noqa: PLC0415 - numpy, on demand

        stored = await asyncio.to_thread(results.load, self.jobs.results_dir / run.file_name)
        table = EXPORT_TABLES[request.table]

        text, rows = await asyncio.to_thread(export.to_csv, stored, table)
        return pb.ExportResultResponse(
            content_type="text/csv",
            file_name=f"{job.job_id}-run-{run.run_index}-{table.replace('_', '-')}.csv",
            csv=text,
            rows=rows,
        )

    async def _run_of(self, job: JobRow, run_index: int) -> tuple[RunRow, list[RunRow]]:
        """The run a request names (0: the single run, or the sweep's best), and the
        job's runs ranked."""
        ranked = await self.jobs.runs(job.job_id, job.rank_by)
        if run_index == 0:
            run = ranked[0] if ranked else None
        else:
            run = next((r for r in ranked if r.run_index == run_index), None)
        if run is None:
            raise InvalidArgument(
                [FieldViolation("run_index", f"job {job.job_id} has runs 1..{len(ranked)}")]
            )
        return run, ranked

    async def _result(
        self, job: JobRow, run_index: int, page_size: int, page_token: str, max_points: int
    ) -> pb.GetResultResponse:
        if job.state != jobs.SUCCEEDED:
            raise _not_ready(job)
        offset, limit = paging.page_window(page_size, page_token)
        if max_points < 0:
            raise InvalidArgument([FieldViolation("max_equity_points", "must not be negative")])
        run, ranked = await self._run_of(job, run_index)
        response = pb.GetResultResponse(
            job_id=job.job_id,
            run_index=run.run_index,
            strategy=job.strategy,
            parameters=run.parameters,
            metrics=_metrics(run),
        )
        if job.rank_by:
            response.ranking.extend(
                pb.RunSummary(run_index=r.run_index, parameters=r.parameters, metrics=_metrics(r))
                for r in ranked
            )
        if run.file_name:
            from services.backtest.jobs import results  # noqa: PLC0415 - numpy, on demand

            stored = await asyncio.to_thread(results.load, self.jobs.results_dir / run.file_name)
            _fill_details(response, stored, offset, limit, max_points)
        return response


def _fill_details(
    response: pb.GetResultResponse,
    stored: results.StoredRun,
    offset: int,
    limit: int,
    max_points: int,
) -> None:
    from services.backtest.jobs import results  # noqa: PLC0415 - numpy, on demand

    trades = results.trade_page(stored, offset, limit)
    for k in range(len(trades["pnl"])):
        direction = int(trades["direction"][k])
        response.trades.append(
            pb.Trade(
                side=common_pb2.SIDE_BUY if direction > 0 else common_pb2.SIDE_SELL,
                entry_time=timestamp_ms(int(trades["entry_time_ms"][k])),
                exit_time=timestamp_ms(int(trades["exit_time_ms"][k])),
                quantity=float(trades["quantity"][k]),
                entry_price=float(trades["entry_price"][k]),
                exit_price=float(trades["exit_price"][k]),
                pnl=float(trades["pnl"][k]),
                return_fraction=float(trades["return_fraction"][k]),
                fees=float(trades["fees"][k]),
                entry_bar=int(trades["entry_bar"][k]),
                exit_bar=int(trades["exit_bar"][k]),
                exit_reason=_exit_reason(int(trades["exit_reason"][k])),
            )
        )
    response.next_page_token = paging.next_token(
        offset, limit, len(trades["pnl"]), stored.trade_count
    )
    points = min(max_points or DEFAULT_EQUITY_POINTS, MAX_EQUITY_POINTS)
    times, values = results.equity_sample(stored, points)
    response.equity_curve.extend(
        pb.EquitySample(time=timestamp_ms(int(t)), equity=float(v))
        for t, v in zip(times.tolist(), values.tolist(), strict=True)
    )


def _not_ready(job: JobRow) -> Exception:
    detail = f": {job.error}" if job.error else ""
    return FailedPrecondition(
        f"job {job.job_id} is {job.state}{detail}; results exist once it has succeeded",
        reason="JOB_NOT_SUCCEEDED",
    )


def _bar_settings(message: pb.BarSettings) -> BarSettings:
    return BarSettings(
        initial_cash=message.initial_cash,
        fee_rate=message.fee_rate,
        fee_fixed=message.fee_fixed,
        slippage_bps=message.slippage_bps,
        fill_timing=FILL_TIMINGS.get(message.fill_timing, FillTiming.NEXT_OPEN),
        sizing=SIZINGS.get(message.sizing, Sizing.FRACTION_OF_EQUITY),
        size=message.size,
        allow_short=message.allow_short,
        stop_loss=message.stop_loss,
        take_profit=message.take_profit,
        end_of_data=END_OF_DATA.get(message.end_of_data, EndOfData.LAST_CLOSE),
        maintenance_margin=message.maintenance_margin,
        periods_per_year=message.periods_per_year,
    )


def _timeframe(request: pb.ImportDatasetRequest) -> str | None:
    """The timeframe named by the enum or in ccxt's spelling; None: inferred."""
    if request.ccxt_timeframe:
        if request.timeframe != common_pb2.TIMEFRAME_UNSPECIFIED:
            raise InvalidArgument(
                [FieldViolation("ccxt_timeframe", "give either timeframe or ccxt_timeframe")]
            )
        if request.ccxt_timeframe not in DATASET_TIMEFRAMES:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "ccxt_timeframe",
                        f"must be one of {', '.join(DATASET_TIMEFRAMES)} "
                        "(case matters: 1m is a minute, 1M a month)",
                    )
                ]
            )
        return request.ccxt_timeframe
    if request.timeframe != common_pb2.TIMEFRAME_UNSPECIFIED and (
        request.timeframe not in TIMEFRAMES
    ):
        raise InvalidArgument([FieldViolation("timeframe", "unknown timeframe")])
    return TIMEFRAMES.get(request.timeframe)


def _exit_reason(code: int) -> pb.ExitReason.ValueType:
    return EXIT_REASONS[code] if 0 <= code < len(EXIT_REASONS) else pb.EXIT_REASON_UNSPECIFIED


def _tick_settings(message: pb.TickSettings) -> TickSettings:
    return TickSettings(
        maker_fee=message.maker_fee,
        taker_fee=message.taker_fee,
        entry_latency_ns=message.entry_latency.ToNanoseconds(),
        response_latency_ns=message.response_latency.ToNanoseconds(),
        queue_model=message.queue_model or "risk_adverse",
        initial_cash=message.initial_cash,
    )


def _strategy(strategy: StrategyDefinition, engine: int) -> pb.Strategy:
    return pb.Strategy(
        name=strategy.name,
        description=strategy.description,
        engine=engine,  # type: ignore[arg-type]
        user_defined=strategy.user_defined,
        parameters=[
            pb.ParameterSpec(
                name=p.name,
                type=PARAMETER_TYPES[p.kind],
                description=p.description,
                default_value=p.default,
                min_value=p.minimum,
                max_value=p.maximum,
            )
            for p in strategy.parameters
        ],
    )


def _dataset(row: DatasetRow) -> pb.Dataset:
    return pb.Dataset(
        dataset_id=row.dataset_id,
        name=row.name,
        kind=pb.DATASET_KIND_CANDLES if row.kind == "candles" else pb.DATASET_KIND_TICKS,
        symbol=row.symbol,
        timeframe=TIMEFRAME_ENUMS.get(row.timeframe, common_pb2.TIMEFRAME_UNSPECIFIED),
        rows=row.rows,
        start_time=timestamp_ms(row.start_ms),
        end_time=timestamp_ms(row.end_ms),
        size_bytes=row.size_bytes,
        gaps=[
            pb.Gap(
                after_time=timestamp_ms(after),
                resume_time=timestamp_ms(resume),
                missing_candles=missing,
            )
            for after, resume, missing in row.gaps
        ],
        create_time=timestamp(row.create_time),
        tick_size=row.tick_size,
        lot_size=row.lot_size,
        calendar=CALENDAR_ENUMS.get(row.calendar, pb.CALENDAR_CONTINUOUS),
    )


def _job(row: JobRow) -> pb.Job:
    job = pb.Job(
        job_id=row.job_id,
        state=STATES[row.state],
        progress=row.progress,
        message=row.message,
        engine=pb.ENGINE_TICK if row.engine == "tick" else pb.ENGINE_BAR,
        strategy=row.strategy,
        dataset_id=row.dataset_id,
        runs_total=row.runs_total,
        runs_done=row.runs_done,
        error=row.error,
        submit_time=timestamp(row.submit_time),
    )
    if row.start_time is not None:
        job.start_time.CopyFrom(timestamp(row.start_time))
    if row.end_time is not None:
        job.end_time.CopyFrom(timestamp(row.end_time))
    return job


def _metrics(run: RunRow) -> pb.Metrics:
    duration = Duration()
    duration.FromMilliseconds(run.max_drawdown_duration_ms)
    values: Mapping[str, float] = {name: getattr(run, name) for name in FLOAT_METRICS}
    metrics = pb.Metrics(
        max_drawdown_duration=duration,
        trades=run.trades,
        liquidated=run.liquidated,
        liquidation_bar=run.liquidation_bar if run.liquidated else 0,
    )
    for name, value in values.items():
        # NaN never leaves the service; +inf (a profit factor without losses) does.
        setattr(metrics, name, 0.0 if math.isnan(value) else float(value))
    if run.liquidated:
        metrics.liquidation_time.CopyFrom(timestamp_ms(run.liquidation_time_ms))
    return metrics


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
