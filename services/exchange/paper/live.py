"""`paper-live`: paper trading on a real venue's public market data.

`[exchange.paper] source` names a ccxt exchange ("binance"). Its public endpoints (no keys)
give the markets (precision and limits), the order book, the trades and the candles; the
orders never reach it: they are matched here by the paper venue's engine against the
venue's last book (market orders walk its levels, partial fills, what they take stays
taken until the next book), resting limits fill as maker when a real trade prints through
their price, up to that trade's size; [exchange.paper]'s fees and latency apply; the
account is the paper account, started from [exchange.paper] balances.

The market data is polled (REST, no websockets): every `live_poll_seconds`, per symbol,
the book, the trades since the last poll and the 24h ticker. ccxt is imported only here,
and this module only when a source is configured (ccxt costs ~100 MB of RSS). When the
venue cannot be reached the venue says so (ListVenues: available false; market data and
orders: UNAVAILABLE with the reason) and keeps trying; the replayed `paper` venue does not
depend on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any

from common.errors import EdgeQuantError, Unavailable
from common.reconnect import DEFAULT_MAX_SECONDS, Reconnect
from services.exchange.ccxt_venue import CcxtVenue
from services.exchange.markets import BookSnapshot, Candle, Market, Ticker
from services.exchange.orders import Order, Side
from services.exchange.paper.market import PaperMarket, wall_ms
from services.exchange.paper.replay import Trade
from services.exchange.paper.venue import PaperVenue
from services.exchange.reasons import Reason
from services.exchange.settings import CcxtVenueSettings, PaperSettings
from services.exchange.venue import ReportSink, VenueReport

log = logging.getLogger("edgequant.exchange.paper")

LIVE_NAME = "paper-live"
UNAVAILABLE_REASON = Reason.PAPER_SOURCE_UNAVAILABLE
# Trades are asked for from the last one seen; when the last read is older than this, from
# the latest instead.
TRADE_GAP_MS = 60_000


class PaperLiveVenue(PaperVenue):
    # Candles are the venue's own (real times): the database cache keeps them.
    candles_cached = True
    # ...and StreamCandles polls them as it polls a ccxt venue's.
    candles_final_at_close = False

    def __init__(self, settings: PaperSettings) -> None:
        super().__init__(settings, name=LIVE_NAME, markets=[])
        self.info = replace(self.info, exchange_id=settings.source, available=False)
        self.problem = f"not connected to {settings.source} yet"
        # The public-data client: ccxt through the ccxt venue's reads (retries, error
        # mapping), never given keys and never sent an order.
        self.source = CcxtVenue(
            LIVE_NAME,
            CcxtVenueSettings(
                exchange_id=settings.source,
                sandbox=False,
                timeout_ms=settings.live_timeout_ms,
                trading=False,  # public endpoints only: no keys
                read_retries=0,  # the poll loop tries again on its own schedule
                api_url=settings.live_api_url,
            ),
        )
        self._last_trade_ms: dict[str, int] = {}
        self._seen_ids: dict[str, set[str]] = {}
        self._polled_ms: dict[str, int] = {}  # when a symbol's trades were last read
        self._poller: asyncio.Task[None] | None = None

    def symbols(self) -> set[str]:
        return set(self.settings.live_symbols)

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        self._poller = asyncio.create_task(self._poll_forever(), name="paper-live-poll")

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.source.client.close()

    # -- the feed ----------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        """A round every `live_poll_seconds`; while the source fails, rounds back off
        (common.reconnect) and the venue says it is unavailable, and why."""
        period = self.settings.live_poll_seconds
        reconnect = Reconnect(
            f"paper-live source {self.settings.source}",
            initial_seconds=period,
            max_seconds=max(period, DEFAULT_MAX_SECONDS),
            # Any failure of the source (ccxt raises more than our errors) is retried.
            retried=(Exception,),
        )

        async def rounds() -> None:
            while True:
                try:
                    if len(self.paper_markets) < len(self.settings.live_symbols):
                        await self._connect()
                    for symbol in self.settings.live_symbols:
                        await self.poll(symbol)
                except Exception as error:
                    problem = error.message if isinstance(error, EdgeQuantError) else None
                    self._set_available(problem or f"{type(error).__name__}: {error}")
                    self.tickers_changed.notify()
                    raise
                self._set_available(None)
                self.tickers_changed.notify()
                reconnect.connected()
                await asyncio.sleep(period)

        await reconnect.forever(rounds)

    def _set_available(self, problem: str | None) -> None:
        if problem is None:
            if not self.info.available:
                log.info("paper-live: %s answers", self.settings.source)
            self.info = replace(self.info, available=True)
            self.problem = ""
            return
        if self.info.available or problem != self.problem:
            log.warning("paper-live: %s unreachable: %s", self.settings.source, problem)
        self.info = replace(self.info, available=False)
        self.problem = problem

    async def _connect(self) -> None:
        """The live symbols' markets: the venue's precision and limits, our fees."""
        for symbol in self.settings.live_symbols:
            if symbol in self.paper_markets:
                continue
            raw = await self.source.market(symbol)
            if raw is None:
                raise Unavailable(
                    f"{self.settings.source} lists no market {symbol!r}",
                    reason=Reason.PAPER_SOURCE_NO_MARKET,
                )
            market = replace(
                raw,
                maker_fee=Decimal(self.settings.maker_fee),
                taker_fee=Decimal(self.settings.taker_fee),
                min_quantity=raw.min_quantity or raw.quantity_increment,
            )
            self.paper_markets[symbol] = PaperMarket(market)
            self.account.markets[symbol] = market

    async def poll(self, symbol: str) -> None:
        """One round for a symbol: the book, then the trades since the last round (each
        fills resting orders it goes through), then the 24h figures."""
        paper = self.paper_markets[symbol]
        book = await self.source.order_book(symbol, self.settings.live_book_depth)
        now_ms = wall_ms()
        paper.book.clear()
        for price, size in book.bids:
            paper.book.set_level(Side.BUY, price, size, now_ms)
        for price, size in book.asks:
            paper.book.set_level(Side.SELL, price, size, now_ms)
        paper.book.uncross()
        polled = self._polled_ms.get(symbol)
        if polled is not None and now_ms - polled > TRADE_GAP_MS:
            # Back after an outage: the trades missed are not played onto resting orders;
            # the feed starts again from the venue's latest.
            self._last_trade_ms.pop(symbol, None)
        first_round = symbol not in self._last_trade_ms
        for trade_ms, trade in await self._new_trades(symbol):
            paper.record_trade(trade, trade_ms)
            if not first_round:  # the first round's trades printed before we looked
                await self._fill_resting(trade, symbol)
        self._polled_ms[symbol] = now_ms
        ticker = await self.source.ticker(symbol)
        stats = paper.stats
        stats.high, stats.low = ticker.high, ticker.low
        stats.base_volume = ticker.base_volume or Decimal(0)
        stats.quote_volume = ticker.quote_volume or Decimal(0)
        stats.last = stats.last or ticker.last

    async def _new_trades(self, symbol: str) -> list[tuple[int, Trade]]:
        since = self._last_trade_ms.get(symbol)
        raw: list[dict[str, Any]] = await self.source._read(
            lambda: self.source.client.fetch_trades(symbol, since),
            lambda rows: isinstance(rows, list),
        )
        seen = self._seen_ids.setdefault(symbol, set())
        fresh: list[tuple[int, Trade]] = []
        for row in sorted(raw, key=lambda r: r.get("timestamp") or 0):
            trade_id, stamp = str(row.get("id")), int(row.get("timestamp") or 0)
            if trade_id in seen or (since is not None and stamp < since):
                continue
            taker = Side.SELL if row.get("side") == "sell" else Side.BUY
            price, size = Decimal(str(row["price"])), Decimal(str(row["amount"]))
            fresh.append((stamp, Trade(stamp, price, size, taker)))
        if raw:
            newest = max(int(r.get("timestamp") or 0) for r in raw)
            self._last_trade_ms[symbol] = newest
            # Ids at the newest millisecond: the next poll asks from it again.
            self._seen_ids[symbol] = {
                str(r.get("id")) for r in raw if int(r.get("timestamp") or 0) == newest
            }
        return fresh

    # -- what is answered while the source is away ---------------------------------------

    def _require_source(self) -> None:
        if not self.info.available:
            raise Unavailable(
                f"{LIVE_NAME}: {self.settings.source} cannot be reached ({self.problem}); the "
                "replayed 'paper' venue stays available",
                reason=UNAVAILABLE_REASON,
            )

    def clock_ms(self) -> int:
        return wall_ms()

    async def markets(self) -> list[Market]:
        self._require_source()
        return await super().markets()

    async def market(self, symbol: str) -> Market | None:
        self._require_source()
        return await super().market(symbol)

    async def ticker(self, symbol: str) -> Ticker:
        self._require_source()
        return await super().ticker(symbol)

    async def order_book(self, symbol: str, depth: int) -> BookSnapshot:
        self._require_source()
        return await super().order_book(symbol, depth)

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        self._require_source()
        return await self.source.candles(symbol, timeframe, since_ms, limit)

    async def submit(self, order: Order) -> VenueReport:
        self._require_source()
        return await super().submit(order)
