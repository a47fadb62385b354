"""The bar engine against backtesting.py on real candles, and against a plain per-bar
reference simulation written here from the documented semantics."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from services.backtest.bars import engine
from services.backtest.bars.engine import (
    EXIT_STOP_LOSS,
    BarResult,
    position_changes,
    simulate,
    size_sequentially,
)
from services.backtest.bars.settings import BarSettings, FillTiming, Sizing
from strategies.builtin import rsi_reversion, sma_cross
from strategies.candles import Candles, FloatArray


def held_positions(target: FloatArray, allow_short: bool) -> FloatArray:
    """The wanted position at every bar, spelled out (what the peer strategy reads)."""
    bars, states = position_changes(target, allow_short)
    held = np.zeros(len(target))
    for bar, state in zip(bars, states, strict=True):
        held[bar:] = state
    return held


def run_backtesting_py(
    candles: Candles, held: FloatArray, settings: BarSettings
) -> tuple[pd.DataFrame, FloatArray]:
    backtesting = pytest.importorskip("backtesting")

    class FollowTarget(backtesting.Strategy):  # type: ignore[misc, name-defined]
        def init(self) -> None:
            self.wanted = self.I(lambda: held)

        def next(self) -> None:
            if self.wanted[-1] != self.wanted[-2]:
                self.position.close()
                if self.wanted[-1] > 0:
                    self.buy()
                elif self.wanted[-1] < 0:
                    self.sell()

    frame = pd.DataFrame(
        {
            "Open": candles.open,
            "High": candles.high,
            "Low": candles.low,
            "Close": candles.close,
            "Volume": candles.volume,
        },
        index=pd.to_datetime(candles.time, unit="ms"),
    )
    peer = backtesting.Backtest(
        frame,
        FollowTarget,
        cash=settings.initial_cash,
        commission=settings.fee_rate,
        trade_on_close=settings.fill_timing is FillTiming.SAME_CLOSE,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = peer.run()
    return stats._trades, stats._equity_curve["Equity"].to_numpy()


@pytest.mark.parametrize("fee_rate", [0.0, 0.001])
@pytest.mark.parametrize("fill_timing", [FillTiming.NEXT_OPEN, FillTiming.SAME_CLOSE])
@pytest.mark.parametrize("allow_short", [False, True])
def test_sma_cross_matches_backtesting_py(
    eth_btc_1m: Candles, fee_rate: float, fill_timing: FillTiming, allow_short: bool
) -> None:
    target = sma_cross(eth_btc_1m, 10, 30)
    # Flat before the end: backtesting.py closes leftovers at the last bar's open, we at
    # its close (documented); a signal exit one bar earlier is the same in both.
    target[-2] = 0.0
    # Small cash so that whole-unit sizing (backtesting.py's) really rounds.
    settings = BarSettings(
        initial_cash=10.0,
        fee_rate=fee_rate,
        fill_timing=fill_timing,
        sizing=Sizing.ALL_IN_WHOLE_UNITS,
        allow_short=allow_short,
    )
    ours = simulate(eth_btc_1m, target, settings)
    trades, equity = run_backtesting_py(eth_btc_1m, held_positions(target, allow_short), settings)

    assert len(ours.trades) == len(trades) > 100
    np.testing.assert_array_equal(ours.trades.entry_bar, trades["EntryBar"])
    np.testing.assert_array_equal(ours.trades.exit_bar, trades["ExitBar"])
    np.testing.assert_array_equal(ours.trades.direction * ours.trades.quantity, trades["Size"])
    np.testing.assert_allclose(ours.trades.entry_price, trades["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours.trades.exit_price, trades["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(ours.trades.pnl, trades["PnL"], rtol=1e-9, atol=1e-12)
    assert ours.equity[-1] == pytest.approx(equity[-1], rel=1e-6)
    if fill_timing is FillTiming.NEXT_OPEN:
        # (With same-close fills backtesting.py books the entry fee one bar late.)
        np.testing.assert_allclose(ours.equity, equity, rtol=1e-9)


# --- the reference: one bar at a time, straight from the documented semantics ---------


@dataclass
class _Open:
    direction: int
    quantity: float
    price: float
    bar: int
    entry_fee: float


def reference_simulation(
    candles: Candles, target: FloatArray, settings: BarSettings
) -> tuple[list[tuple[int, int, int, float, float, float, float]], list[float]]:
    """(direction, entry bar, exit bar, quantity, entry price, exit price, pnl) per trade,
    and the equity at every close."""
    slip = settings.slippage_bps / 10_000
    cash = settings.initial_cash
    trades: list[tuple[int, int, int, float, float, float, float]] = []
    equity: list[float] = []
    position: _Open | None = None
    wanted = 0
    pending: int | None = None
    n = len(candles)
    next_open = settings.fill_timing is FillTiming.NEXT_OPEN

    def fee(quantity: float, price: float) -> float:
        return settings.fee_rate * quantity * price + settings.fee_fixed

    def close(price: float, bar: int) -> None:
        nonlocal cash, position
        assert position is not None
        fill = price * (1 - position.direction * slip)
        exit_fee = fee(position.quantity, fill)
        cash += position.direction * position.quantity * fill - exit_fee
        pnl = (
            position.direction * position.quantity * (fill - position.price)
            - position.entry_fee
            - exit_fee
        )
        trades.append(
            (position.direction, position.bar, bar, position.quantity, position.price, fill, pnl)
        )
        position = None

    def change_to(state: int, price: float, bar: int) -> None:
        nonlocal cash, position
        if position is not None:
            close(price, bar)
        if state == 0:
            return
        fill = price * (1 + state * slip)
        if settings.sizing is Sizing.FIXED_QUANTITY:
            quantity = settings.size
        else:
            quantity = (settings.size * cash - settings.fee_fixed) / (
                fill * (1 + settings.fee_rate)
            )
            if settings.sizing is Sizing.ALL_IN_WHOLE_UNITS:
                quantity = math.floor(quantity)
        if quantity <= 0:
            return
        entry_fee = fee(quantity, fill)
        cash -= state * quantity * fill + entry_fee
        position = _Open(state, quantity, fill, bar, entry_fee)

    for bar in range(n):
        if next_open and pending is not None:
            change_to(pending, candles.open[bar], bar)
            pending = None
        if position is not None and not (not next_open and position.bar == bar):
            up = position.direction
            loss = position.price * (1 - up * settings.stop_loss) if settings.stop_loss else None
            gain = (
                position.price * (1 + up * settings.take_profit) if settings.take_profit else None
            )
            low, high, opening = candles.low[bar], candles.high[bar], candles.open[bar]
            if loss is not None and (low <= loss if up > 0 else high >= loss):
                close(min(opening, loss) if up > 0 else max(opening, loss), bar)
            elif gain is not None and (high >= gain if up > 0 else low <= gain):
                close(max(opening, gain) if up > 0 else min(opening, gain), bar)
        if not math.isnan(target[bar]):
            state = int(np.sign(target[bar]))
            if not settings.allow_short:
                state = max(state, 0)
            if state != wanted:
                wanted = state
                if next_open:
                    pending = state
                elif bar < n - 1:
                    change_to(state, candles.close[bar], bar)
        if bar == n - 1 and position is not None:
            close(candles.close[bar], bar)
        held = 0.0 if position is None else position.direction * position.quantity
        equity.append(cash + held * candles.close[bar])
    return trades, equity


def assert_same(result: BarResult, expected: tuple[list[tuple], list[float]]) -> None:  # type: ignore[type-arg]
    trades, equity = expected
    ours = result.trades
    assert len(ours) == len(trades)
    columns = list(zip(*trades, strict=True)) if trades else [()] * 7
    np.testing.assert_array_equal(ours.direction, columns[0])
    np.testing.assert_array_equal(ours.entry_bar, columns[1])
    np.testing.assert_array_equal(ours.exit_bar, columns[2])
    np.testing.assert_allclose(ours.quantity, columns[3], rtol=1e-9)
    np.testing.assert_allclose(ours.entry_price, columns[4], rtol=1e-12)
    np.testing.assert_allclose(ours.exit_price, columns[5], rtol=1e-12)
    np.testing.assert_allclose(ours.pnl, columns[6], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(result.equity, equity, rtol=1e-7)


SCENARIOS = {
    "defaults": BarSettings(),
    "fees and slippage, long-short": BarSettings(
        fee_rate=0.001, fee_fixed=0.5, slippage_bps=5, allow_short=True
    ),
    "stops, next open": BarSettings(stop_loss=0.004, take_profit=0.006, fee_rate=0.00075),
    "stops, same close, short": BarSettings(
        stop_loss=0.003,
        take_profit=0.005,
        fill_timing=FillTiming.SAME_CLOSE,
        allow_short=True,
        slippage_bps=2,
    ),
    "fixed quantity": BarSettings(sizing=Sizing.FIXED_QUANTITY, size=3000.0, fee_fixed=1.0),
    "half of equity, whole units": BarSettings(
        sizing=Sizing.ALL_IN_WHOLE_UNITS, size=0.5, fee_rate=0.001, allow_short=True
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_the_per_bar_reference(eth_btc_1m: Candles, name: str) -> None:
    candles = Candles(*(column[:4000] for column in vars(eth_btc_1m).values()))
    settings = SCENARIOS[name]
    for target in (sma_cross(candles, 10, 30), rsi_reversion(candles, 14, 30, 70)):
        result = simulate(candles, target, settings)
        assert_same(result, reference_simulation(candles, target, settings))


def test_an_open_position_is_closed_at_the_last_close(eth_btc_1m: Candles) -> None:
    target = np.full(len(eth_btc_1m), np.nan)
    target[0] = 1.0
    result = simulate(eth_btc_1m, target, BarSettings(fee_rate=0.001))
    (trade_exit,) = result.trades.exit_bar
    assert trade_exit == len(eth_btc_1m) - 1
    assert result.trades.exit_price[0] == eth_btc_1m.close[-1]
    assert result.position[-1] == 0
    assert result.equity[-1] == pytest.approx(10_000 + result.trades.pnl[0], rel=1e-12)


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    candles = Candles(
        time=np.arange(5, dtype=np.int64) * 60_000,
        open=np.array([100.0, 100.0, 101.0, 90.0, 91.0]),
        high=np.array([101.0, 102.0, 102.0, 92.0, 92.0]),
        low=np.array([99.0, 99.5, 100.0, 89.0, 90.0]),
        close=np.array([100.0, 101.0, 100.5, 91.0, 91.0]),
        volume=np.ones(5),
    )
    target = np.array([1.0, np.nan, np.nan, np.nan, np.nan])
    result = simulate(candles, target, BarSettings(stop_loss=0.05))
    assert result.trades.exit_reason.tolist() == [EXIT_STOP_LOSS]
    assert result.trades.exit_bar.tolist() == [3]
    # The level was 95; the bar opened at 90, below it: the stop fills at 90.
    assert result.trades.exit_price.tolist() == [90.0]


def test_closed_form_sizing_equals_the_sequential_recursion(eth_btc_1m: Candles) -> None:
    target = sma_cross(eth_btc_1m, 5, 20)
    for settings in (
        BarSettings(fee_rate=0.001, fee_fixed=0.3, allow_short=True, size=0.8),
        BarSettings(slippage_bps=3),
    ):
        legs = engine._legs(eth_btc_1m, target, settings)
        closed_form = engine._size(legs, settings)
        sequential = size_sequentially(legs, replace(settings))
        for ours, theirs in zip(closed_form, sequential, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-6)  # cash ~0 after all-in
