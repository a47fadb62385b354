from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.config import PROJECT_ROOT, ConfigError, load_config, parse_settings


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
