"""VaR of the positions in the book, from the exchange's candles.

Off the hot path: it reads candles over gRPC and computes in pure Python
(services.risk.var says why not numpy). Too short a history is an error that says
so, never a small number. Monte Carlo runs one at a time (the others wait their turn
within their deadline), is admitted against the memory budget first and yields to the
event loop between chunks, so CheckOrder keeps answering.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from common.errors import FailedPrecondition
from common.memory import MemoryGuard
from services.risk import var
from services.risk.closes import CloseSource, candle_length
from services.risk.reasons import Reason
from services.risk.risk_book import RiskBook
from services.risk.settings import VarSettings


@dataclass(frozen=True)
class VarRequest:
    method: var.VarMethod
    confidence: float
    horizon: timedelta
    # A name of a fixed-length timeframe ("1h"; closes.VAR_TIMEFRAMES).
    timeframe: str
    lookback: int
    simulations: int
    seed: int


class PortfolioVar:
    def __init__(
        self,
        candles: CloseSource,
        memory: MemoryGuard,
        min_observations: int = VarSettings.min_observations,
    ) -> None:
        self.candles = candles
        self.memory = memory
        self.min_observations = min_observations
        # One simulation at a time: each running one adds a chunk to every turn of the
        # event loop, so several at once would slow CheckOrder by as many chunks.
        self._simulating = asyncio.Lock()

    async def compute(self, request: VarRequest, book: RiskBook, venue: str) -> var.VarResult:
        """VaR of `book`'s positions, from `venue`'s candles."""
        values = self._values(book)
        if not values:  # nothing held: nothing at risk, whatever the history
            return var.VarResult(0.0, 0.0, 0)
        closes = await asyncio.gather(
            *(
                self.candles.closes(venue, symbol, request.timeframe, request.lookback + 1)
                for symbol in values
            )
        )
        returns = var.aligned_returns(dict(zip(values, closes, strict=True)))
        self._require_history(returns, request.timeframe)
        exposure = [values[symbol] for symbol in returns.symbols]
        horizon = request.horizon / candle_length(request.timeframe)
        if request.method is not var.VarMethod.MONTE_CARLO:
            return var.compute_var(request.method, returns, exposure, request.confidence, horizon)
        async with self._simulating:
            # After the history check: a lasting problem is named before a passing one.
            self.memory.admit(
                "Monte Carlo VaR", var.simulation_bytes(request.simulations, len(values))
            )
            run = var.MonteCarlo(
                returns,
                exposure,
                request.confidence,
                horizon,
                simulations=request.simulations,
                seed=request.seed,
            )
            for _ in run.chunks():
                await asyncio.sleep(0)  # let CheckOrder and the feeds in between chunks
        assert run.result is not None
        return run.result

    def _values(self, book: RiskBook) -> dict[str, float]:
        """Each open position's value at the mark (quote currency, signed)."""
        values = {}
        for symbol, position in sorted(book.positions.items()):
            if not position.quantity:
                continue
            mark = book.mark(symbol)
            if mark is None:
                raise FailedPrecondition(
                    f"no mark price for {symbol}: wait for the exchange's ticker and retry",
                    reason=Reason.RISK_NO_MARK_PRICE,
                    metadata={"symbol": symbol},
                )
            values[symbol] = float(position.quantity * mark)
        return values

    def _require_history(self, returns: var.Returns, timeframe: str) -> None:
        have, need = returns.observations, self.min_observations
        if have >= need:
            return
        name = timeframe
        raise FailedPrecondition(
            f"VaR needs at least {need} returns of {name} candles on the times every "
            f"position's symbol ({', '.join(returns.symbols)}) shares; the exchange has "
            f"{have}: ask another timeframe, or retry when more history has accumulated",
            reason=Reason.VAR_INSUFFICIENT_HISTORY,
            metadata={"timeframe": name, "have": str(have), "need": str(need)},
        )
