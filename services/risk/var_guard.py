"""The max_var rule's estimate: one-day 99% historical VaR with the order filled.

Candle returns are I/O, so they are read in the background (every `[risk.var]
refresh_seconds`, only while a max_var limit is set) and kept aligned, one column per
symbol; the check itself is a weighted sum of the columns and a percentile over it,
with no I/O. A symbol the order or a position needs but the history lacks means no
estimate (the rule then denies: fail closed) and an early refresh; so does a history
shorter than `[risk.var] min_observations` (until the periodic refresh finds more).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from common.errors import Unavailable
from common.reconnect import Reconnect
from services.risk.closes import CloseSource, candle_length
from services.risk.engine import AccountRisk
from services.risk.risk_book import RiskBook
from services.risk.rules import Check
from services.risk.settings import VarSettings
from services.risk.var import Returns, aligned_returns, percentile_loss

log = logging.getLogger("edgequant.risk.var")

CONFIDENCE = 0.99
HORIZON = timedelta(days=1)


@dataclass(frozen=True)
class ReturnHistory:
    symbols: dict[str, int]
    returns: Returns
    # The one-candle figures scale to a day by the square root of time.
    scale: float


class VarGuard:
    """The max_var estimate of one venue account, from its venue's candles."""

    def __init__(self, account: AccountRisk, candles: CloseSource, settings: VarSettings) -> None:
        self.account = account
        self.book: RiskBook = account.book
        self.candles = candles
        self.settings = settings
        self.timeframe = settings.timeframe
        self.history: ReturnHistory | None = None
        self._wanted = asyncio.Event()

    def estimate(self, check: Check) -> Decimal | None:
        history = self.history
        exposures = self._exposures(check)
        if history is None or not set(exposures) <= set(history.symbols):
            self._wanted.set()
            return None
        if history.returns.observations < self.settings.min_observations:
            return None
        values = [0.0] * len(history.symbols)
        for symbol, value in exposures.items():
            values[history.symbols[symbol]] = value
        loss = percentile_loss(history.returns, values, CONFIDENCE) * history.scale
        return Decimal(repr(round(loss, 8)))

    def _exposures(self, check: Check) -> dict[str, float]:
        """Value per symbol (quote currency) with the order filled, at the mark."""
        exposures = {
            symbol: float(p.quantity * self.book.marks.get(symbol, Decimal(0)))
            for symbol, p in self.book.positions.items()
            if p.quantity
        }
        symbol = check.order.symbol
        price = check.mark or check.price or Decimal(0)
        exposures[symbol] = float(
            (check.position + check.order.side.sign * check.order.quantity) * price
        )
        return exposures

    async def run(self) -> None:
        """Refreshes the return history while a max_var limit is set; candles the
        exchange does not give are asked again after a backoff."""
        reconnect = Reconnect(
            f"exchange candles of {self.account.account_id}", retried=(Unavailable,)
        )

        async def refresh_while_wanted() -> None:
            while True:
                if self.account.limits.max_var is not None:
                    await self.refresh()
                    reconnect.connected()
                self._wanted.clear()
                try:
                    await asyncio.wait_for(self._wanted.wait(), self.settings.refresh_seconds)
                    await asyncio.sleep(1.0)  # a burst of misses is one refresh
                except TimeoutError:
                    pass

        await reconnect.forever(refresh_while_wanted)

    async def refresh(self) -> None:
        symbols = sorted(
            set(self.account.limits.allowed_symbols)
            | {s for s, p in self.book.positions.items() if p.quantity}
            | {o.symbol for o in self.book.open_orders.values()}
        )
        venue = self.account.account_id
        closes: list[Any] = await asyncio.gather(
            *(
                self.candles.closes(venue, s, self.timeframe, self.settings.lookback + 1)
                for s in symbols
            )
        )
        returns = aligned_returns(dict(zip(symbols, closes, strict=True)))
        self.history = ReturnHistory(
            symbols={symbol: index for index, symbol in enumerate(returns.symbols)},
            returns=returns,
            scale=math.sqrt(HORIZON / candle_length(self.timeframe)),
        )
        extra = {"symbols": len(returns.symbols), "returns": returns.observations}
        if returns.observations < self.settings.min_observations:
            log.warning("VaR history too short: max_var denies new exposure", extra=extra)
        else:
            log.info("VaR history refreshed", extra=extra)
