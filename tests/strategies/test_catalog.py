"""User strategies: loaded from the configured directory only, checked, listed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strategies.base import UnknownStrategy
from strategies.candles import Candles
from strategies.catalog import StrategyCatalog

USER = '''"""Always long."""
import numpy as np

from strategies import Parameter

PARAMETERS = [Parameter("level", "float", 1.0, 0.0, 1.0, "wanted position")]


def signals(candles, level):
    return np.full(len(candles), level)
'''


def test_user_modules_join_the_builtins(tmp_path: Path, eth_btc_1m: Candles) -> None:
    (tmp_path / "always_long.py").write_text(USER)
    (tmp_path / "_helper.py").write_text("raise RuntimeError('never imported')\n")
    (tmp_path / "broken.py").write_text("this is not python\n")
    (tmp_path / "no_signals.py").write_text("PARAMETERS = []\n")
    catalog = StrategyCatalog(tmp_path)
    names = [strategy.name for strategy in catalog]
    assert names[:6] == [
        "buy_and_hold",
        "sma_cross",
        "ema_cross",
        "rsi_reversion",
        "bollinger_breakout",
        "macd",
    ]
    assert names[6:] == ["always_long"]
    strategy = catalog.get("always_long")
    assert strategy.user_defined
    assert strategy.description == "Always long."
    _, problems = strategy.resolve({"level": 2.0})
    assert problems == [("level", "must be within [0, 1], got 2")]
    assert np.all(strategy.run(eth_btc_1m, {"level": 1.0}) == 1.0)
    with pytest.raises(UnknownStrategy):
        catalog.get("broken")
