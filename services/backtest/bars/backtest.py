"""One bar backtest: a strategy's signals, simulated, measured."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from services.backtest.bars import metrics
from services.backtest.bars.engine import BarResult, simulate
from services.backtest.bars.metric_names import Metrics
from services.backtest.bars.settings import BarSettings
from strategies.base import StrategyDefinition
from strategies.candles import Candles


@dataclass(frozen=True)
class BarRun:
    result: BarResult
    metrics: Metrics


def run_bar_backtest(
    candles: Candles,
    strategy: StrategyDefinition,
    parameters: Mapping[str, float],
    settings: BarSettings,
) -> BarRun:
    target = strategy.run(candles, parameters)
    if target.shape != (len(candles),):
        raise ValueError(
            f"strategy {strategy.name} returned shape {target.shape}, expected ({len(candles)},)"
        )
    result = simulate(candles, target, settings)
    trades = result.trades
    closed = trades.closed
    measured = metrics.compute(
        initial_cash=settings.initial_cash,
        time_ms=candles.time,
        close=candles.close,
        equity=result.equity,
        position=result.position,
        pnl=trades.pnl[closed],
        trade_returns=trades.return_fraction[closed],
        bar_ms=candles.bar_milliseconds,
        periods_per_year=metrics.periods_per_year(
            candles.time, settings.calendar, settings.periods_per_year
        ),
    )
    liquidation = result.liquidation
    if liquidation is not None:
        measured = replace(
            measured,
            liquidated=True,
            liquidation_bar=liquidation.bar,
            liquidation_time_ms=int(candles.time[liquidation.bar]),
            uncovered_loss=liquidation.uncovered_loss,
        )
    return BarRun(result=result, metrics=measured)
