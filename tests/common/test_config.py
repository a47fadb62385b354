from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest

from common.config import (
    PROJECT_ROOT,
    Above,
    AtLeast,
    AtMost,
    ConfigError,
    NonNegativeFloat,
    OneOf,
    PositiveInt,
    load_config,
    parse_settings,
)
from common.testing import isolated_config, settings_runtime
from gateway import settings as gateway_settings
from services.backtest import settings as backtest_settings
from services.exchange import settings as exchange_settings
from services.portfolio import settings as portfolio_settings
from services.risk import settings as risk_settings


def test_defaults_come_from_default_toml() -> None:
    config = load_config({})
    assert config.exchange.address == "127.0.0.1:50051"
    assert config.portfolio.address == "127.0.0.1:50052"
    assert config.risk.address == "127.0.0.1:50053"
    assert config.backtest.address == "127.0.0.1:50054"
    assert (config.gateway.host, config.gateway.port) == ("127.0.0.1", 8080)
    assert config.var_dir == PROJECT_ROOT / "var"


def test_override_file_then_environment_win(tmp_path: Path) -> None:
    override = tmp_path / "local.toml"
    override.write_text('log_level = "DEBUG"\n[risk]\naddress = "127.0.0.1:6000"\n')
    config = load_config(
        {
            "EDGEQUANT_CONFIG": str(override),
            "EDGEQUANT_RISK__ADDRESS": "127.0.0.1:7000",
            "EDGEQUANT_VAR_DIR": str(tmp_path),
        }
    )
    assert config.log_level == "DEBUG"
    assert config.risk.address == "127.0.0.1:7000"
    assert config.risk.memory_budget_mib == 96  # untouched keys keep their defaults
    assert config.database_url("risk") == f"sqlite+aiosqlite:///{tmp_path / 'risk.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("EDGEQUANT_RISK__ADDRESS", "0.0.0.0:50053", "risk.address"),
        ("EDGEQUANT_EXCHANGE__ADDRESS", "127.0.0.1:http", "exchange.address"),
        ("EDGEQUANT_PORTFOLIO__MEMORY_BUDGET_MIB", "lots", "portfolio.memory_budget_mib"),
        ("EDGEQUANT_BACKTEST__SOFT_LIMIT_RATIO", "1.5", "backtest.soft_limit_ratio"),
        ("EDGEQUANT_GATEWAY__PORT", "70000", "gateway.port"),
        ("EDGEQUANT_LOG_LEVEL", "LOUD", "log_level"),
        ("EDGEQUANT_RISK__ADRESS", "127.0.0.1:1", "risk.adress"),
        # gRPC pings at most once a second, whatever a client asks for.
        ("EDGEQUANT_GRPC__KEEPALIVE_TIME_SECONDS", "0.5", "grpc.keepalive_time_seconds"),
        ("EDGEQUANT_GRPC__KEEPALIVE_TIMEOUT_SECONDS", "0", "grpc.keepalive_timeout_seconds"),
        # Servers stricter than our clients' keepalive would send them GOAWAY too_many_pings.
        ("EDGEQUANT_GRPC__MIN_PING_INTERVAL_SECONDS", "11", "grpc.min_ping_interval_seconds"),
        ("EDGEQUANT_GRPC__MAX_PING_STRIKES", "-1", "grpc.max_ping_strikes"),
    ],
)
def test_bad_value_names_its_key(variable: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({variable: value})
    assert raised.value.key == key
    assert str(raised.value).startswith(f"config error: {key}: ")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[risk\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML"):
        load_config({"EDGEQUANT_CONFIG": str(broken)})


@pytest.mark.parametrize("module", ["services.risk", "gateway", "common.stack"])
def test_bad_value_stops_the_start_with_one_line(module: str, environment: dict[str, str]) -> None:
    environment["EDGEQUANT_RISK__MAX_CONCURRENT_RPCS"] = "-4"
    started = subprocess.run(
        [sys.executable, "-m", module],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert started.stderr.strip().splitlines() == [
        "config error: risk.max_concurrent_rpcs: must be greater than 0, got -4"
    ]


# What common.server.run does at a service's start, then whether tomllib is still loaded
# and whether the configuration can be read again.
_READ_THEN_UNLOAD = """
import sys
{first}
from common.config import load_config, unload_toml_parser
load_config()
unload_toml_parser()
print("tomllib" in sys.modules, load_config().risk.address)
"""


@pytest.mark.parametrize(
    ("first", "kept"),
    [("", False), ("import gateway.auth  # imports tomllib itself", True)],
)
def test_a_service_drops_the_toml_parser_after_reading_its_configuration(
    first: str, kept: bool, environment: dict[str, str]
) -> None:
    """Unless another module holds tomllib: then it stays, the one copy they share."""
    read = subprocess.run(
        [sys.executable, "-c", _READ_THEN_UNLOAD.format(first=first)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert read.stdout.split() == [str(kept), load_config(environment).risk.address]


@dataclass(frozen=True)
class PaperSettings:
    seed: int
    symbols: tuple[str, ...] = ("BTC/USDT",)
    latency_ms: float = 5.0
    partial_fills: bool = True


def test_service_sub_tables_are_kept_for_the_service_to_parse(tmp_path: Path) -> None:
    override = tmp_path / "local.toml"
    override.write_text('[exchange.example]\nseed = 7\nsymbols = ["BTC/USDT", "ETH/USDT"]\n')
    config = load_config(
        {"EDGEQUANT_CONFIG": str(override), "EDGEQUANT_EXCHANGE__EXAMPLE__PARTIAL_FILLS": "false"}
    )
    paper = parse_settings(
        PaperSettings, config.exchange.extensions["example"], "exchange.example."
    )
    assert paper == PaperSettings(
        seed=7, symbols=("BTC/USDT", "ETH/USDT"), latency_ms=5.0, partial_fills=False
    )


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({}, "exchange.paper.seed", "missing"),
        ({"seed": "x"}, "exchange.paper.seed", "expected int, got 'x'"),
        ({"seed": 1, "partial_fills": "maybe"}, "exchange.paper.partial_fills", "expected bool"),
        ({"seed": 1, "symbols": [1]}, "exchange.paper.symbols", "expected tuple"),
        ({"seed": 1, "sede": 2}, "exchange.paper.sede", "unknown key"),
    ],
)
def test_service_sub_table_errors_name_the_key(
    table: dict[str, object], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(PaperSettings, table, "exchange.paper.")
    assert raised.value.key == key
    assert problem in str(raised.value)


@dataclass(frozen=True)
class BoundedSettings:
    workers: Annotated[int, AtLeast(1)] = 2
    budget_mib: PositiveInt = 64
    delay_seconds: NonNegativeFloat = 0.5
    ratio: Annotated[float, Above(0), AtMost(1)] = 0.5
    mode: Annotated[str, OneOf(("fast", "safe"))] = "safe"


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"workers": 0}, "svc.pool.workers", "must be at least 1, got 0"),
        ({"budget_mib": "-64"}, "svc.pool.budget_mib", "must be greater than 0, got -64"),
        ({"delay_seconds": -0.1}, "svc.pool.delay_seconds", "must be at least 0, got -0.1"),
        ({"ratio": 1.5}, "svc.pool.ratio", "must be at most 1, got 1.5"),
        ({"ratio": 0}, "svc.pool.ratio", "must be greater than 0, got 0.0"),
        ({"mode": "slow"}, "svc.pool.mode", "must be one of fast, safe, got 'slow'"),
    ],
)
def test_declared_bounds_are_enforced_naming_the_full_key(
    table: dict[str, object], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_settings(BoundedSettings, table, "svc.pool.")
    assert raised.value.key == key
    assert str(raised.value) == f"config error: {key}: {problem}"


def test_values_within_their_bounds_parse() -> None:
    table = {"workers": "1", "budget_mib": 1, "delay_seconds": 0, "ratio": 1, "mode": "fast"}
    assert parse_settings(BoundedSettings, table, "svc.pool.") == BoundedSettings(
        workers=1, budget_mib=1, delay_seconds=0.0, ratio=1.0, mode="fast"
    )


def _loaded(name: str, environment: dict[str, str]) -> object:
    """The service's settings, read by its own loader from `environment`."""
    config = load_config(environment)
    if name == "exchange":
        return exchange_settings.load_settings(config.exchange)
    if name == "gateway":
        return gateway_settings.settings_of(config.gateway)
    loader = {
        "backtest": backtest_settings.load_settings,
        "portfolio": portfolio_settings.load_settings,
        "risk": risk_settings.load_settings,
    }[name]
    return loader(settings_runtime(config, name))


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        # A pool of no workers would leave every job queued for ever.
        ("BACKTEST__JOBS__MAX_WORKERS", "0", "backtest.jobs.max_workers"),
        ("BACKTEST__JOBS__WORKER_BUDGET_MIB", "-768", "backtest.jobs.worker_budget_mib"),
        ("BACKTEST__JOBS__WORKER_BUDGET_MIB", "0", "backtest.jobs.worker_budget_mib"),
        ("BACKTEST__JOBS__IDLE_SECONDS", "-1", "backtest.jobs.idle_seconds"),
        ("BACKTEST__MEMORY_BUDGET_MIB", "0", "backtest.memory_budget_mib"),
        ("RISK__FEEDS__RETRY_SECONDS", "-1", "risk.feeds.retry_seconds"),
        ("RISK__FEEDS__RPC_TIMEOUT_SECONDS", "0", "risk.feeds.rpc_timeout_seconds"),
        ("RISK__FEEDS__READY_TIMEOUT_SECONDS", "-5", "risk.feeds.ready_timeout_seconds"),
        ("RISK__VAR__TIMEFRAME", "1M", "risk.var.timeframe"),  # a month has no fixed length
        ("RISK__GRACE_SECONDS", "-1", "risk.grace_seconds"),
        (
            "PORTFOLIO__INGESTION__BATCH_LINGER_SECONDS",
            "-0.01",
            "portfolio.ingestion.batch_linger_seconds",
        ),
        (
            "PORTFOLIO__INGESTION__BACKOFF_MAX_SECONDS",
            "0.1",
            "portfolio.ingestion.backoff_max_seconds",
        ),
        ("EXCHANGE__RISK__CHECK_TIMEOUT_SECONDS", "0", "exchange.risk.check_timeout_seconds"),
        ("EXCHANGE__RISK__RECONNECT_MIN_SECONDS", "-0.2", "exchange.risk.reconnect_min_seconds"),
        ("EXCHANGE__PAPER__LATENCY_JITTER_MS", "-1", "exchange.paper.latency_jitter_ms"),
        ("GATEWAY__LIMITS__BURST", "0", "gateway.limits.burst"),
        ("GATEWAY__CALLS__HEARTBEAT_SECONDS", "-15", "gateway.calls.heartbeat_seconds"),
        ("GATEWAY__HEALTH_TIMEOUT_SECONDS", "0", "gateway.health_timeout_seconds"),
    ],
)
def test_each_loader_rejects_a_value_out_of_bounds(
    tmp_path: Path, variable: str, value: str, key: str
) -> None:
    name = variable.split("__", maxsplit=1)[0].lower()
    environment = isolated_config(tmp_path, **{variable: value})
    with pytest.raises(ConfigError) as raised:
        _loaded(name, environment)
    assert raised.value.key == key


@pytest.mark.parametrize("name", ["exchange", "portfolio", "risk", "backtest", "gateway"])
def test_the_default_config_is_within_every_bound(tmp_path: Path, name: str) -> None:
    assert _loaded(name, isolated_config(tmp_path)) is not None
