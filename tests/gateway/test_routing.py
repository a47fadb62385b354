"""The router's kept matches: a repeated path answers as a first one does."""

from __future__ import annotations

import pytest

from gateway.bindings import bindings_of, service_descriptors
from gateway.errors import GatewayError
from gateway.routing import MATCHES_KEPT, Router

TICKER = "/v1/venues/{venue}/tickers/{symbol=**}"


@pytest.fixture
def router() -> Router:
    return Router(bindings_of(service_descriptors()))


def test_a_repeated_path_matches_the_same_binding_with_its_own_values(router: Router) -> None:
    for _ in range(2):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            binding, values = router.match("GET", f"/v1/venues/paper/tickers/{symbol}")
            assert binding.template.text == TICKER
            assert values == {"venue": "paper", "symbol": symbol}


def test_a_caller_changing_the_values_changes_no_later_match(router: Router) -> None:
    _, values = router.match("GET", "/v1/venues/paper/tickers/BTC/USDT")
    values["symbol"] = "changed"
    _, again = router.match("GET", "/v1/venues/paper/tickers/BTC/USDT")
    assert again["symbol"] == "BTC/USDT"


def test_the_method_is_part_of_the_match(router: Router) -> None:
    router.match("GET", "/v1/orders")
    with pytest.raises(GatewayError) as raised:
        router.match("DELETE", "/v1/orders")
    assert raised.value.http_status == 405


def test_matches_kept_stay_bounded_and_unbound_paths_are_not_kept(router: Router) -> None:
    for index in range(MATCHES_KEPT + 50):
        router.match("GET", f"/v1/venues/paper/tickers/C{index}/USDT")
    for index in range(100):
        with pytest.raises(GatewayError):
            router.match("GET", f"/v1/nothing/{index}")
    assert len(router._recent) == MATCHES_KEPT
    # The oldest went first; the newest still answer.
    _, values = router.match("GET", f"/v1/venues/paper/tickers/C{MATCHES_KEPT + 49}/USDT")
    assert values["symbol"] == f"C{MATCHES_KEPT + 49}/USDT"
