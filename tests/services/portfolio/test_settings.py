"""`[portfolio.*]` settings: defaults, overrides from the environment, and bad values
that stop the start naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError, load_config
from common.service import Runtime
from common.testing import isolated_config, settings_runtime
from services.portfolio.settings import PortfolioSettings, load_settings


def _Runtime(tmp_path: Path, **overrides: str) -> Runtime:
    return settings_runtime(load_config(isolated_config(tmp_path, **overrides)), "portfolio")


def test_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings(_Runtime(tmp_path, PORTFOLIO__INGESTION__MAX_BATCH="50"))
    assert settings.ingestion.max_batch == 50
    assert settings.ledger == PortfolioSettings().ledger
    assert settings.ledger.quote_currency == "USDT"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"PORTFOLIO__INGESTION__MAX_BATCH": "0"}, "portfolio.ingestion.max_batch"),
        ({"PORTFOLIO__EQUITY__SNAPSHOT_SECONDS": "soon"}, "portfolio.equity.snapshot_seconds"),
        ({"PORTFOLIO__LEDGER__COLOUR": "red"}, "portfolio.ledger.colour"),
        (
            {"PORTFOLIO__INGESTION__BATCH_LINGER_SECONDS": "-1"},
            "portfolio.ingestion.batch_linger_seconds",
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, override: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_Runtime(tmp_path, **override))
    assert raised.value.key == key


def test_paper_starting_cash_is_refused_pointing_to_the_exchange(tmp_path: Path) -> None:
    """The one set of paper starting balances is the exchange's: a second one is an error."""
    with pytest.raises(ConfigError) as raised:
        load_settings(_Runtime(tmp_path, PORTFOLIO__LEDGER__PAPER_STARTING_CASH="10000"))
    assert raised.value.key == "portfolio.ledger.paper_starting_cash"
    assert "[exchange.paper] balances" in str(raised.value)
