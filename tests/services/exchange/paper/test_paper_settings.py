"""[exchange.paper]'s markets tables and live source: the BTC/USDT keys keep working, a
further market is a BASE-QUOTE table, a bad one stops the start naming its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.config import ConfigError, load_config
from services.exchange.main import build_venues
from services.exchange.settings import ExchangeSettings, load_settings

ETH = 'dataset = "services/exchange/data/paper/binance-usdm-ethusdt-20240808-trades.txt.gz"\n'


def _settings_from(tmp_path: Path, toml: str) -> ExchangeSettings:
    override = tmp_path / "local.toml"
    override.write_text(toml)
    return load_settings(load_config({"EDGEQUANT_CONFIG": str(override)}).exchange)


def test_the_defaults_name_three_markets_and_no_live_source(tmp_path: Path) -> None:
    paper = _settings_from(tmp_path, "").paper
    assert paper.symbol == "BTC/USDT"
    assert [m.symbol for m in paper.markets] == ["ETH/USDT", "ADA/USDT"]
    assert paper.source == ""
    assert [v.info.name for v in build_venues(_settings_from(tmp_path, ""))] == ["paper"]


def test_ccxt_is_imported_only_with_a_source() -> None:
    """It costs ~100 MB of RSS: a fresh process building the default venues has none."""
    script = (
        "import sys\n"
        "from common.config import load_config\n"
        "from services.exchange.main import build_venues\n"
        "from services.exchange.settings import load_settings\n"
        "build_venues(load_settings(load_config({}).exchange))\n"
        "print('ccxt' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_market_table_may_override_fees_and_the_book(tmp_path: Path) -> None:
    toml = f'[exchange.paper.markets.ETH-USDT]\n{ETH}taker_fee = "0.002"\nbook_levels = 3\n'
    (eth, *_) = _settings_from(tmp_path, toml).paper.markets
    assert (eth.symbol, eth.taker_fee, eth.maker_fee, eth.book_levels) == (
        "ETH/USDT",
        "0.002",
        "",
        3,
    )


def test_a_live_source_adds_paper_live(tmp_path: Path) -> None:
    settings = _settings_from(tmp_path, '[exchange.paper]\nsource = "binance"\n')
    assert [v.info.name for v in build_venues(settings)] == ["paper", "paper-live"]


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        (f"[exchange.paper.markets.ETHUSDT]\n{ETH}", "exchange.paper.markets.ETHUSDT"),
        (f'[exchange.paper.markets.ETH-USDT]\n{ETH}symbol = "X/Y"\n',
         "exchange.paper.markets.ETH-USDT.symbol"),
        (f"[exchange.paper.markets.BTC-USDT]\n{ETH}", "exchange.paper.markets.BTC-USDT"),
        ('[exchange.paper.markets.ETH-USDT]\ndataset = "nowhere.gz"\n',
         "exchange.paper.markets.ETH-USDT.dataset"),
        (f'[exchange.paper.markets.ETH-USDT]\n{ETH}price_increment = "0"\n',
         "exchange.paper.markets.ETH-USDT.price_increment"),
        (f"[exchange.paper.markets.ETH-USDT]\n{ETH}book_levels = 0\n",
         "exchange.paper.markets.ETH-USDT.book_levels"),
        (f"[exchange.paper.markets.ETH-USDT]\n{ETH}depth = 3\n",
         "exchange.paper.markets.ETH-USDT.depth"),
        ('[exchange.paper]\nhistory = "nowhere.gz"\n', "exchange.paper.history"),
        ('[exchange.paper]\nsource = "binance"\nlive_poll_seconds = 0\n',
         "exchange.paper.live_poll_seconds"),
        ('[exchange.paper]\nsource = "binance"\n[exchange.venues.paper-live]\n'
         'exchange_id = "binance"\n', "exchange.venues.paper-live"),
    ],
)  # fmt: skip
def test_a_bad_market_or_source_is_named(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings_from(tmp_path, toml)
    assert raised.value.key == key
