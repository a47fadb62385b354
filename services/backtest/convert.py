"""Domain objects <-> protobuf messages of the backtest contract.

Every enum crosses here through an explicit map (never by its proto number); an unknown
value in a request becomes a field violation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from common import paging, timeframes
from common.validation import Violations
from common.wire import decimal_text, timestamp, timestamp_ms
from edgequant.backtest.v1 import backtest_pb2 as pb
from edgequant.common.v1 import common_pb2
from services.backtest.bars.metric_names import FLOAT_METRICS
from services.backtest.bars.settings import BarSettings, EndOfData, FillTiming, Sizing
from services.backtest.datasets import candle_pages
from services.backtest.datasets.dataset import Dataset
from services.backtest.datasets.intake import DatasetIntake
from services.backtest.jobs import manager as jobs
from services.backtest.jobs.records import Job, RunResult
from services.backtest.jobs.spec import TickSettings
from services.backtest.strategies.base import StrategyDefinition
from services.backtest.submission import Submission

if TYPE_CHECKING:
    from services.backtest.results import ResultView

# Page-token kinds (common.paging refuses one listing's token in another).
DATASETS_PAGE, JOBS_PAGE, TRADES_PAGE = "datasets", "jobs", "trades"

ENGINES = {pb.ENGINE_UNSPECIFIED: "bar", pb.ENGINE_BAR: "bar", pb.ENGINE_TICK: "tick"}
ENGINE_ENUMS = {"bar": pb.ENGINE_BAR, "tick": pb.ENGINE_TICK}
FORMATS = {
    pb.DATASET_FORMAT_CSV: "csv",
    pb.DATASET_FORMAT_FREQTRADE_JSON: "freqtrade_json",
    pb.DATASET_FORMAT_HFTBACKTEST_NPZ: "hftbacktest_npz",
    pb.DATASET_FORMAT_BINANCE_FUTURES_RAW: "binance_futures_raw",
    pb.DATASET_FORMAT_EXCHANGE: "exchange",
}
DATASET_KINDS = {"candles": pb.DATASET_KIND_CANDLES, "ticks": pb.DATASET_KIND_TICKS}
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


# -- requests ---------------------------------------------------------------------------


def dataset_intake(request: pb.ImportDatasetRequest, problems: Violations) -> DatasetIntake:
    start = request.start_time.ToMilliseconds() if request.HasField("start_time") else None
    end = request.end_time.ToMilliseconds() if request.HasField("end_time") else None
    return DatasetIntake(
        name=request.name,
        source_format=FORMATS.get(request.format, ""),
        content=request.content,
        path=request.path,
        symbol=request.symbol,
        timeframe=_dataset_timeframe(request, problems),
        tick_size=request.tick_size,
        lot_size=request.lot_size,
        calendar=CALENDARS.get(request.calendar, ""),
        adjusted_close=request.adjusted_close,
        upload_id=request.upload_id,
        chunk_offset=request.chunk_offset,
        more_chunks=request.more_chunks,
        venue=request.venue,
        start_ms=start,
        end_ms=end,
    )


def _dataset_timeframe(request: pb.ImportDatasetRequest, problems: Violations) -> str | None:
    """The timeframe named by the enum or in ccxt's spelling; None: inferred from the file."""
    if request.ccxt_timeframe:
        problems.require(
            request.timeframe == common_pb2.TIMEFRAME_UNSPECIFIED,
            "ccxt_timeframe",
            "give either timeframe or ccxt_timeframe",
        )
        if timeframes.by_name(request.ccxt_timeframe) is None:
            problems.add(
                "ccxt_timeframe",
                f"must be one of {', '.join(timeframes.NAMES)} "
                "(case matters: 1m is a minute, 1M a month)",
            )
            return None
        return request.ccxt_timeframe
    if request.timeframe == common_pb2.TIMEFRAME_UNSPECIFIED:
        return None
    timeframe = timeframes.from_proto(request.timeframe)
    problems.require(timeframe is not None, "timeframe", "unknown timeframe")
    return timeframe.name if timeframe else None


