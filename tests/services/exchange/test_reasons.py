"""The exchange's reason registry: each reason spelled as its name, documented, and
given; every ccxt error the exchange maps answers with one of them."""

from __future__ import annotations

from pathlib import Path

from common.testing import reason_registry_problems
from services.exchange import ccxt_errors
from services.exchange.reasons import Reason

SERVICE = Path(__file__).resolve().parents[3] / "services" / "exchange"


def test_the_registry_is_complete_and_documented() -> None:
    assert reason_registry_problems(Reason, SERVICE) == []


def test_every_ccxt_error_maps_to_a_registered_reason() -> None:
    assert all(isinstance(reason, Reason) for _name, _error, reason in ccxt_errors.TABLE)
