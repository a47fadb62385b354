"""JSON and query parameters -> protobuf requests, protobuf -> JSON (the proto3 mapping)."""

from __future__ import annotations

import json

import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from common.errors import InvalidArgument
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from edgequant.risk.v1 import risk_pb2
from gateway.bindings import Binding, bindings_of, service_descriptors
from gateway.transcoding import message_json, request_message

BINDINGS = {b.rpc.method.name: b for b in bindings_of(service_descriptors())}


def _as_get(binding: Binding) -> Binding:
    """The same RPC bound without a body: every field comes from the query."""
    return Binding(binding.rpc, "GET", binding.template, body="", response_body="")


def test_nested_and_repeated_fields_from_the_query() -> None:
    request = request_message(
        _as_get(BINDINGS["UpdateLimits"]),
        {},
        [
            ("limits.maxLeverage", "3"),
            ("limits.allowed_symbols", "BTC/USDT"),
            ("limits.allowedSymbols", "ETH/USDT"),
            ("limits.maxOpenOrders", "12"),
            ("limits.lossCooldown", "90s"),
            ("updateMask", "limits.maxLeverage"),
        ],
        b"",
    )
    assert request == risk_pb2.UpdateLimitsRequest(
        limits=risk_pb2.Limits(
            max_leverage="3",
            allowed_symbols=["BTC/USDT", "ETH/USDT"],
            max_open_orders=12,
            loss_cooldown=duration_pb2.Duration(seconds=90),
        ),
        update_mask=field_mask_pb2.FieldMask(paths=["limits.max_leverage"]),
    )


def test_a_map_or_unknown_path_in_the_query_is_named() -> None:
    with pytest.raises(InvalidArgument) as raised:
        request_message(
            _as_get(BINDINGS["UpdateLimits"]),
            {},
            [("limits.symbolLimits", "x"), ("limits.nothing", "1")],
            b"",
        )
    assert [v.field for v in raised.value.violations] == ["limits.symbolLimits", "limits.nothing"]


def test_path_variables_win_over_the_body() -> None:
    request = request_message(
        BINDINGS["CancelOrder"], {"order_id": "o-path"}, [], b'{"orderId": "o-body"}'
    )
    assert request == exchange_pb2.CancelOrderRequest(order_id="o-path")


def test_a_body_that_is_not_an_object_is_400() -> None:
    with pytest.raises(InvalidArgument):
        request_message(BINDINGS["SubmitOrder"], {}, [], b"[1, 2]")


def test_int64_is_written_as_a_string_and_zero_values_are_written() -> None:
    execution = common_pb2.Execution(sequence=2**60 + 1, venue="paper")
    document = json.loads(message_json(exchange_pb2.StreamExecutionsResponse(execution=execution)))
    assert document["execution"]["sequence"] == "1152921504606846977"
    assert document["execution"]["fee"] == ""


def test_patch_without_update_mask_updates_the_fields_the_body_holds() -> None:
    body = b'{"maxLeverage": "3", "symbolLimits": {"BTC/USDT": {"maxPositionQuantity": "1"}}}'
    request = request_message(BINDINGS["UpdateLimits"], {}, [], body)
    assert isinstance(request, risk_pb2.UpdateLimitsRequest)
    assert list(request.update_mask.paths) == ["max_leverage", "symbol_limits"]
    explicit = request_message(BINDINGS["UpdateLimits"], {}, [("updateMask", "maxVar")], body)
    assert isinstance(explicit, risk_pb2.UpdateLimitsRequest)
    assert list(explicit.update_mask.paths) == ["max_var"]