def submission(request: pb.SubmitBacktestRequest, problems: Violations) -> Submission:
    problems.require(request.engine in ENGINES, "engine", "unknown value")
    problems.require(
        request.bar_settings.end_of_data in END_OF_DATA, "bar_settings.end_of_data", "unknown value"
    )
    return Submission(
        dataset_id=request.dataset_id,
        engine=ENGINES.get(request.engine, "bar"),
        strategy=request.strategy,
        parameters=dict(request.parameters),
        bar=bar_settings(request.bar_settings),
        tick=tick_settings(request.tick_settings),
        grids=tuple((grid.name, tuple(grid.values)) for grid in request.sweep.grids),
        rank_by=request.sweep.rank_by,
    )


def bar_settings(message: pb.BarSettings) -> BarSettings:
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


def tick_settings(message: pb.TickSettings) -> TickSettings:
    return TickSettings(
        maker_fee=message.maker_fee,
        taker_fee=message.taker_fee,
        entry_latency_ns=message.entry_latency.ToNanoseconds(),
        response_latency_ns=message.response_latency.ToNanoseconds(),
        queue_model=message.queue_model or "risk_adverse",
        initial_cash=message.initial_cash,
    )


def job_states(values: Any, problems: Violations) -> list[str]:
    states = [STATE_NAMES.get(value) for value in values]
    problems.require(None not in states, "states", "contains an unknown state")
    return [state for state in states if state is not None]


def export_table(value: int, problems: Violations) -> str:
    table = EXPORT_TABLES.get(value)  # type: ignore[call-overload]
    problems.require(table is not None, "table", "unknown value")
    return str(table or "trades")


# -- responses --------------------------------------------------------------------------


def strategy(definition: StrategyDefinition, engine: str) -> pb.Strategy:
    return pb.Strategy(
        name=definition.name,
        description=definition.description,
        engine=ENGINE_ENUMS[engine],
        user_defined=definition.user_defined,
        parameters=[
            pb.ParameterSpec(
                name=p.name,
                type=PARAMETER_TYPES[p.kind],
                description=p.description,
                default_value=p.default,
                min_value=p.minimum,
                max_value=p.maximum,
            )
            for p in definition.parameters
        ],
    )


def dataset(d: Dataset) -> pb.Dataset:
    return pb.Dataset(
        dataset_id=d.dataset_id,
        name=d.name,
        kind=DATASET_KINDS[d.kind],
        symbol=d.symbol,
        timeframe=timeframes.to_proto(d.timeframe),  # type: ignore[arg-type]
        rows=d.rows,
        start_time=timestamp_ms(d.start_ms),
        end_time=timestamp_ms(d.end_ms),
        size_bytes=d.size_bytes,
        gaps=[
            pb.Gap(
                after_time=timestamp_ms(after),
                resume_time=timestamp_ms(resume),
                missing_candles=missing,
            )
            for after, resume, missing in d.gaps
        ],
        create_time=timestamp(d.create_time),
        tick_size=d.tick_size,
        lot_size=d.lot_size,
        calendar=CALENDAR_ENUMS.get(d.calendar, pb.CALENDAR_CONTINUOUS),
    )


def job(row: Job) -> pb.Job:
    message = pb.Job(
        job_id=row.job_id,
        state=STATES[row.state],
        progress=row.progress,
        message=row.message,
        engine=ENGINE_ENUMS.get(row.engine, pb.ENGINE_BAR),
        strategy=row.strategy,
        dataset_id=row.dataset_id,
        runs_total=row.runs_total,
        runs_done=row.runs_done,
        error=row.error,
        submit_time=timestamp(row.submit_time),
    )
    if row.start_time is not None:
        message.start_time.CopyFrom(timestamp(row.start_time))
    if row.end_time is not None:
        message.end_time.CopyFrom(timestamp(row.end_time))
    return message


def metrics(run: RunResult) -> pb.Metrics:
    duration = Duration()
    duration.FromMilliseconds(run.max_drawdown_duration_ms)
    values: Mapping[str, float] = {name: getattr(run, name) for name in FLOAT_METRICS}
    message = pb.Metrics(
        max_drawdown_duration=duration,
        trades=run.trades,
        liquidated=run.liquidated,
        liquidation_bar=run.liquidation_bar if run.liquidated else 0,
    )
    for name, value in values.items():
        # NaN never leaves the service; +inf (a profit factor without losses) does.
        setattr(message, name, 0.0 if math.isnan(value) else float(value))
    if run.liquidated:
        message.liquidation_time.CopyFrom(timestamp_ms(run.liquidation_time_ms))
    return message


