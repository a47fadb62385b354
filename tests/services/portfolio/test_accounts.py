"""The kind of an account follows its venue's name; unknown names are LIVE."""

from __future__ import annotations

import pytest

from services.portfolio.accounts import AccountKind, kind_of_venue


@pytest.mark.parametrize(
    ("venue", "kind"),
    [
        ("paper", AccountKind.PAPER),
        ("paper-eth", AccountKind.PAPER),
        ("binance-testnet", AccountKind.SANDBOX),
        ("bybit-sandbox", AccountKind.SANDBOX),
        ("binance-live", AccountKind.LIVE),
        ("kraken", AccountKind.LIVE),
    ],
)
def test_kind_of_venue(venue: str, kind: AccountKind) -> None:
    assert kind_of_venue(venue) is kind
