"""Tick backtests in a worker: hftbacktest configured from the job, the market maker run,
its records turned into the same results as a bar run (equity curve, trades, metrics).

Trades are round trips: from a flat (or flipped) position back to flat, made of the
fills seen at each requote step (hftbacktest reports position and balance; the step's
fills are their change). PnL of a round trip is its change in balance less fees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

from services.backtest.bars import metrics
from services.backtest.jobs import results
from services.backtest.jobs.spec import JobSpec, Run, TickSettings
from services.backtest.tick.market_maker import RECORD_FIELDS, grid_market_maker
from strategies.candles import FloatArray

NS_PER_MS = 1_000_000


def build_asset(
    dataset_file: str, tick_size: float, lot_size: float, settings: TickSettings
) -> Any:
    asset = (
        BacktestAsset()
        .data([dataset_file])
        .linear_asset(1.0)
        .constant_order_latency(settings.entry_latency_ns, settings.response_latency_ns)
        .trading_value_fee_model(settings.maker_fee, settings.taker_fee)
        .tick_size(tick_size)
        .lot_size(lot_size)
        .no_partial_fill_exchange()
    )
    return _queue_model(asset, settings.queue_model)


def _queue_model(asset: Any, name: str) -> Any:
    if name == "power_prob_2":
        return asset.power_prob_queue_model(2.0)
    if name == "power_prob_3":
        return asset.power_prob_queue_model(3.0)
    if name == "log_prob":
        return asset.log_prob_queue_model()
    if name == "log_prob_2":
        return asset.log_prob_queue_model2()
    return asset.risk_adverse_queue_model()


def run_market_maker(  # noqa: PLR0917
    dataset_file: str,
    tick_size: float,
    lot_size: float,
    settings: TickSettings,
    parameters: dict[str, float],
    span_ns: int,
) -> FloatArray:
    """The raw records (time, mid, position, balance, fee) of one run."""
    interval_ns = int(parameters["update_interval_ms"]) * NS_PER_MS
    hbt = HashMapMarketDepthBacktest([build_asset(dataset_file, tick_size, lot_size, settings)])
    records = np.zeros((span_ns // interval_ns + 2, RECORD_FIELDS))
    try:
        count = grid_market_maker(
            hbt,
            interval_ns,
            float(parameters["half_spread_bps"]),
            float(parameters["grid_spacing_bps"]),
            int(parameters["levels"]),
            float(parameters["order_quantity"]),
            float(parameters["max_position"]),
            records,
        )
    finally:
        hbt.close()
    return records[:count]


class TickRunner:
    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        with np.load(spec.dataset_file) as archive:
            local = archive["data"]["local_ts"]
            self.span_ns = int(local.max() - local.min())

    def __call__(self, run: Run) -> tuple[dict[str, float], results.StoredRun]:
        spec = self.spec
        records = run_market_maker(
            spec.dataset_file,
            spec.tick_size,
            spec.lot_size,
            spec.tick,
            run.parameters,
            self.span_ns,
        )
        return summarize(
            records,
            spec.tick.initial_cash or 10_000.0,
            int(run.parameters["update_interval_ms"]),
            spec.lot_size,
        )


def summarize(
    records: FloatArray, initial_cash: float, interval_ms: int, lot_size: float
) -> tuple[dict[str, float], results.StoredRun]:
    """Equity, round trips and metrics from the market maker's records."""
    quoted = records[~np.isnan(records[:, 1])]
    if len(quoted) < 2:
        raise ValueError("the book never had both sides: no quotes were made")
    time_ms = (quoted[:, 0] // NS_PER_MS).astype(np.int64)
    mid, balance, fee = quoted[:, 1], quoted[:, 3], quoted[:, 4]
    # Whole lots: a position summed from float fills is 1e-17 off flat.
    position = np.round(quoted[:, 2] / lot_size) * lot_size
    equity = initial_cash + balance + position * mid - fee
    trades = round_trips(time_ms, mid, position, balance, fee)
    pnl = trades["pnl"]
    measured = metrics.compute(
        initial_cash=initial_cash,
        time_ms=time_ms,
        close=mid,
        equity=equity,
        position=position,
        pnl=pnl,
        trade_returns=trades["return_fraction"],
        bar_ms=interval_ms,
    )
    return measured.as_dict(), results.StoredRun(time_ms, equity, trades)


def round_trips(  # noqa: PLR0915 - one pass over the fills
    time_ms: np.ndarray[Any, Any],
    mid: FloatArray,
    position: FloatArray,
    balance: FloatArray,
    fee: FloatArray,
) -> dict[str, np.ndarray[Any, Any]]:
    """Round trips of the position path: flat (or a flip) to flat; one still open at the
    end is closed at the last mid, fee-free (as the bar engine closes at the last close).
    Loops over the steps with a fill, not over every step."""
    columns: dict[str, list[float]] = {name: [] for name in results.TRADE_COLUMNS}
    moved = np.flatnonzero(np.diff(position, prepend=0.0) != 0)
    start: int | None = None
    opened_value = closed_value = peak = 0.0
    previous_position = 0.0
    previous_balance = 0.0
    previous_fee = 0.0
    start_balance = start_fee = 0.0
    for step in moved.tolist():
        now = float(position[step])
        traded_value = float(previous_balance - balance[step])  # bought value (sold: negative)
        change = now - previous_position
        price = traded_value / change if change else 0.0
        if start is None:
            start, opened_value, closed_value, peak = step, 0.0, 0.0, 0.0
            start_balance, start_fee = previous_balance, previous_fee
        direction = 1.0 if (previous_position or now) > 0 else -1.0
        opening = abs(now) > abs(previous_position) and previous_position * now >= 0
        if opening:
            opened_value += abs(change) * price
        else:
            closed_value += abs(change) * price
        peak = max(peak, abs(now))
        if now == 0 or previous_position * now < 0:
            columns["direction"].append(direction)
            columns["entry_time_ms"].append(float(time_ms[start]))
            columns["exit_time_ms"].append(float(time_ms[step]))
            columns["quantity"].append(peak)
            columns["entry_price"].append(opened_value / peak if peak else price)
            columns["exit_price"].append(closed_value / peak if peak else price)
            trade_pnl = float(balance[step] - start_balance - (fee[step] - start_fee))
            if now != 0:  # a flip: the new side's value stays in the next round trip
                trade_pnl += now * price
            columns["pnl"].append(trade_pnl)
            columns["fees"].append(float(fee[step] - start_fee))
            notional = opened_value or 1.0
            columns["return_fraction"].append(trade_pnl / notional)
            start = step if now != 0 else None
            opened_value, closed_value, peak = abs(now) * price, 0.0, abs(now)
            start_balance = float(balance[step]) + now * price
            start_fee = float(fee[step])
        previous_position, previous_balance, previous_fee = (
            now,
            float(balance[step]),
            float(fee[step]),
        )
    if start is not None and previous_position != 0:
        last = len(mid) - 1
        closing = float(mid[last])
        closed_value += abs(previous_position) * closing
        columns["direction"].append(1.0 if previous_position > 0 else -1.0)
        columns["entry_time_ms"].append(float(time_ms[start]))
        columns["exit_time_ms"].append(float(time_ms[last]))
        columns["quantity"].append(peak)
        columns["entry_price"].append(opened_value / peak)
        columns["exit_price"].append(closed_value / peak)
        trade_pnl = previous_balance + previous_position * closing - start_balance
        trade_pnl -= previous_fee - start_fee
        columns["pnl"].append(trade_pnl)
        columns["fees"].append(previous_fee - start_fee)
        columns["return_fraction"].append(trade_pnl / (opened_value or 1.0))
    return {
        name: np.asarray(
            values, dtype=np.int64 if name.endswith("_ms") or name == "direction" else np.float64
        )
        for name, values in columns.items()
    }
