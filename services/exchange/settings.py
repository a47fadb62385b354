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
    # Environment variables holding the keys, or a 0600 TOML file with api_key/secret.
    api_key_env: str = ""
    secret_env: str = ""
    secrets_file: str = ""
    timeout_ms: int = 10000
    # Reads (tickers, books, candles, balances, orders) are retried this many times.
    read_retries: int = 3
    retry_backoff_seconds: float = 0.5
    # Overrides ccxt's REST base URLs (tests point it at a fake venue on 127.0.0.1).
    api_url: str = ""
    # StreamTickers polls the venue's REST tickers this often (no websockets here).
    ticker_poll_seconds: float = 2.0
    # Open orders are looked up this often for fills and cancels made at the venue.
    order_poll_seconds: float = 5.0


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
    return ExchangeSettings(paper=paper, risk=risk, venues=venues)


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
