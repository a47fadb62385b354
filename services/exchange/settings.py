"""The exchange's own settings: the `[exchange.*]` sub-tables of configs/default.toml."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from common.config import PROJECT_ROOT, ConfigError, ServiceSettings, parse_settings


@dataclass(frozen=True)
class PaperSettings:
    """[exchange.paper]: the offline venue that replays real market data."""

    enabled: bool = True
    # Replay file (scripts/slice_paper_data.py format); relative to the project root.
    dataset: Path = Path("services/exchange/data/paper/binance-spot-btcusdt-20240808.txt.gz")
    symbol: str = "BTC/USDT"
    # Replay pace: 1.0 is real time, 10.0 ten times faster; 0 stops the clock (tests step it).
    speed: float = 1.0
    maker_fee: str = "0.001"
    taker_fee: str = "0.001"
    price_increment: str = "0.01"
    quantity_increment: str = "0.00001"
    min_notional: str = "5"
    # Order entry latency: every order reaches the simulated matching engine this late,
    # plus a jitter drawn from a generator seeded with `seed` (deterministic).
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    seed: int = 42
    # Starting balances, "ASSET=amount"; the account is rebuilt from them and the
    # executions at every start.
    balances: tuple[str, ...] = ("USDT=100000", "BTC=1")


@dataclass(frozen=True)
class RiskClientSettings:
    """[exchange.risk]: the pre-trade check every order passes (fail closed)."""

    # How long SubmitOrder waits for RiskService.CheckOrder before rejecting the order.
    check_timeout_seconds: float = 0.25
    # Reconnect backoff of the StreamRiskEvents subscription (HALTED cancels open orders).
    reconnect_min_seconds: float = 0.2
    reconnect_max_seconds: float = 5.0


@dataclass(frozen=True)
class CcxtVenueSettings:
    """[exchange.venues.<name>]: one ccxt exchange, live or sandbox."""

    exchange_id: str
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
    timeout_ms: int = 10000
    # Reads (tickers, books, candles, balances, orders) are retried this many times.
    read_retries: int = 3
    retry_backoff_seconds: float = 0.5
    # Overrides ccxt's REST base URLs (tests point it at a fake venue on 127.0.0.1).
    api_url: str = ""
    # Market types listed and tradable: spot by default; "swap", "future", "option" only
    # when asked for (derivative orders are refused: portfolio and risk are spot models).
    market_types: tuple[str, ...] = ("spot",)
    # Symbols kept after loading the venue's markets ("BTC/USDT", ...); empty keeps every
    # market of `market_types` (a venue with thousands needs a bigger memory budget).
    symbols: tuple[str, ...] = ()
    # StreamTickers: one REST poll of the venue per period, shared by every subscriber.
    ticker_poll_seconds: float = 2.0
    # Open orders are looked up this often for fills and cancels made at the venue, and
    # orders whose outcome is unknown are looked up by client order id.
    order_poll_seconds: float = 5.0
    # An order still unknown after this long is reported to the operator (an ERROR log
    # and an order update) and looked up every `unknown_slow_poll_seconds` from then on.
    unknown_alert_seconds: float = 300.0
    unknown_slow_poll_seconds: float = 60.0
    # RSS this venue adds to the exchange's budget (memmon's limit is [exchange]
    # memory_budget_mib plus every venue's): ccxt and the markets kept.
    memory_budget_mib: int = 64

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
    paper = parse_settings(PaperSettings, extensions.get("paper", {}), "exchange.paper.")
    _check_paper(paper)
    risk = parse_settings(RiskClientSettings, extensions.get("risk", {}), "exchange.risk.")
    if risk.check_timeout_seconds <= 0:
        raise ConfigError("exchange.risk.check_timeout_seconds", "must be greater than 0")
    venues = {
        name: parse_settings(CcxtVenueSettings, table, f"exchange.venues.{name}.")
        for name, table in _tables(extensions.get("venues", {}), "exchange.venues").items()
    }
    if "paper" in venues:
        raise ConfigError("exchange.venues.paper", "the name 'paper' is the paper venue's")
    for name, venue in venues.items():
        _check_venue(name, venue)
    return ExchangeSettings(paper=paper, risk=risk, venues=venues)


MARKET_TYPES = ("spot", "margin", "swap", "future", "option")


def _check_venue(name: str, venue: CcxtVenueSettings) -> None:
    prefix = f"exchange.venues.{name}."
    unknown = [t for t in venue.market_types if t not in MARKET_TYPES]
    if unknown or not venue.market_types:
        raise ConfigError(f"{prefix}market_types", f"must name some of {', '.join(MARKET_TYPES)}")
    if venue.memory_budget_mib <= 0:
        raise ConfigError(f"{prefix}memory_budget_mib", "must be greater than 0")
    for key in ("ticker_poll_seconds", "order_poll_seconds", "unknown_slow_poll_seconds"):
        if getattr(venue, key) <= 0:
            raise ConfigError(f"{prefix}{key}", "must be greater than 0")


def _tables(raw: Any, key: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(key, "must be a table of venues")
    return raw


def _check_paper(paper: PaperSettings) -> None:
    for name in ("maker_fee", "taker_fee", "price_increment", "quantity_increment", "min_notional"):
        parse_decimal(f"exchange.paper.{name}", getattr(paper, name))
    parse_balances(paper.balances)
    if paper.speed < 0:
        raise ConfigError("exchange.paper.speed", "must not be negative")
    if paper.latency_ms < 0 or paper.latency_jitter_ms < 0:
        raise ConfigError("exchange.paper.latency_ms", "latency must not be negative")
    if not dataset_path(paper).is_file():
        raise ConfigError("exchange.paper.dataset", f"no such file: {dataset_path(paper)}")


def dataset_path(paper: PaperSettings) -> Path:
    return paper.dataset if paper.dataset.is_absolute() else PROJECT_ROOT / paper.dataset


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
