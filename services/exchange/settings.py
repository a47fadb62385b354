"""The exchange's own settings: the `[exchange.*]` sub-tables of configs/default.toml.

Each field's bounds are declared in its type and enforced by `parse_settings`; the
checks below are those a type cannot say (decimal strings, files, names across tables).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from common.config import (
    PROJECT_ROOT,
    AtLeast,
    ConfigError,
    NonNegativeFloat,
    NonNegativeInt,
    NotEmpty,
    PositiveFloat,
    PositiveInt,
    ServiceSettings,
    parse_settings,
)

# A count of price ticks or book levels: one at least.
Ticks = Annotated[int, AtLeast(1)]


@dataclass(frozen=True)
class PaperMarketSettings:
    """[exchange.paper.markets.<BASE-QUOTE>]: a further paper market (the table's name,
    "ETH-USDT", is the symbol "ETH/USDT")."""

    # Replay file: trades only (`T` lines) or, like BTC/USDT's, depth and trades.
    dataset: Path
    symbol: str = ""
    # Bundled 1-minute past (scripts/build_paper_history.py); empty: none.
    history: Path = Path("")
    price_increment: str = "0.01"
    quantity_increment: str = "0.0001"
    min_notional: str = "5"
    # Empty: [exchange.paper]'s rates.
    maker_fee: str = ""
    taker_fee: str = ""
    # The book modelled around the last trade when the dataset carries no depth: the
    # trade's price is the best level on the side it took from, the other side is
    # `book_spread_ticks` away; `book_levels` levels a side, `book_step_ticks` apart,
    # `book_level_quantity` each. Replaced at every trade.
    book_spread_ticks: Ticks = 1
    book_levels: Ticks = 20
    book_step_ticks: Ticks = 1
    book_level_quantity: str = "1"


@dataclass(frozen=True)
class PaperSettings:
    """[exchange.paper]: the offline venue that replays real market data. Its top-level
    market keys (dataset, symbol, history, increments) are the first market's, BTC/USDT;
    further markets are [exchange.paper.markets.<BASE-QUOTE>] tables."""

    enabled: bool = True
    # Replay file (scripts/slice_paper_data.py format); relative to the project root.
    dataset: Path = Path("services/exchange/data/paper/binance-spot-btcusdt-20240808.txt.gz")
    symbol: str = "BTC/USDT"
    # The first market's bundled 1-minute past; empty: none.
    history: Path = Path("services/exchange/data/paper/history-btcusdt-1m.txt.gz")
    # Replay pace: 1.0 is real time, 10.0 ten times faster; 0 stops the clock (tests step it).
    speed: NonNegativeFloat = 1.0
    maker_fee: str = "0.001"
    taker_fee: str = "0.001"
    price_increment: str = "0.01"
    quantity_increment: str = "0.00001"
    min_notional: str = "5"
    # Order entry latency: every order reaches the simulated matching engine this late,
    # plus a jitter drawn from a generator seeded with `seed` (deterministic).
    latency_ms: NonNegativeFloat = 0.0
    latency_jitter_ms: NonNegativeFloat = 0.0
    seed: NonNegativeInt = 42
    # Starting balances, "ASSET=amount"; the account is rebuilt from them and the
    # executions at every start.
    balances: tuple[str, ...] = ("USDT=100000", "BTC=1")
    # Further markets, from [exchange.paper.markets.*].
    markets: tuple[PaperMarketSettings, ...] = ()
    # A ccxt exchange id ("binance"): adds the venue `paper-live`, paper trading on that
    # venue's public market data (no keys); empty: off, and ccxt is not imported.
    source: str = ""
    live_symbols: tuple[str, ...] = ("BTC/USDT",)
    # Overrides ccxt's REST base URL (tests point it at a fake venue on 127.0.0.1).
    live_api_url: str = ""
    # The book, new trades and the 24h ticker are polled this often per symbol.
    live_poll_seconds: PositiveFloat = 1.0
    live_book_depth: PositiveInt = 20
    live_timeout_ms: PositiveInt = 10000


@dataclass(frozen=True)
class RiskClientSettings:
    """[exchange.risk]: the pre-trade check every order passes (fail closed)."""

    # How long SubmitOrder waits for RiskService.CheckOrder before rejecting the order.
    check_timeout_seconds: PositiveFloat = 0.25
    # Reconnect backoff of the StreamRiskEvents subscription (HALTED cancels open orders).
    reconnect_min_seconds: PositiveFloat = 0.2
    reconnect_max_seconds: PositiveFloat = 5.0


@dataclass(frozen=True)
class CcxtVenueSettings:
    """[exchange.venues.<name>]: one ccxt exchange, live or sandbox."""

    exchange_id: Annotated[str, NotEmpty()]
    sandbox: bool = True
    # false: market data only (tickers, books, candles): no keys needed, and the trading
    # RPCs answer FAILED_PRECONDITION VENUE_READ_ONLY.
    trading: bool = True
    # Environment variables holding the credentials the exchange requires (ccxt's
    # `requiredCredentials`), or a 0600 TOML file with api_key, secret, password, uid, ...
    api_key_env: str = ""
    secret_env: str = ""
    # OKX's and KuCoin's passphrase (ccxt calls it password).
    password_env: str = ""
    uid_env: str = ""
    login_env: str = ""
    twofa_env: str = ""
    private_key_env: str = ""
    wallet_address_env: str = ""
    token_env: str = ""
    secrets_file: str = ""
    timeout_ms: PositiveInt = 10000
    # Reads (tickers, books, candles, balances, orders) are retried this many times.
    read_retries: NonNegativeInt = 3
    retry_backoff_seconds: NonNegativeFloat = 0.5
    # Overrides ccxt's REST base URLs (tests point it at a fake venue on 127.0.0.1).
    api_url: str = ""
    # Market types listed and tradable: spot by default; "swap", "future", "option" only
    # when asked for (derivative orders are refused: portfolio and risk are spot models).
    market_types: tuple[str, ...] = ("spot",)
    # Symbols kept after loading the venue's markets ("BTC/USDT", ...); empty keeps every
    # market of `market_types` (a venue with thousands needs a bigger memory budget).
    symbols: tuple[str, ...] = ()
    # StreamTickers: one REST poll of the venue per period, shared by every subscriber.
    ticker_poll_seconds: PositiveFloat = 2.0
    # Open orders are looked up this often for fills and cancels made at the venue, and
    # orders whose outcome is unknown are looked up by client order id.
    order_poll_seconds: PositiveFloat = 5.0
    # An order still unknown after this long is reported to the operator (an ERROR log
    # and an order update) and looked up every `unknown_slow_poll_seconds` from then on.
    unknown_alert_seconds: PositiveFloat = 300.0
    unknown_slow_poll_seconds: PositiveFloat = 60.0
    # RSS this venue adds to the exchange's budget (memmon's limit is [exchange]
    # memory_budget_mib plus every venue's): ccxt and the markets kept.
    memory_budget_mib: PositiveInt = 64

    def credential_env(self, snake_name: str) -> str:
        return str(getattr(self, f"{snake_name}_env", ""))


@dataclass(frozen=True)
class ExchangeSettings:
    paper: PaperSettings
    risk: RiskClientSettings
    venues: dict[str, CcxtVenueSettings]


def load_settings(service: ServiceSettings) -> ExchangeSettings:
    """The [exchange.*] tables, parsed and checked; raises ConfigError naming a bad key."""
    extensions = service.extensions
    unknown = set(extensions) - {"paper", "risk", "venues"}
    if unknown:
        raise ConfigError(f"exchange.{sorted(unknown)[0]}", "unknown table")
    paper = _parse_paper(extensions.get("paper", {}))
    risk = parse_settings(RiskClientSettings, extensions.get("risk", {}), "exchange.risk.")
    if risk.reconnect_max_seconds < risk.reconnect_min_seconds:
        raise ConfigError(
            "exchange.risk.reconnect_max_seconds",
            "must be at least exchange.risk.reconnect_min_seconds",
        )
    venues = {
        name: parse_settings(CcxtVenueSettings, table, f"exchange.venues.{name}.")
        for name, table in _tables(extensions.get("venues", {}), "exchange.venues").items()
    }
    if "paper" in venues:
        raise ConfigError("exchange.venues.paper", "the name 'paper' is the paper venue's")
    if paper.source and "paper-live" in venues:
        raise ConfigError(
            "exchange.venues.paper-live",
            "the name 'paper-live' is taken by [exchange.paper] source",
        )
    for name, venue in venues.items():
        _check_venue(name, venue)
    return ExchangeSettings(paper=paper, risk=risk, venues=venues)


MARKET_TYPES = ("spot", "margin", "swap", "future", "option")


def _check_venue(name: str, venue: CcxtVenueSettings) -> None:
    prefix = f"exchange.venues.{name}."
    unknown = [t for t in venue.market_types if t not in MARKET_TYPES]
    if unknown or not venue.market_types:
        raise ConfigError(f"{prefix}market_types", f"must name some of {', '.join(MARKET_TYPES)}")


def _tables(raw: Any, key: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table of venues")
    return raw


def _parse_paper(raw: Any) -> PaperSettings:
    if not isinstance(raw, dict):
        raise ConfigError("exchange.paper", "must be a table")
    raw = dict(raw)
    tables = _tables(raw.pop("markets", {}), "exchange.paper.markets")
    markets = []
    for name, table in tables.items():
        key = f"exchange.paper.markets.{name}"
        if "symbol" in (table if isinstance(table, dict) else {}):
            raise ConfigError(f"{key}.symbol", "the table's name is the symbol (ETH-USDT)")
        market = parse_settings(PaperMarketSettings, table, f"{key}.")
        base, dash, quote = name.partition("-")
        if not (base and dash and quote):
            raise ConfigError(key, "name the table BASE-QUOTE, e.g. ETH-USDT")
        markets.append(replace(market, symbol=f"{base.upper()}/{quote.upper()}"))
    paper = replace(parse_settings(PaperSettings, raw, "exchange.paper."), markets=tuple(markets))
    _check_paper(paper)
    return paper


def _check_paper(paper: PaperSettings) -> None:
    for name in ("maker_fee", "taker_fee", "price_increment", "quantity_increment", "min_notional"):
        parse_decimal(f"exchange.paper.{name}", getattr(paper, name))
    parse_balances(paper.balances)
    _check_file("exchange.paper.dataset", paper.dataset)
    if paper.history != Path(""):
        _check_file("exchange.paper.history", paper.history)
    symbols = {paper.symbol}
    for market in paper.markets:
        if market.symbol in symbols:
            raise ConfigError(_market_key(market), f"{market.symbol} is already a paper market")
        symbols.add(market.symbol)
        _check_market(market)
    if paper.source and not paper.live_symbols:
        raise ConfigError("exchange.paper.live_symbols", "name at least one symbol")


def _market_key(market: PaperMarketSettings) -> str:
    return f"exchange.paper.markets.{market.symbol.replace('/', '-')}"


def _check_market(market: PaperMarketSettings) -> None:
    key = _market_key(market)
    parse_decimal(f"{key}.min_notional", market.min_notional)
    for name in ("price_increment", "quantity_increment", "book_level_quantity"):
        if parse_decimal(f"{key}.{name}", getattr(market, name)) == 0:
            raise ConfigError(f"{key}.{name}", "must be greater than 0")
    for name in ("maker_fee", "taker_fee"):
        if getattr(market, name):
            parse_decimal(f"{key}.{name}", getattr(market, name))
    _check_file(f"{key}.dataset", market.dataset)
    if market.history != Path(""):
        _check_file(f"{key}.history", market.history)


def _check_file(key: str, path: Path) -> None:
    if not project_path(path).is_file():
        raise ConfigError(key, f"no such file: {project_path(path)}")


def project_path(path: Path) -> Path:
    return path if path.is_absolute() else PROJECT_ROOT / path


def dataset_path(paper: PaperSettings) -> Path:
    return project_path(paper.dataset)


def parse_decimal(key: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(key, f"expected a decimal string, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(key, f"must be a non-negative decimal, got {text!r}")
    return value


def parse_balances(entries: tuple[str, ...]) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = {}
    for entry in entries:
        asset, _, amount = entry.partition("=")
        if not asset.strip():
            raise ConfigError("exchange.paper.balances", f"expected ASSET=amount, got {entry!r}")
        balances[asset.strip().upper()] = parse_decimal("exchange.paper.balances", amount.strip())
    return balances
