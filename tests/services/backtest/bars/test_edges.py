"""The bar engine at its edges: liquidation (bust, gaps through zero, maintenance
margin), the end-of-data option, and annualization, against hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from services.backtest.bars import metrics
from services.backtest.bars.backtest import run_bar_backtest
from services.backtest.bars.engine import (
    EXIT_END,
    EXIT_LIQUIDATION,
    EXIT_OPEN,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    simulate,
)
from services.backtest.bars.settings import BarSettings, Calendar, EndOfData, Sizing
from strategies.base import StrategyDefinition
from strategies.candles import Candles, FloatArray, IntArray

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def bars(
    opens: Sequence[float], highs: Sequence[float], lows: Sequence[float], closes: Sequence[float]
) -> Candles:
    n = len(closes)
    return Candles(
        time=np.arange(n, dtype=np.int64) * HOUR_MS + 1_700_000_000_000,
        open=np.array(opens, dtype=float),
        high=np.array(highs, dtype=float),
        low=np.array(lows, dtype=float),
        close=np.array(closes, dtype=float),
        volume=np.ones(n),
    )


def target(n: int, changes: dict[int, float]) -> FloatArray:
    wanted = np.full(n, np.nan)
    for bar, value in changes.items():
        wanted[bar] = value
    return wanted


def running_away(gap_open: float, gap_high: float) -> Candles:
    """A short entered at 100 on bar 1's open; prices rise until bar 5 (opening at
    `gap_open`, reaching `gap_high`), then fall back."""
    opens = [100, 100, 120, 150, 180, gap_open, 90, 80]
    highs = [100, 125, 155, 185, 195, gap_high, 95, 85]
    lows = [100, 95, 115, 145, 175, min(gap_open, 170), 85, 75]
    closes = [100, 120, 150, 180, 190, max(gap_open, 170), 90, 80]
    return bars(opens, highs, lows, closes)


SHORT = BarSettings(initial_cash=10_000.0, allow_short=True)


def test_a_runaway_short_is_liquidated_where_equity_reaches_zero() -> None:
    # Short 100 units at 100 with 10,000: cash 20,000, so equity = 20,000 - 100 * price
    # is zero at 200, which bar 5 (190 -> 210) passes through.
    candles = running_away(gap_open=190, gap_high=210)
    # Bar 6 asks to go long: trading has stopped, nothing happens.
    result = simulate(candles, target(8, {0: -1.0, 6: 1.0}), SHORT)
    assert result.liquidation is not None
    assert result.liquidation.bar == 5
    assert result.liquidation.uncovered_loss == 0.0
    assert len(result.trades) == 1
    trade = result.trades
    assert trade.exit_reason.tolist() == [EXIT_LIQUIDATION]
    assert trade.exit_bar.tolist() == [5]
    assert trade.exit_price.tolist() == [200.0]
    assert trade.pnl.tolist() == [-10_000.0]
    # The curve ends at the liquidation bar, at exactly 0, never below.
    assert result.equity.tolist() == [10_000.0, 8_000.0, 5_000.0, 2_000.0, 1_000.0, 0.0]
    assert result.position.tolist() == [0.0, -100.0, -100.0, -100.0, -100.0, 0.0]


def test_a_gap_through_zero_floors_equity_and_reports_the_uncovered_loss() -> None:
    candles = running_away(gap_open=250, gap_high=260)
    run = run_bar_backtest(candles, _follow(target(8, {0: -1.0, 6: 1.0})), {}, SHORT)
    result = run.result
    assert result.liquidation is not None
    # Bought back at the open, 250: 25,000 against 20,000 of cash.
    assert result.trades.exit_price.tolist() == [250.0]
    assert result.liquidation.uncovered_loss == 5_000.0
    assert result.equity[-1] == 0.0
    assert np.all(result.equity >= 0)
    measured = run.metrics
    assert measured.liquidated
    assert measured.liquidation_bar == 5
    assert measured.liquidation_time_ms == int(candles.time[5])
    assert measured.uncovered_loss == 5_000.0
    assert measured.final_equity == 0.0
    assert measured.total_return == -1.0
    assert measured.cagr == -1.0
    assert measured.max_drawdown == 1.0
    # Computed on the curve up to the liquidation: returns 0, -0.2, -0.375, -0.6,
    # -0.5, -1 (the first against the initial cash).
    returns = np.array([0.0, -0.2, -0.375, -0.6, -0.5, -1.0])
    per_year = 365 * 24
    assert measured.sharpe_ratio == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(per_year)
    )


def test_a_maintenance_margin_liquidates_earlier_and_leaves_that_equity() -> None:
    # Equity 20,000 - 100 p meets half the notional (50 p) at p = 20,000 / 150.
    settings = BarSettings(initial_cash=10_000.0, allow_short=True, maintenance_margin=0.5)
    result = simulate(running_away(190, 210), target(8, {0: -1.0}), settings)
    level = 20_000.0 / 150.0
    assert result.liquidation is not None
    assert result.liquidation.bar == 2  # bar 2 reaches 155; bar 1 only 125
    assert result.trades.exit_price[0] == pytest.approx(level)
    assert result.equity[-1] == pytest.approx(0.5 * 100 * level)
    assert result.liquidation.uncovered_loss == 0.0


def test_a_stop_loss_nearer_than_the_liquidation_price_wins() -> None:
    settings = BarSettings(initial_cash=10_000.0, allow_short=True, stop_loss=0.2)
    result = simulate(running_away(190, 210), target(8, {0: -1.0}), settings)
    assert result.liquidation is None
    assert result.trades.exit_reason.tolist() == [EXIT_STOP_LOSS]
    assert result.trades.exit_price.tolist() == [120.0]


def test_a_leveraged_fixed_quantity_long_is_liquidated_and_an_unleveraged_one_is_not() -> None:
    opens = [100, 100, 90, 60, 45, 50]
    highs = [100, 100, 95, 65, 50, 55]
    lows = [100, 90, 60, 55, 40, 45]
    closes = [100, 95, 65, 58, 48, 52]
    candles = bars(opens, highs, lows, closes)
    # 200 units at 100 with 10,000: cash -10,000, zero equity at 50 (bar 4 opens at 45).
    leveraged = BarSettings(initial_cash=10_000.0, sizing=Sizing.FIXED_QUANTITY, size=200)
    result = simulate(candles, target(6, {0: 1.0}), leveraged)
    assert result.liquidation is not None
    assert result.liquidation.bar == 4
    assert result.trades.exit_price.tolist() == [45.0]
    assert result.liquidation.uncovered_loss == 1_000.0
    assert result.equity[-1] == 0.0
    plain = simulate(candles, target(6, {0: 1.0}), BarSettings(initial_cash=10_000.0))
    assert plain.liquidation is None
    assert plain.trades.exit_reason.tolist() == [EXIT_END]


def _follow(wanted: FloatArray) -> StrategyDefinition:
    return StrategyDefinition("follow", "", (), lambda _candles: wanted)


def trending() -> Candles:
    closes = [100, 101, 102, 103, 104, 105]
    opens = [100, 100.5, 101.5, 102.5, 103.5, 104.5]
    return bars(opens, [c + 1 for c in closes], [o - 1 for o in opens], closes)


def test_end_of_data_closes_at_the_last_close_by_default() -> None:
    result = simulate(trending(), target(6, {0: 1.0}), BarSettings(fee_rate=0.001))
    assert result.trades.exit_reason.tolist() == [EXIT_END]
    assert result.trades.exit_price.tolist() == [105.0]
    assert result.trades.exit_bar.tolist() == [5]
    assert result.position[-1] == 0.0


def test_end_of_data_at_the_last_open() -> None:
    settings = BarSettings(fee_rate=0.001, end_of_data=EndOfData.LAST_OPEN)
    # A second entry signalled on bar 4 would fill on the last open: not taken.
    result = simulate(trending(), target(6, {0: 1.0, 2: 0.0, 4: 1.0}), settings)
    assert result.trades.exit_reason.tolist() == [EXIT_SIGNAL]
    assert result.trades.exit_price.tolist() == [102.5]
    held_to_end = simulate(trending(), target(6, {0: 1.0}), settings)
    assert held_to_end.trades.exit_reason.tolist() == [EXIT_END]
    assert held_to_end.trades.exit_price.tolist() == [104.5]
    assert held_to_end.position[-1] == 0.0


def test_end_of_data_left_open_is_marked_to_market() -> None:
    settings = BarSettings(
        fee_rate=0.001, slippage_bps=10, end_of_data=EndOfData.LEAVE_OPEN, initial_cash=1_000
    )
    wanted = target(6, {0: 1.0, 1: 0.0, 2: 1.0})
    run = run_bar_backtest(trending(), _follow(wanted), {}, settings)
    trades = run.result.trades
    assert trades.exit_reason.tolist() == [EXIT_SIGNAL, EXIT_OPEN]
    # Marked at the last close, no slippage, no exit fee; the position is still held.
    quantity, entry = float(trades.quantity[1]), float(trades.entry_price[1])
    assert trades.exit_price[1] == 105.0
    assert trades.fees[1] == pytest.approx(0.001 * quantity * entry)
    assert trades.pnl[1] == pytest.approx(quantity * (105.0 - entry) - trades.fees[1])
    assert run.result.position[-1] == pytest.approx(quantity)
    closed_equity = float(run.result.equity[2]) + 0  # before the second entry's fill
    assert run.result.equity[-1] == pytest.approx(
        closed_equity - 0.001 * quantity * entry - quantity * entry + quantity * 105.0
    )
    # The open trade is not a closed one.
    assert run.metrics.trades == 1
    assert run.metrics.win_rate == float(trades.pnl[0] > 0)


def test_metrics_formulas_on_a_hand_computed_curve() -> None:
    # Daily bars; equity 110, 99, 108.9 from 100: returns +10 %, -10 %, +10 %.
    time_ms = np.array([0, 1, 2], dtype=np.int64) * DAY_MS
    equity = np.array([110.0, 99.0, 108.9])
    measured = metrics.compute(
        initial_cash=100.0,
        time_ms=time_ms,
        close=np.array([10.0, 9.0, 12.0]),
        equity=equity,
        position=np.array([1.0, 0.0, 1.0]),
        pnl=np.array([10.0, -11.0, 9.9]),
        trade_returns=np.array([0.1, -0.1, 0.1]),
        bar_ms=DAY_MS,
        periods_per_year=252,
    )
    # mean 1/30; deviations 1/15, -2/15, 1/15: variance (6/225)/2 = 1/75.
    assert measured.sharpe_ratio == pytest.approx((1 / 30) * math.sqrt(75) * math.sqrt(252))
    # Downside deviation sqrt(0.01 / 3).
    assert measured.sortino_ratio == pytest.approx((1 / 30) / math.sqrt(0.01 / 3) * math.sqrt(252))
    years = 3 / 365
    assert measured.cagr == pytest.approx(1.089 ** (1 / years) - 1)
    assert measured.max_drawdown == pytest.approx(0.1)
    assert measured.calmar_ratio == pytest.approx(measured.cagr / 0.1)
    assert measured.total_return == pytest.approx(0.089)
    assert measured.win_rate == pytest.approx(2 / 3)
    assert measured.profit_factor == pytest.approx(19.9 / 11.0)
    pnl = np.array([10.0, -11.0, 9.9])
    assert measured.sqn == pytest.approx(math.sqrt(3) * pnl.mean() / pnl.std(ddof=1))
    assert measured.time_in_market == pytest.approx(2 / 3)
    assert measured.buy_and_hold_return == pytest.approx(0.2)
    assert measured.periods_per_year == 252


def weekdays(count: int, bars_per_day: int = 1) -> IntArray:
    """Times of `count` trading days (Mondays to Fridays from Monday 2024-01-01)."""
    start = np.datetime64("2024-01-01", "D")
    days = np.busday_offset(start, np.arange(count), roll="forward")
    day_ms = days.astype("datetime64[ms]").astype(np.int64)
    step = HOUR_MS
    times: IntArray = (day_ms[:, None] + np.arange(bars_per_day) * step).ravel()
    return times


def test_periods_per_year_by_calendar_and_bar_length() -> None:
    daily = weekdays(300)
    assert metrics.periods_per_year(daily, Calendar.TRADING_DAYS) == 252
    assert metrics.periods_per_year(daily, Calendar.CONTINUOUS) == 365
    assert metrics.periods_per_year(weekdays(100, 24), Calendar.TRADING_DAYS) == 252 * 24
    hourly = np.arange(1000, dtype=np.int64) * HOUR_MS
    assert metrics.periods_per_year(hourly, Calendar.CONTINUOUS) == 8760
    weekly = np.arange(100, dtype=np.int64) * 7 * DAY_MS
    assert metrics.periods_per_year(weekly, Calendar.TRADING_DAYS) == pytest.approx(365 / 7)
    months = np.arange("2020-01", "2024-01", dtype="datetime64[M]")
    monthly = months.astype("datetime64[ms]").astype(np.int64)
    assert metrics.periods_per_year(monthly, Calendar.CONTINUOUS) == 12
    assert metrics.periods_per_year(daily, Calendar.TRADING_DAYS, given=260) == 260


def test_a_stock_calendar_annualizes_with_252_trading_days() -> None:
    time_ms = weekdays(120)
    rng = np.random.default_rng(5)
    closes = np.asarray(100 * np.cumprod(1 + rng.normal(0.001, 0.01, len(time_ms))), np.float64)
    candles = Candles(time_ms, closes, closes * 1.01, closes * 0.99, closes, np.ones(len(closes)))
    hold = _follow(target(len(closes), {0: 1.0}))
    stock = run_bar_backtest(candles, hold, {}, BarSettings(calendar=Calendar.TRADING_DAYS))
    crypto = run_bar_backtest(candles, hold, {}, BarSettings())
    assert stock.metrics.periods_per_year == 252
    assert crypto.metrics.periods_per_year == 365
    assert stock.metrics.sharpe_ratio == pytest.approx(
        crypto.metrics.sharpe_ratio * math.sqrt(252 / 365)
    )
