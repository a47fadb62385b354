"""Path templates of google.api.http: parsing and matching."""

from __future__ import annotations

import pytest

from gateway.templates import TemplateError, Variable, parse


@pytest.mark.parametrize(
    ("template", "path", "values"),
    [
        (
            "/v1/venues/{venue}/tickers/{symbol=**}",
            "/v1/venues/paper/tickers/BTC/USDT",
            {"venue": "paper", "symbol": "BTC/USDT"},
        ),
        (
            "/v1/venues/{venue}/tickers/{symbol=**}",
            "/v1/venues/paper/tickers/BTC/USDT:USDT",
            {"venue": "paper", "symbol": "BTC/USDT:USDT"},
        ),
        (
            "/v1/venues/{venue}/tickers:stream",
            "/v1/venues/paper/tickers:stream",
            {"venue": "paper"},
        ),
        ("/v1/orders/{order_id}:cancel", "/v1/orders/o%3A1:cancel", {"order_id": "o%3A1"}),
        (
            "/v1/{name=shelves/*/books/*}",
            "/v1/shelves/s1/books/b2",
            {"name": "shelves/s1/books/b2"},
        ),
        ("/v1/{a}/x/{b=**}", "/v1/1/x/2/3/4", {"a": "1", "b": "2/3/4"}),
    ],
)
def test_matches_and_binds_variables(template: str, path: str, values: dict[str, str]) -> None:
    assert parse(template).match(path) == values


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/v1/venues/{venue}/tickers/{symbol=**}", "/v1/venues/paper/tickers"),
        ("/v1/venues/{venue}/tickers/{symbol=**}", "/v1/venues/paper/tickers:stream"),
        ("/v1/venues/{venue}/tickers:stream", "/v1/venues/paper/tickers"),
        ("/v1/orders/{order_id}", "/v1/orders:stream"),
        ("/v1/orders/{order_id}", "/v1/orders/"),
        ("/v1/orders", "/v1/orders/extra"),
        ("/v1/{name=shelves/*}", "/v1/racks/1"),
    ],
)
def test_does_not_match(template: str, path: str) -> None:
    assert parse(template).match(path) is None


def test_parses_segments_variables_and_verb() -> None:
    template = parse("/v1/jobs/{job_id}:stream")
    assert template.segments == ("v1", "jobs", Variable("job_id", ("*",)))
    assert template.verb == "stream"
    assert template.openapi_path() == "/v1/jobs/{job_id}:stream"


@pytest.mark.parametrize(
    "bad", ["v1/no-slash", "/v1/{unclosed", "/v1/**/x", "/v1//double", "/v1/{a=**}/{b=**}"]
)
def test_rejects_bad_templates(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse(bad)
