"""The [exchange.*] tables: a bad value or a misspelled table stops the start, named."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load_config
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
