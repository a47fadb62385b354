"""A ccxt exchange (live or sandbox) as a venue.

Imported only when a `[exchange.venues.<name>]` table is configured: ccxt costs about
100 MiB of RSS. Credentials (whatever the exchange requires: key, secret, passphrase,
uid, ...) come from environment variables or a 0600 secrets file and go to ccxt only:
never logged, never returned. Rate limits are ccxt's own (enableRateLimit).

No order's fate is guessed. Reads are retried with backoff; an order create never is.
A create either answers (the order is then completed by a lookup when the answer says
too little), or fails with an error that proves the venue refused it (invalid order,
insufficient funds, bad symbol, authentication), or its outcome is unknown: then the
order is looked up by its client order id once, and if that does not settle it the
create raises `OutcomeUnknown` and the order flow reconciles it later. Decimals reach
ccxt as strings and come back as strings (ccxt's `number = str`), never through float.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

from common import timeframes
from common.config import ConfigError
from common.errors import (
    DeadlineExceeded,
    EdgeQuantError,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from common.reconnect import DEFAULT_MAX_SECONDS, Reconnect
from services.exchange import ccxt_errors, ccxt_loader
from services.exchange.ccxt_keys import load_keys
from services.exchange.markets import (
    Balance,
    BookSnapshot,
    Candle,
    Market,
    Ticker,
    VenueInfo,
    VenueKind,
)
from services.exchange.orders import Fill, Liquidity, Order, OrderStatus, OrderType
from services.exchange.reasons import Reason
from services.exchange.settings import CcxtVenueSettings
from services.exchange.venue import ReportSink, VenueReport
from services.exchange.wakeup import Wakeup

# Only the configured exchanges' modules are imported (ccxt_loader: ~50 MiB less).
ccxt_async = ccxt_loader.async_support()
log = logging.getLogger("edgequant.exchange.ccxt")
# ccxt logs every request with its headers (the API key among them) at DEBUG: keep its
# logger above that whatever level the service runs at.
logging.getLogger("ccxt").setLevel(logging.INFO)

_Result = TypeVar("_Result")
_STATUSES = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
_TIME_IN_FORCE = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK"}
# What each venue's ccxt class calls our market types in options["fetchMarkets"].
_MARKET_TYPE_ALIASES = {
    "spot": {"spot"},
    "margin": {"spot", "margin"},
    "swap": {"swap", "linear", "inverse"},
    "future": {"future", "futures", "linear", "inverse", "delivery"},
    "option": {"option"},
}
DERIVATIVES = frozenset({"swap", "future", "option"})
# Candles a venue returns per request when ccxt does not say.
_DEFAULT_CANDLE_PAGE = 100


class OutcomeUnknown(DeadlineExceeded):
    """A create whose outcome is unknown: the venue may or may not hold the order."""

    reason = Reason.VENUE_OUTCOME_UNKNOWN


def _decimal(value: Any) -> Decimal | None:
    """ccxt's numbers (strings with `number = str`; a float's shortest repr otherwise)."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