def result(read: ResultView) -> pb.GetResultResponse:
    job_row, run, ranked, details = read.job, read.run, read.ranked, read.details
    response = pb.GetResultResponse(
        job_id=job_row.job_id,
        run_index=run.run_index,
        strategy=job_row.strategy,
        parameters=run.parameters,
        metrics=metrics(run),
    )
    if job_row.rank_by:
        response.ranking.extend(
            pb.RunSummary(run_index=r.run_index, parameters=r.parameters, metrics=metrics(r))
            for r in ranked
        )
    if details is not None:
        response.trades.extend(_trades(details.trades))
        response.next_page_token = paging.offset_token(
            TRADES_PAGE, details.page, len(details.trades["pnl"]), details.trade_count
        )
        response.equity_curve.extend(
            pb.EquitySample(time=timestamp_ms(int(t)), equity=float(v))
            for t, v in zip(details.equity_time_ms, details.equity, strict=True)
        )
    return response


def _trades(trades: Mapping[str, Any]) -> list[pb.Trade]:
    return [
        pb.Trade(
            side=common_pb2.SIDE_BUY if int(trades["direction"][k]) > 0 else common_pb2.SIDE_SELL,
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
        for k in range(len(trades["pnl"]))
    ]


def _exit_reason(code: int) -> pb.ExitReason.ValueType:
    return EXIT_REASONS[code] if 0 <= code < len(EXIT_REASONS) else pb.EXIT_REASON_UNSPECIFIED


def candle_query(request: pb.ListDatasetCandlesRequest) -> candle_pages.CandleQuery:
    """The query a ListDatasetCandles request asks for; INVALID_ARGUMENT naming every bad field."""
    problems = Violations()
    problems.require(bool(request.dataset_id), "dataset_id", "is required")
    page = paging.read_page(
        request.page_size,
        request.page_token,
        kind=candle_pages.PAGE_KIND,
        problems=problems,
        key_length=2,
        default_size=candle_pages.DEFAULT_PAGE_SIZE,
        max_size=candle_pages.MAX_PAGE_SIZE,
    )
    after_ms = None
    if page.after is not None:
        token_dataset, last = page.after
        if token_dataset != request.dataset_id or not _is_ms(last):
            problems.add("page_token", "is not a token of this dataset's candles")
        else:
            after_ms = int(last)
    start_ms = _ms(
        request.start_time if request.HasField("start_time") else None, "start_time", problems
    )
    end_ms = _ms(request.end_time if request.HasField("end_time") else None, "end_time", problems)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        problems.add("end_time", "must be after start_time")
    problems.raise_if_any()
    return candle_pages.CandleQuery(request.dataset_id, page.size, after_ms, start_ms, end_ms)


def candle_page(
    query: candle_pages.CandleQuery, page: candle_pages.CandlePage
) -> pb.ListDatasetCandlesResponse:
    token = (
        paging.page_token(candle_pages.PAGE_KIND, query.dataset_id, str(page.last_ms))
        if page.last_ms is not None
        else ""
    )
    return pb.ListDatasetCandlesResponse(
        candles=[_dataset_candle(row) for row in page.rows], next_page_token=token
    )


def _dataset_candle(row: candle_pages.CandleRow) -> common_pb2.Candle:
    time_ms, opening, high, low, close, volume = row
    return common_pb2.Candle(
        open_time=timestamp_ms(int(time_ms)),
        open=float_text(opening),
        high=float_text(high),
        low=float_text(low),
        close=float_text(close),
        volume=float_text(volume),
    )


def float_text(value: float) -> str:
    """decimal_text of the shortest text that reads back as the same float (its repr):
    "0.1", not "0.1000000000000000055..."."""
    text = repr(value)
    if "e" in text or "n" in text or value == 0:  # exponent, nan, inf, or -0.0
        return decimal_text(Decimal(text)) if math.isfinite(value) else ""
    # A plain repr has a point and no trailing zeros but a lone ".0": the common case,
    # without Decimal (a page of 5,000 candles is 30,000 numbers).
    return text.removesuffix(".0")


def _ms(stamp: Timestamp | None, field: str, problems: Violations) -> int | None:
    if stamp is None or problems.timestamp(field, stamp) is None:
        return None
    return int(stamp.ToMilliseconds())


def _is_ms(text: str) -> bool:
    body = text.removeprefix("-")
    return body.isascii() and body.isdigit() and len(body) <= 18
