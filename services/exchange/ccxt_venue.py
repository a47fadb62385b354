"""A ccxt exchange (live or sandbox) as a venue.

Imported only when a `[exchange.venues.<name>]` table is configured: ccxt costs about
100 MiB of RSS. Keys come from environment variables or a 0600 secrets file and go to
ccxt only: never logged, never returned. Rate limits are ccxt's own (enableRateLimit).
Reads are retried with backoff on network failures; an order create never is: after a
timeout the order is looked up by its client order id, so a retry can never place a
second order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import tomllib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt.async_support as ccxt_async

from common.config import ConfigError
from common.errors import DeadlineExceeded, EdgeQuantError, NotFound
from services.exchange import ccxt_errors
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
from services.exchange.settings import CcxtVenueSettings
from services.exchange.signal import Signal
from services.exchange.venue import ReportSink, VenueReport

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


def _decimal(value: Any) -> Decimal | None:
    """ccxt gives numbers as floats (or strings); their shortest repr is the venue's text."""
    if value is None or value == "":
        return None
    return Decimal(str(value))


def load_keys(name: str, settings: CcxtVenueSettings) -> dict[str, str]:
    """apiKey and secret from the environment or a 0600 TOML file; {} for public access."""
    prefix = f"exchange.venues.{name}."
    if settings.secrets_file:
        path = Path(settings.secrets_file)
        try:
            mode = path.stat().st_mode
        except OSError as error:
            raise ConfigError(f"{prefix}secrets_file", f"cannot read: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{prefix}secrets_file", f"{path} is readable by others: chmod 600 {path}"
            )
        with path.open("rb") as file:
            table = tomllib.load(file)
        return {"apiKey": str(table.get("api_key", "")), "secret": str(table.get("secret", ""))}
    keys = {}
    for field, env in (("apiKey", settings.api_key_env), ("secret", settings.secret_env)):
        if env:
            value = os.environ.get(env)
            if not value:
                raise ConfigError(
                    f"{prefix}{field}_env".replace("apiKey", "api_key"), f"${env} is not set"
                )
            keys[field] = value
    return keys