class CcxtVenue:
    def __init__(self, name: str, settings: CcxtVenueSettings) -> None:
        self.settings = settings
        kind = VenueKind.SANDBOX if settings.sandbox else VenueKind.LIVE
        self.info = VenueInfo(name, kind, settings.exchange_id, available=True)
        self.read_only = not settings.trading
        self.tickers_changed = Wakeup()
        self.order_poll_seconds = settings.order_poll_seconds
        exchange_class = getattr(ccxt_async, settings.exchange_id, None)
        if exchange_class is None:
            raise ConfigError(
                f"exchange.venues.{name}.exchange_id",
                f"ccxt knows no exchange {settings.exchange_id!r}",
            )
        self.client: Any = exchange_class({"enableRateLimit": True, "timeout": settings.timeout_ms})
        if settings.trading:
            required = [key for key, needed in self.client.requiredCredentials.items() if needed]
            for key, value in load_keys(name, settings, required).items():
                setattr(self.client, key, value)
        # Numbers come back as the venue's strings, never through float.
        self.client.number = str
        # Currencies are not used here, and loading them costs memory and private calls.
        self.client.has = {**self.client.has, "fetchCurrencies": False}
        _restrict_market_types(self.client, settings.market_types)
        if settings.sandbox:
            self.client.set_sandbox_mode(True)
        if settings.api_url:
            _point_at(self.client, settings.api_url)
        _refuse_unparsable_bodies(self.client)
        self._markets: dict[str, Market] | None = None
        self._contract_sizes: dict[str, Decimal] = {}
        self._markets_lock = asyncio.Lock()
        # StreamTickers: the latest tickers of the symbols subscribers asked for lately,
        # refreshed by one poll per period for all of them.
        self._tickers: dict[str, tuple[float, Ticker]] = {}
        self._watched: dict[str, float] = {}
        self._ticker_requests: dict[str, asyncio.Future[Ticker]] = {}

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        self._ticker_clock = asyncio.create_task(self._poll_tickers(), name=f"{self.info.name}-tk")

    async def close(self) -> None:
        self._ticker_clock.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker_clock
        await self.client.close()

    def clock_ms(self) -> int:
        return int(datetime.now(UTC).timestamp() * 1000)

    # -- calls ---------------------------------------------------------------------------

    async def _read(
        self,
        call: Callable[[], Awaitable[_Result]],
        valid: Callable[[_Result], bool] = lambda _: True,
    ) -> _Result:
        """A read, retried with exponential backoff while the venue may answer next time.
        `valid` rejects what ccxt parsed out of an unusable body (ccxt does not always)."""
        delay = self.settings.retry_backoff_seconds
        for attempt in range(self.settings.read_retries + 1):
            try:
                result = await call()
                if not valid(result):
                    raise ccxt_async.BadResponse(f"{self.settings.exchange_id}: unusable response")
                return result
            except ccxt_async.BaseError as error:
                if attempt == self.settings.read_retries or not ccxt_errors.is_retryable(
                    ccxt_async, error
                ):
                    raise self._translate(error) from None
                log.warning(
                    "venue read failed; retrying",
                    extra={"venue": self.info.name, "error": type(error).__name__},
                )
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _translate(self, error: Exception) -> EdgeQuantError:
        return ccxt_errors.translate(ccxt_async, error, self.settings.exchange_id)

    # -- markets -------------------------------------------------------------------------

    async def _load_markets(self) -> dict[str, Market]:
        async with self._markets_lock:
            if self._markets is None:
                raw = await self._read(
                    self.client.load_markets, lambda m: isinstance(m, dict) and bool(m)
                )
                kept = {
                    symbol: market for symbol, market in raw.items() if self._wanted(symbol, market)
                }
                # Drop what ccxt holds of the others: a venue with thousands of markets
                # would keep tens of MiB for markets nobody can trade here.
                self.client.set_markets(list(kept.values()), self.client.currencies)
                self._contract_sizes = {
                    symbol: _decimal(m.get("contractSize")) or Decimal(1)
                    for symbol, m in kept.items()
                    if m.get("contract")
                }
                self._markets = {symbol: self._market(m) for symbol, m in kept.items()}
            return self._markets

    def _wanted(self, symbol: str, market: dict[str, Any]) -> bool:
        kind = market.get("type") or "spot"
        if kind not in self.settings.market_types:
            return False
        return not self.settings.symbols or symbol in self.settings.symbols

    def _market(self, raw: dict[str, Any]) -> Market:
        def step(value: Any) -> Decimal:
            number = _decimal(value) or Decimal(0)
            if self.client.precisionMode == ccxt_async.DECIMAL_PLACES:
                return Decimal(1).scaleb(-int(number))
            return number

        # Quantities are in base currency: contracts are converted with contractSize.
        size = self._contract_sizes.get(raw["symbol"], Decimal(1))

        def base(value: Decimal | None) -> Decimal | None:
            return None if value is None else value * size

        limits = raw.get("limits") or {}
        return Market(
            symbol=raw["symbol"],
            base=raw["base"],
            quote=raw["quote"],
            price_increment=step(raw["precision"]["price"]),
            quantity_increment=step(raw["precision"]["amount"]) * size,
            min_quantity=base(_decimal((limits.get("amount") or {}).get("min"))),
            max_quantity=base(_decimal((limits.get("amount") or {}).get("max"))),
            min_notional=_decimal((limits.get("cost") or {}).get("min")),
            maker_fee=_decimal(raw.get("maker")) or Decimal(0),
            taker_fee=_decimal(raw.get("taker")) or Decimal(0),
            active=raw.get("active") is not False,
            type=raw.get("type") or "spot",
        )

    async def markets(self) -> list[Market]:
        return list((await self._load_markets()).values())

    async def market(self, symbol: str) -> Market | None:
        return (await self._load_markets()).get(symbol)

    def _base_quantity(self, symbol: str, value: Any) -> Decimal | None:
        quantity = _decimal(value)
        size = self._contract_sizes.get(symbol)
        return quantity * size if quantity is not None and size is not None else quantity

    # -- market data ---------------------------------------------------------------------

    async def ticker(self, symbol: str) -> Ticker:
        raw = await self._read(lambda: self.client.fetch_ticker(symbol), _usable_ticker)
        ticker = self._ticker(symbol, raw)
        self._tickers[symbol] = (time.monotonic(), ticker)
        return ticker

    async def streamed_ticker(self, symbol: str) -> Ticker:
        """StreamTickers' read: the shared poll's ticker (one poll per period serves every
        subscriber), else, when the polls fail for a while, one request."""
        now = time.monotonic()
        self._watched[symbol] = now
        cached = self._tickers.get(symbol)
        if cached is not None and now - cached[0] < max(3 * self.settings.ticker_poll_seconds, 5):
            return cached[1]
        # Subscribers asking at once share one request.
        pending = self._ticker_requests.get(symbol)
        if pending is None:
            pending = asyncio.ensure_future(self.ticker(symbol))
            self._ticker_requests[symbol] = pending
            pending.add_done_callback(lambda _: self._ticker_requests.pop(symbol, None))
        return await asyncio.shield(pending)

    def _ticker(self, symbol: str, raw: dict[str, Any]) -> Ticker:
        return Ticker(
            symbol=symbol,
            bid=_decimal(raw.get("bid")),
            bid_size=self._base_quantity(symbol, raw.get("bidVolume")),
            ask=_decimal(raw.get("ask")),
            ask_size=self._base_quantity(symbol, raw.get("askVolume")),
            last=_decimal(raw.get("last")),
            high=_decimal(raw.get("high")),
            low=_decimal(raw.get("low")),
            base_volume=_decimal(raw.get("baseVolume")),
            quote_volume=_decimal(raw.get("quoteVolume")),
            time=_time(raw.get("timestamp")),
        )

    async def _poll_tickers(self) -> None:
        """One poll per period for every subscriber of every symbol watched lately (one
        fetch_tickers call where the venue has it); subscribers then read the cache. A
        failing venue is polled less often (common.reconnect's backoff) until it answers."""
        period = self.settings.ticker_poll_seconds
        reconnect = Reconnect(
            f"{self.info.name} tickers",
            initial_seconds=period,
            max_seconds=max(period, DEFAULT_MAX_SECONDS),
            retried=(EdgeQuantError,),
        )

        async def poll() -> None:
            while True:
                await asyncio.sleep(period)
                horizon = time.monotonic() - 3 * period
                symbols = sorted(s for s, seen in self._watched.items() if seen >= horizon)
                for symbol in set(self._watched) - set(symbols):
                    del self._watched[symbol]
                    self._tickers.pop(symbol, None)
                if symbols:
                    await self._refresh_tickers(symbols)
                    reconnect.connected()
                self.tickers_changed.notify()

        await reconnect.forever(poll)

    async def _refresh_tickers(self, symbols: list[str]) -> None:
        if self.client.has.get("fetchTickers") is True:
            raw = await self._read(
                lambda: self.client.fetch_tickers(symbols), lambda t: isinstance(t, dict)
            )
            now = time.monotonic()
            for symbol in symbols:
                if _usable_ticker(raw.get(symbol)):
                    self._tickers[symbol] = (now, self._ticker(symbol, raw[symbol]))
            return
        for symbol in symbols:
            one = await self._read(lambda s=symbol: self.client.fetch_ticker(s), _usable_ticker)  # type: ignore[misc]
            self._tickers[symbol] = (time.monotonic(), self._ticker(symbol, one))

    async def order_book(self, symbol: str, depth: int) -> BookSnapshot:
        raw = await self._read(
            lambda: self.client.fetch_order_book(symbol, depth or None),
            lambda book: (
                isinstance(book, dict)
                and isinstance(book.get("bids"), list)
                and isinstance(book.get("asks"), list)
            ),
        )
        size = self._contract_sizes.get(symbol, Decimal(1))
        return BookSnapshot(
            symbol=symbol,
            bids=[(Decimal(str(p)), Decimal(str(q)) * size) for p, q, *_ in raw["bids"]],
            asks=[(Decimal(str(p)), Decimal(str(q)) * size) for p, q, *_ in raw["asks"]],
            time=_time(raw.get("timestamp")),
        )

    def candle_page(self) -> int:
        """The most candles the venue returns per request (OKX 300, Binance 1000)."""
        features = self.client.features or {}
        for kind in self.settings.market_types:
            page = ((features.get(kind) or {}).get("fetchOHLCV") or {}).get("limit")
            if isinstance(page, int) and page > 0:
                return page
        return _DEFAULT_CANDLE_PAGE

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        """`limit` candles from `since_ms`, fetched in pages of at most the venue's own
        limit. A page shorter than asked is followed by the next one (venues cap pages
        below what they declare); an empty page, or the present, ends the span. A venue
        that returns the newest of a window asked too big (OKX's history) is asked again
        for smaller windows, so no span it did not return is taken for empty."""
        width = timeframes.milliseconds(timeframe)
        if since_ms is None:
            since_ms = (self.clock_ms() // width - limit) * width
        page = self.candle_page()
        rows: dict[int, Candle] = {}
        cursor = since_ms
        while len(rows) < limit:
            asked = min(page, limit - len(rows))
            batch = await self._read(
                lambda c=cursor, n=asked: self.client.fetch_ohlcv(symbol, timeframe, c, n),  # type: ignore[misc]
                lambda got: isinstance(got, list) and all(_usable_candle(r) for r in got),
            )
            window_end = cursor + asked * width
            fresh = sorted(
                (row for row in batch if cursor <= int(row[0]) < window_end),
                key=lambda row: int(row[0]),
            )
            if not fresh:
                break
            if int(fresh[0][0]) > cursor and len(fresh) < asked:
                page = len(fresh)  # the newest of the window came back: ask smaller windows
                continue
            for row in fresh:
                volume = self._base_quantity(symbol, row[5]) or Decimal(0)
                open_, high, low, close = (Decimal(str(value)) for value in row[1:5])
                rows[int(row[0])] = Candle(int(row[0]), open_, high, low, close, volume)
            cursor = int(fresh[-1][0]) + width
            if cursor >= self.clock_ms():
                break
        return [rows[key] for key in sorted(rows)][:limit]

    async def balances(self) -> list[Balance]:
        self._require_trading()
        raw = await self._read(
            self.client.fetch_balance,
            lambda b: isinstance(b, dict) and isinstance(b.get("free"), dict),
        )
        free, used = raw.get("free") or {}, raw.get("used") or {}
        assets = sorted(set(free) | set(used))
        return [
            Balance(
                asset,
                _decimal(free.get(asset)) or Decimal(0),
                _decimal(used.get(asset)) or Decimal(0),
            )
            for asset in assets
            if (_decimal(free.get(asset)) or 0) or (_decimal(used.get(asset)) or 0)
        ]

    def _require_trading(self) -> None:
        if self.read_only:
            raise FailedPrecondition(
                f"venue {self.info.name} is market data only (trading = false)",
                reason=Reason.VENUE_READ_ONLY,
            )

    # -- orders --------------------------------------------------------------------------

    async def submit(self, order: Order) -> VenueReport:
        self._require_trading()
        symbol = order.symbol
        await self._load_markets()
        size = self._contract_sizes.get(symbol, Decimal(1))
        amount = self.client.amount_to_precision(symbol, f"{order.quantity / size:f}")
        price = (
            self.client.price_to_precision(symbol, f"{order.price:f}")
            if order.price is not None
            else None
        )
        params: dict[str, Any] = {"clientOrderId": order.client_order_id}
        if order.type is OrderType.LIMIT:
            params["timeInForce"] = _TIME_IN_FORCE[order.time_in_force.value]
        if order.post_only:
            params["postOnly"] = True
        if order.reduce_only:
            params["reduceOnly"] = True
        try:
            raw = await self.client.create_order(
                symbol, order.type.value, order.side.value, amount, price, params
            )
            if not isinstance(raw, dict) or not raw.get("id"):
                raise ccxt_async.BadResponse(f"{self.settings.exchange_id}: unusable response")
        except ccxt_async.BaseError as error:
            if ccxt_errors.proves_refusal(ccxt_async, error):
                raise self._translate(error) from None
            # Sent, but no answer that settles it: the venue may hold the order.
            return await self._find_after_unknown(order, error)
        return await self._complete(order, raw)

    async def _find_after_unknown(self, order: Order, error: Exception) -> VenueReport:
        log.warning(
            "order create outcome unknown; looking it up by client order id",
            extra={
                "venue": self.info.name,
                "client_order_id": order.client_order_id,
                "error": type(error).__name__,
            },
        )
        try:
            report = await self.refresh(order)
        except EdgeQuantError:
            report = None
        if report is None:
            # Not found (yet) or the lookup failed: neither proves it was never placed.
            cause = self._translate(error)
            raise OutcomeUnknown(
                f"{self.settings.exchange_id}: the order create failed ({cause.reason}) "
                "without proof that the venue refused it: its outcome is unknown and it "
                "is being reconciled by client order id. GetOrder it later; do not "
                "resubmit it under a new client order id",
                metadata={"client_order_id": order.client_order_id, "cause": cause.reason},
            )
        return report

    async def _complete(self, order: Order, raw: dict[str, Any]) -> VenueReport:
        """The report for a create answer; one that lacks the status (OKX answers with
        ids only) is completed by a lookup, else left PENDING_NEW to be reconciled."""
        if raw.get("status") is None:
            try:
                found = await self._read(
                    lambda: self.client.fetch_order(str(raw["id"]), order.symbol),
                    lambda found: isinstance(found, dict) and bool(found.get("id")),
                )
            except EdgeQuantError:
                return VenueReport(order.order_id, OrderStatus.PENDING_NEW, str(raw["id"]))
            raw = found
        return await self._report(order, raw)

    async def cancel(self, order: Order) -> VenueReport:
        self._require_trading()
        if not order.venue_order_id:
            # A create whose outcome is unknown: settle it first.
            found = await self.refresh(order)
            if found is None or not found.venue_order_id:
                raise FailedPrecondition(
                    f"order {order.order_id} is not known to {self.info.name} yet; its "
                    "outcome is being reconciled",
                    reason=Reason.VENUE_OUTCOME_UNKNOWN,
                )
            if not found.status.is_open:
                return found
            order.venue_order_id = found.venue_order_id
        try:
            raw = await self.client.cancel_order(order.venue_order_id, order.symbol)
            if not isinstance(raw, dict):
                raise ccxt_async.BadResponse(f"{self.settings.exchange_id}: unusable response")
        except ccxt_async.BaseError as error:
            # Already canceled, filled meanwhile, or the answer was lost: ask the venue.
            settled = await self._settled(order)
            if settled is not None:
                return settled
            raise self._translate(error) from None
        status = _STATUSES.get(str(raw.get("status") or ""))
        if status is not None and not status.is_open:
            return await self._report(order, raw)
        # The answer does not say the order is closed (OKX answers with ids only): the
        # cancel was accepted; the order is what a lookup says, else PENDING_CANCEL.
        settled = await self._settled(order)
        if settled is not None:
            return settled
        return VenueReport(order.order_id, OrderStatus.PENDING_CANCEL, order.venue_order_id)

    async def _settled(self, order: Order) -> VenueReport | None:
        """The order's report if the venue says it is closed now; None otherwise."""
        try:
            report = await self.refresh(order)
        except EdgeQuantError:
            return None
        return report if report is not None and not report.status.is_open else None

    async def refresh(self, order: Order) -> VenueReport | None:
        if order.venue_order_id:
            try:
                raw = await self._read(
                    lambda: self.client.fetch_order(order.venue_order_id, order.symbol),
                    lambda found: isinstance(found, dict) and bool(found.get("id")),
                )
            except NotFound:
                return None
        else:
            found = await self._by_client_id(order)
            if found is None:
                return None
            raw = found
        return await self._report(order, raw)

    async def _by_client_id(self, order: Order) -> dict[str, Any] | None:
        """The venue's order with our client order id: fetch_order by client id where
        the venue can, else its open and closed orders."""
        client_id = order.client_order_id
        try:
            found: dict[str, Any] = await self._read(
                lambda: self.client.fetch_order(None, order.symbol, {"clientOrderId": client_id}),
                lambda found: isinstance(found, dict) and bool(found.get("id")),
            )
            if found.get("clientOrderId") in (None, client_id):
                return found
        except NotFound:
            return None
        except (Unavailable, ResourceExhausted):
            raise  # the venue is unwell now: the next round asks again
        except EdgeQuantError:
            pass  # the venue cannot look up by our id (Kraken: only its integer userref)
        listings = [self.client.fetch_open_orders]
        if self.client.has.get("fetchClosedOrders"):
            listings.append(self.client.fetch_closed_orders)
        for listing in listings:
            orders = await self._read(
                lambda listing=listing: listing(order.symbol),  # type: ignore[misc]
                lambda got: isinstance(got, list),
            )
            for candidate in orders:
                if candidate.get("clientOrderId") == client_id:
                    return await self._in_full(dict(candidate), order.symbol)
        return None

    async def _in_full(self, listed: dict[str, Any], symbol: str) -> dict[str, Any]:
        """An order as the venue's own lookup shows it (listings can leave out its
        trades); the listed record when that lookup fails."""
        try:
            found: dict[str, Any] = await self._read(
                lambda: self.client.fetch_order(str(listed["id"]), symbol),
                lambda got: isinstance(got, dict) and bool(got.get("id")),
            )
        except EdgeQuantError:
            return listed
        return found if found.get("status") else listed

    async def _report(self, order: Order, raw: dict[str, Any]) -> VenueReport:
        """What `raw` (a ccxt order) says, in our terms; fills carry the venue's trade
        ids. When the fills cannot be told yet, the order keeps its status: the next
        poll tries again (a filled order is never reported OPEN)."""
        venue_order_id = str(raw.get("id") or order.venue_order_id)
        filled = _decimal(raw.get("filled"))
        text = raw.get("status")
        status = _STATUSES.get(str(text or ""))
        if text == "open":
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
        unchanged = VenueReport(order.order_id, order.status, venue_order_id)
        if status is None or (filled is None and status is not OrderStatus.OPEN):
            return unchanged
        size = self._contract_sizes.get(order.symbol, Decimal(1))
        new = (filled or Decimal(0)) * size - order.filled_quantity
        fills: list[Fill] = []
        if new > 0:
            trades = await self._new_trades(order, raw, venue_order_id)
            if trades is None or sum((f.quantity for f in trades), Decimal(0)) != new:
                log.warning(
                    "fills not yet known by trade id; will look again",
                    extra={"venue": self.info.name, "order_id": order.order_id},
                )
                return unchanged
            fills = trades
        return VenueReport(order.order_id, status, venue_order_id, fills)

    async def _new_trades(
        self, order: Order, raw: dict[str, Any], venue_order_id: str
    ) -> list[Fill] | None:
        """The order's trades not yet recorded on it, in the venue's order: the answer's
        own, else the venue's trades of the order. None when they cannot be told."""
        listed = [t for t in raw.get("trades") or [] if t.get("id")]
        trades = listed if all(t.get("amount") is not None for t in listed) else []
        if not trades:
            # Venues that list an order's trade ids without amounts (Kraken) look them up
            # by those ids; the others by the order id.
            params = {"trades": [str(t["id"]) for t in listed]} if listed else {}
            try:
                trades = await self._read(
                    lambda: self.client.fetch_order_trades(
                        venue_order_id, order.symbol, None, None, params
                    ),
                    lambda got: isinstance(got, list),
                )
            except EdgeQuantError:
                return None
        trades = sorted(trades, key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))
        size = self._contract_sizes.get(order.symbol, Decimal(1))
        fills = [self._fill(order, t, size) for t in trades]
        recorded = Decimal(0)
        while fills and recorded < order.filled_quantity:
            recorded += fills.pop(0).quantity
        return fills if recorded == order.filled_quantity else None

    def _fill(self, order: Order, trade: dict[str, Any], size: Decimal) -> Fill:
        fee = trade.get("fee") or {}
        maker = trade.get("takerOrMaker")
        if maker is None:  # not said: a market order takes, a resting one makes
            liquidity = Liquidity.TAKER if order.type is OrderType.MARKET else Liquidity.MAKER
        else:
            liquidity = Liquidity.MAKER if maker == "maker" else Liquidity.TAKER
        return Fill(
            trade_id=str(trade["id"]),
            quantity=(_decimal(trade.get("amount")) or Decimal(0)) * size,
            price=_decimal(trade.get("price")) or Decimal(0),
            fee=abs(_decimal(fee.get("cost")) or Decimal(0)),
            fee_currency=str(fee.get("currency") or ""),
            liquidity=liquidity,
            time=_time(trade.get("timestamp")),
        )


