"""The [exchange.*] tables: a bad value or a misspelled table stops the start, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load_config
from common.stack import exchange_budget_mib, memmon_arguments
from services.exchange.settings import ExchangeSettings, load_settings


def _settings_from(tmp_path: Path, toml: str) -> ExchangeSettings:
    override = tmp_path / "local.toml"
    override.write_text(toml)
    return load_settings(load_config({"EDGEQUANT_CONFIG": str(override)}).exchange)


def test_defaults_load(tmp_path: Path) -> None:
    settings = _settings_from(tmp_path, "")
    assert settings.paper.dataset.name.endswith(".txt.gz")
    assert settings.risk.check_timeout_seconds > 0
    assert settings.venues == {}


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[exchange.papr]\nseed = 1\n", "exchange.papr"),
        ("[exchange.risk]\ncheck_timeout_seconds = 0\n", "exchange.risk.check_timeout_seconds"),
        ('[exchange.paper]\ndataset = "nowhere.gz"\n', "exchange.paper.dataset"),
        ('[exchange.venues.paper]\nexchange_id = "binance"\n', "exchange.venues.paper"),
    ],
)
def test_a_bad_table_or_value_is_named(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings_from(tmp_path, toml)
    assert raised.value.key == key


def test_each_ccxt_venue_adds_its_memory_budget_to_the_exchanges(tmp_path: Path) -> None:
    toml = (
        '[exchange.venues.one]\nexchange_id = "binance"\n'
        '[exchange.venues.two]\nexchange_id = "okx"\nmemory_budget_mib = 100\n'
    )
    (tmp_path / "local.toml").write_text(toml)
    config = load_config({"EDGEQUANT_CONFIG": str(tmp_path / "local.toml")})

    assert exchange_budget_mib(config) == config.exchange.memory_budget_mib + 64 + 100
    assert f"-p exchange={exchange_budget_mib(config)}MB" in memmon_arguments(config)


def test_ccxt_venue_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings_from(
            tmp_path,
            '[exchange.venues.okx]\nexchange_id = "okx"\nmarket_types = ["spot", "perp"]\n',
        )
    assert "exchange.venues.okx.market_types" in str(raised.value)
