"""Start-up settings: configs/default.toml's risk tables parse, and a bad value stops
the start with one line naming its key."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from common.config import ConfigError, load_config
from common.service import Runtime
from common.testing import isolated_config, settings_runtime
from services.risk.limits import RawLimits
from services.risk.main import default_limits
from services.risk.settings import load_settings


def runtime_for(tmp_path: Path, **overrides: str) -> Runtime:
    return settings_runtime(load_config(isolated_config(tmp_path, **overrides)), "risk")


def test_the_default_config_parses(tmp_path: Path) -> None:
    settings = load_settings(runtime_for(tmp_path))
    assert settings.feeds.account_id == "paper"
    limits = default_limits(settings.limits)
    assert limits.max_leverage == Decimal("2")
    assert limits.max_price_deviation == Decimal("0.1")
    assert limits.daily_loss_limit is None


def test_an_environment_override_reaches_the_limits(tmp_path: Path) -> None:
    runtime = runtime_for(
        tmp_path, RISK__LIMITS__ALLOWED_SYMBOLS="BTC/USDT,ETH/USDT", RISK__LIMITS__MAX_VAR="50"
    )
    limits = default_limits(load_settings(runtime).limits)
    assert limits.allowed_symbols == {"BTC/USDT", "ETH/USDT"}
    assert limits.max_var == Decimal("50")


def test_a_bad_limit_names_its_key() -> None:
    with pytest.raises(ConfigError, match=r"^config error: risk\.limits\.max_drawdown: "):
        default_limits(replace(RawLimits(), max_drawdown="1.5"))


def test_a_bad_timeframe_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"risk\.var\.timeframe"):
        load_settings(runtime_for(tmp_path, RISK__VAR__TIMEFRAME="7m"))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"RISK__VAR__MIN_OBSERVATIONS": "1"}, "risk.var.min_observations"),
        ({"RISK__VAR__LOOKBACK": "20"}, "risk.var.lookback"),  # below the minimum of 30
        ({"RISK__VAR__MAX_SIMULATIONS": "10"}, "risk.var.max_simulations"),
    ],
)
def test_var_settings_that_could_never_answer_name_their_key(
    tmp_path: Path, overrides: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(runtime_for(tmp_path, **overrides))


def test_the_default_var_settings(tmp_path: Path) -> None:
    settings = load_settings(runtime_for(tmp_path)).var
    assert (settings.min_observations, settings.lookback) == (30, 500)