class CcxtVenue:
    def __init__(self, name: str, settings: CcxtVenueSettings) -> None:
        self.settings = settings
        kind = VenueKind.SANDBOX if settings.sandbox else VenueKind.LIVE
        self.info = VenueInfo(name, kind, settings.exchange_id, available=True)
        self.tickers_changed = Signal()
        self.order_poll_seconds = settings.order_poll_seconds
        exchange_class = getattr(ccxt_async, settings.exchange_id, None)
        if exchange_class is None:
            raise ConfigError(
                f"exchange.venues.{name}.exchange_id",
                f"ccxt knows no exchange {settings.exchange_id!r}",
            )
        self.client: Any = exchange_class(
            {
                "enableRateLimit": True,
                "timeout": settings.timeout_ms,
                **load_keys(name, settings),
            }
        )
        if settings.sandbox:
            self.client.set_sandbox_mode(True)
        if settings.api_url:
            _point_at(self.client, settings.api_url)
        self._markets: dict[str, Market] | None = None
        self._markets_lock = asyncio.Lock()

    async def start(self, on_report: ReportSink) -> None:
        self._on_report = on_report
        self._ticker_clock = asyncio.create_task(self._tick(), name=f"{self.info.name}-tickers")

    async def _tick(self) -> None:
        """Wakes StreamTickers subscribers, who then fetch; no subscriber, no request."""
        while True:
            await asyncio.sleep(self.settings.ticker_poll_seconds)
            self.tickers_changed.notify()

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
                raw = await self._read(self.client.load_markets)
                self._markets = {symbol: self._market(m) for symbol, m in raw.items()}
            return self._markets

    def _market(self, raw: dict[str, Any]) -> Market:
        def step(value: Any) -> Decimal:
            number = _decimal(value) or Decimal(0)
            if self.client.precisionMode == ccxt_async.DECIMAL_PLACES:
                return Decimal(1).scaleb(-int(number))
            return number

        limits = raw.get("limits") or {}
        return Market(
            symbol=raw["symbol"],
            base=raw["base"],
            quote=raw["quote"],
            price_increment=step(raw["precision"]["price"]),
            quantity_increment=step(raw["precision"]["amount"]),
            min_quantity=_decimal((limits.get("amount") or {}).get("min")),
            max_quantity=_decimal((limits.get("amount") or {}).get("max")),
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

    # -- market data ---------------------------------------------------------------------

    async def ticker(self, symbol: str) -> Ticker:
        raw = await self._read(
            lambda: self.client.fetch_ticker(symbol),
            lambda t: (
                isinstance(t, dict) and any(t.get(k) is not None for k in ("bid", "ask", "last"))
            ),
        )
        return Ticker(
            symbol=symbol,
            bid=_decimal(raw.get("bid")),
            bid_size=_decimal(raw.get("bidVolume")),
            ask=_decimal(raw.get("ask")),
            ask_size=_decimal(raw.get("askVolume")),
            last=_decimal(raw.get("last")),
            high=_decimal(raw.get("high")),
            low=_decimal(raw.get("low")),
            base_volume=_decimal(raw.get("baseVolume")),
            quote_volume=_decimal(raw.get("quoteVolume")),
            time=_time(raw.get("timestamp")),
        )

    async def order_book(self, symbol: str, depth: int) -> BookSnapshot:
        raw = await self._read(
            lambda: self.client.fetch_order_book(symbol, depth or None),
            lambda book: isinstance(book, dict) and isinstance(book.get("bids"), list),
        )
        return BookSnapshot(
            symbol=symbol,
            bids=[(Decimal(str(p)), Decimal(str(q))) for p, q, *_ in raw["bids"]],
            asks=[(Decimal(str(p)), Decimal(str(q))) for p, q, *_ in raw["asks"]],
            time=_time(raw.get("timestamp")),
        )

    async def candles(
        self, symbol: str, timeframe: str, since_ms: int | None, limit: int
    ) -> list[Candle]:
        rows = await self._read(
            lambda: self.client.fetch_ohlcv(symbol, timeframe, since_ms, limit),
            lambda rows: isinstance(rows, list) and all(isinstance(r, list) for r in rows),
        )
        return [Candle(int(row[0]), *(Decimal(str(value)) for value in row[1:6])) for row in rows]

    async def balances(self) -> list[Balance]:
        raw = await self._read(
            self.client.fetch_balance, lambda b: isinstance(b, dict) and "free" in b
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

    # -- orders --------------------------------------------------------------------------

    async def submit(self, order: Order) -> VenueReport:
        symbol = order.symbol
        await self._load_markets()
        amount = float(self.client.amount_to_precision(symbol, float(order.quantity)))
        price = (
            float(self.client.price_to_precision(symbol, float(order.price)))
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
        except (ccxt_async.NetworkError, ccxt_async.BadResponse) as error:
            # No usable answer: the venue may have placed it. Look before anyone retries.
            raw = await self._find_after_timeout(order, error)
        except ccxt_async.BaseError as error:
            raise self._translate(error) from None
        return self._report(order, raw)

    async def _find_after_timeout(self, order: Order, error: Exception) -> dict[str, Any]:
        log.warning(
            "order create did not answer; looking it up by client order id",
            extra={"venue": self.info.name, "client_order_id": order.client_order_id},
        )
        try:
            found: dict[str, Any] = await self._read(
                lambda: self.client.fetch_order(
                    "", order.symbol, {"clientOrderId": order.client_order_id}
                ),
                lambda found: isinstance(found, dict) and bool(found.get("id")),
            )
        except NotFound:
            # Not there: the create never reached the venue. Rejected, safe to resubmit
            # under a new client order id.
            raise self._translate(error) from None
        except EdgeQuantError:
            raise DeadlineExceeded(
                f"{self.settings.exchange_id}: the order create timed out and the lookup "
                "failed: its outcome is unknown. GetOrder it later; do not resubmit it "
                "under a new client order id",
                reason="VENUE_OUTCOME_UNKNOWN",
            ) from None
        return found

    async def cancel(self, order: Order) -> VenueReport:
        try:
            raw = await self.client.cancel_order(order.venue_order_id, order.symbol)
        except ccxt_async.BaseError as error:
            raise self._translate(error) from None
        report = self._report(order, raw)
        if report.status.is_open:
            report.status = OrderStatus.CANCELED
        return report

    async def refresh(self, order: Order) -> VenueReport | None:
        if order.venue_order_id:
            lookup = lambda: self.client.fetch_order(order.venue_order_id, order.symbol)  # noqa: E731
        else:  # an create whose outcome was unknown: find it by our id
            lookup = lambda: self.client.fetch_order(  # noqa: E731
                "", order.symbol, {"clientOrderId": order.client_order_id}
            )
        try:
            raw = await self._read(
                lookup, lambda found: isinstance(found, dict) and bool(found.get("id"))
            )
        except NotFound:
            return None
        return self._report(order, raw)

    def _report(self, order: Order, raw: dict[str, Any]) -> VenueReport:
        filled = _decimal(raw.get("filled")) or Decimal(0)
        status = _STATUSES.get(raw.get("status") or "")
        if status is None:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
        venue_order_id = str(raw.get("id") or "")
        return VenueReport(order.order_id, status, venue_order_id, self._fills(order, raw, filled))

    def _fills(self, order: Order, raw: dict[str, Any], filled: Decimal) -> list[Fill]:
        """Fills not yet recorded on the order: the venue's trades, or one aggregate."""
        new = filled - order.filled_quantity
        if new <= 0:
            return []
        time = _time(raw.get("lastTradeTimestamp") or raw.get("timestamp"))
        fee = raw.get("fee") or {}
        trades = raw.get("trades") or []
        if (
            trades
            and sum((_decimal(t.get("amount")) or Decimal(0) for t in trades), Decimal(0)) == new
        ):
            return [
                Fill(
                    trade_id=str(t.get("id") or f"{raw.get('id')}-{n}"),
                    quantity=_decimal(t.get("amount")) or Decimal(0),
                    price=_decimal(t.get("price")) or Decimal(0),
                    fee=_decimal((t.get("fee") or {}).get("cost")) or Decimal(0),
                    fee_currency=str((t.get("fee") or {}).get("currency") or ""),
                    liquidity=Liquidity.MAKER
                    if t.get("takerOrMaker") == "maker"
                    else Liquidity.TAKER,
                    time=time,
                )
                for n, t in enumerate(trades)
            ]
        average = _decimal(raw.get("average")) or _decimal(raw.get("price")) or Decimal(0)
        return [
            Fill(
                trade_id=f"{raw.get('id')}-{filled}",
                quantity=new,
                price=average,
                fee=(_decimal(fee.get("cost")) or Decimal(0)) - order.fee,
                fee_currency=str(fee.get("currency") or ""),
                liquidity=Liquidity.TAKER if order.type is OrderType.MARKET else Liquidity.MAKER,
                time=time,
            )
        ]


def _time(timestamp_ms: Any) -> datetime:
    if timestamp_ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(timestamp_ms) / 1000, UTC)


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
