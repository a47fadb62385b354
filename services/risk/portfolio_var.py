"""VaR of the positions in the book, from the exchange's candles.

Off the hot path: it reads candles over gRPC and computes with numpy, which is
imported here on first use (about 10 MiB that a service that never computes VaR
does not pay). Monte Carlo runs are admitted against the memory budget first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from common.memory import MemoryGuard
from services.risk.book import RiskBook
from services.risk.candles import TIMEFRAMES, CandleSource, Timeframe

if TYPE_CHECKING:
    from services.risk.var import VarMethod, VarResult


@dataclass(frozen=True)
class VarRequest:
    method: VarMethod
    confidence: float
    horizon: timedelta
    timeframe: Timeframe
    lookback: int
    simulations: int
    seed: int


class PortfolioVar:
    def __init__(self, book: RiskBook, candles: CandleSource, memory: MemoryGuard) -> None:
        self.book = book
        self.candles = candles
        self.memory = memory

    async def compute(self, request: VarRequest) -> VarResult:
        from services.risk import var  # noqa: PLC0415 - numpy only when VaR is asked for

        values = {
            symbol: float(position.quantity * (self.book.mark(symbol) or 0))
            for symbol, position in sorted(self.book.positions.items())
            if position.quantity
        }
        if request.method is var.VarMethod.MONTE_CARLO:
            self.memory.admit(
                "Monte Carlo VaR", var.simulation_bytes(request.simulations, len(values))
            )
        closes = await asyncio.gather(
            *(
                self.candles.closes(symbol, request.timeframe, request.lookback + 1)
                for symbol in values
            )
        )
        symbols, returns = var.aligned_returns(dict(zip(values, closes, strict=True)))
        exposure = var.vector([values[symbol] for symbol in symbols])
        return var.compute_var(
            request.method,
            returns,
            exposure,
            request.confidence,
            request.horizon / TIMEFRAMES[request.timeframe],
            simulations=request.simulations,
            seed=request.seed,
        )