def _usable_ticker(raw: Any) -> bool:
    return isinstance(raw, dict) and any(raw.get(k) is not None for k in ("bid", "ask", "last"))


def _usable_candle(row: Any) -> bool:
    return isinstance(row, list) and len(row) >= 6 and all(v is not None for v in row[:5])


def _time(timestamp_ms: Any) -> datetime:
    if timestamp_ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(timestamp_ms) / 1000, UTC)


def _restrict_market_types(client: Any, market_types: tuple[str, ...]) -> None:
    """Asks ccxt to load only the market types configured (memory: a venue's swaps and
    options can be thousands of markets)."""
    option = client.options.get("fetchMarkets")
    wanted = set().union(*(_MARKET_TYPE_ALIASES[t] for t in market_types))
    if isinstance(option, dict) and isinstance(option.get("types"), list):
        kept = [t for t in option["types"] if t in wanted]
        client.options["fetchMarkets"] = {**option, "types": kept or option["types"][:1]}
    elif isinstance(option, list):
        client.options["fetchMarkets"] = [t for t in option if t in wanted] or option[:1]


def _refuse_unparsable_bodies(client: Any) -> None:
    """A body that is not JSON (an HTML error page, a truncated answer) raises
    BadResponse in every call, instead of being parsed into an empty book or account."""
    fetch = client.fetch

    async def fetch_json(*args: Any, **kwargs: Any) -> Any:
        answer = await fetch(*args, **kwargs)
        if not isinstance(answer, dict | list):
            raise ccxt_async.BadResponse(f"{client.id}: the venue's answer is not JSON")
        return answer

    client.fetch = fetch_json


def _point_at(client: Any, base_url: str) -> None:
    """Sends every REST call to `base_url` (scheme://host:port), keeping each path."""
    target = urlsplit(base_url)

    def rewrite(urls: Any) -> Any:
        if isinstance(urls, dict):
            return {key: rewrite(value) for key, value in urls.items()}
        if isinstance(urls, str) and "://" in urls:
            parts = urlsplit(urls)
            return parts._replace(scheme=target.scheme, netloc=target.netloc).geturl()
        return urls

    client.urls["api"] = rewrite(client.urls["api"])
    if "test" in client.urls:
        client.urls["test"] = rewrite(client.urls["test"])
