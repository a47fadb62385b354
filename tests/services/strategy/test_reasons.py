"""The strategy service's reason registry: each reason spelled as its name, documented,
and given; the exchange's reasons it recognises are registered apart."""

from __future__ import annotations

from pathlib import Path

from common.testing import reason_registry_problems
from services.strategy.reasons import ExchangeReason, Reason

SERVICE = Path(__file__).resolve().parents[3] / "services" / "strategy"


def test_the_registry_is_complete_and_documented() -> None:
    assert reason_registry_problems(Reason, SERVICE) == []


def test_the_exchange_reasons_it_reads_are_documented() -> None:
    assert reason_registry_problems(ExchangeReason, SERVICE) == []
