"""Real candles for the backtest tests (see data/README.md for their origin)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from strategies.candles import Candles

DATA = Path(__file__).parent / "data"


def load_freqtrade_candles(name: str) -> Candles:
    with gzip.open(DATA / name, "rt") as source:
        return Candles.from_matrix(np.array(json.load(source), dtype=np.float64))


@pytest.fixture(scope="session")
def eth_btc_1m() -> Candles:
    return load_freqtrade_candles("ETH_BTC-1m.json.gz")


@pytest.fixture(scope="session")
def ada_btc_5m() -> Candles:
    return load_freqtrade_candles("ADA_BTC-5m.json.gz")
