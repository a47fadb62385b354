"""Rules of DESIGN.md checked over the descriptors of every service."""

from __future__ import annotations

import re

import pytest
from google.api import annotations_pb2  # type: ignore[attr-defined]
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor

from edgequant.backtest.v1 import backtest_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.portfolio.v1 import portfolio_pb2
from edgequant.risk.v1 import risk_pb2

SERVICES = [
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"],
    portfolio_pb2.DESCRIPTOR.services_by_name["PortfolioService"],
    risk_pb2.DESCRIPTOR.services_by_name["RiskService"],
    backtest_pb2.DESCRIPTOR.services_by_name["BacktestService"],
]
METHODS = [method for service in SERVICES for method in service.methods]
# Money, prices and quantities: decimal strings wherever orders, fills, balances or PnL go.
MONEY_FIELD = re.compile(
    r"^(price|quantity|fee|free|locked|total|equity|cash|realized|unrealized|net|notional"
    r"|.*_(price|quantity|pnl|notional|exposure|value|fee|limit))$"
)
# Messages that are analytics (backtests, ratios, VaR): floats are allowed there.
ANALYTICS_PACKAGES = ("edgequant.backtest.v1",)
ANALYTICS_MESSAGES = {"Performance", "ComputeVaRResponse", "PriceShock", "ParameterSpec"}


def _http_rule(method: MethodDescriptor) -> object:
    return method.GetOptions().Extensions[annotations_pb2.http]


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.full_name)
def test_every_rpc_has_an_http_annotation(method: MethodDescriptor) -> None:
    rule = _http_rule(method)
    pattern = rule.WhichOneof("pattern")  # type: ignore[attr-defined]
    assert pattern in ("get", "post", "put", "patch", "delete")
    assert getattr(rule, pattern).startswith("/v1/")
    if pattern == "get":
        assert not rule.body  # type: ignore[attr-defined]


def _messages() -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}

    def visit(message: Descriptor) -> None:
        if message.full_name in seen or message.GetOptions().map_entry:
            return
        seen[message.full_name] = message
        for field in message.fields:
            if field.message_type is not None:
                visit(field.message_type)

    for method in METHODS:
        visit(method.input_type)
        visit(method.output_type)
    return list(seen.values())


def test_money_is_never_a_float() -> None:
    floats = [
        f"{message.full_name}.{field.name}"
        for message in _messages()
        if not message.full_name.startswith(ANALYTICS_PACKAGES)
        and message.name not in ANALYTICS_MESSAGES
        for field in message.fields
        if MONEY_FIELD.match(field.name)
        and field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
    ]
    assert not floats


def test_money_fields_exist_and_are_strings() -> None:
    """The rule above is not vacuous: the order and fill messages carry string money."""
    order = exchange_pb2.SubmitOrderRequest.DESCRIPTOR
    for name in ("quantity", "price"):
        assert order.fields_by_name[name].type == FieldDescriptor.TYPE_STRING
    assert MONEY_FIELD.match("average_fill_price")


# Lists bounded by configuration rather than by data come whole.
UNPAGED = {"ListVenues", "ListMarkets", "ListAccounts", "ListStrategies"}


@pytest.mark.parametrize(
    "method",
    [method for method in METHODS if method.name.startswith("List") and method.name not in UNPAGED],
    ids=lambda method: method.full_name,
)
def test_lists_are_paged(method: MethodDescriptor) -> None:
    assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name)
    assert "next_page_token" in method.output_type.fields_by_name


def test_time_is_a_timestamp() -> None:
    offenders = [
        f"{message.full_name}.{field.name}"
        for message in _messages()
        for field in message.fields
        if field.name.endswith("_time") or field.name == "time"
        if field.message_type is None or field.message_type.full_name != "google.protobuf.Timestamp"
    ]
    assert not offenders
