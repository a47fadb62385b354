"""gateway.protojson against json_format, over every message type of the contract:
generated messages print to the same bytes, and a JSON object parse_plain accepts
parses to the same message json_format makes of it (what it declines, json_format
parses or words the error, as before)."""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from google.protobuf import json_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import gateway as bench_gateway
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from gateway.bindings import bindings_of, service_descriptors
from gateway.protojson import parse_plain, to_json_object
from gateway.transcoding import message_json

CONTRACT_FILES = {service.file for _, service in service_descriptors()} | {common_pb2.DESCRIPTOR}
MAX_DEPTH = 3
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _message_types(descriptors: Any) -> list[Descriptor]:
    found = []
    for descriptor in descriptors:
        if descriptor.GetOptions().map_entry:
            continue
        found.append(descriptor)
        found += _message_types(descriptor.nested_types)
    return found


MESSAGE_TYPES = sorted(
    {
        descriptor.full_name: descriptor
        for file in CONTRACT_FILES
        for descriptor in _message_types(file.message_types_by_name.values())
    }.items()
)
REQUEST_TYPES = sorted(
    {
        binding.rpc.method.input_type.full_name: binding.rpc.method.input_type
        for binding in bindings_of(service_descriptors())
    }.items()
)
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FIELD_MASK_PATH = st.from_regex(r"\A[a-z]{1,5}(_[a-z]{1,5})?(\.[a-z]{1,5})?\Z")


def test_every_message_type_of_the_contract_is_covered() -> None:
    names = {name for name, _ in MESSAGE_TYPES}
    assert "edgequant.exchange.v1.SubmitOrderRequest" in names
    assert "edgequant.common.v1.Order" in names
    assert len(REQUEST_TYPES) > 30


def _scalar(data: st.DataObject, field: FieldDescriptor) -> Any:  # noqa: PLR0911
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return data.draw(st.binary(max_size=6))
        return data.draw(st.text(max_size=6))
    if cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return data.draw(st.booleans())
    if cpp_type in _INT_RANGES:
        low, high = _INT_RANGES[cpp_type]
        return data.draw(st.one_of(st.integers(low, high), st.sampled_from([low, high, 0])))
    if cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
        return data.draw(st.floats(width=32))
    if cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return data.draw(st.floats())
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        assert field.enum_type is not None
        numbers = list(field.enum_type.values_by_number)
        # An open enum keeps numbers it has no name for: written as the number.
        return data.draw(st.sampled_from([*numbers, 777]))
    raise AssertionError(f"no strategy for {field.full_name}")


def _fill_well_known(data: st.DataObject, message: Message) -> None:
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        message.seconds = data.draw(st.integers(0, 253402300799))  # type: ignore[attr-defined]
        message.nanos = data.draw(st.sampled_from([0, 1000, 500_000_000, 999_999_999]))  # type: ignore[attr-defined]
    elif name == "google.protobuf.Duration":
        sign = data.draw(st.sampled_from([1, -1]))
        message.seconds = sign * data.draw(st.integers(0, 315576000000))  # type: ignore[attr-defined]
        message.nanos = sign * data.draw(st.sampled_from([0, 1000, 999_999_999]))  # type: ignore[attr-defined]
    elif name == "google.protobuf.FieldMask":
        message.paths.extend(data.draw(st.lists(_FIELD_MASK_PATH, max_size=3)))  # type: ignore[attr-defined]
    else:
        raise AssertionError(f"no strategy for {name}: add one")
    message.SetInParent()


def _fill(data: st.DataObject, message: Message, depth: int = 0) -> None:
    """Sets a random subset of `message`'s fields (nested messages to MAX_DEPTH)."""
    if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        _fill_well_known(data, message)
        return
    message.SetInParent()
    field: Any
    for field in message.DESCRIPTOR.fields:
        is_message = field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
        if (is_message and depth >= MAX_DEPTH) or not data.draw(st.booleans()):
            continue
        target: Any = getattr(message, field.name)
        if is_message and field.message_type.GetOptions().map_entry:
            _fill_map(data, target, field.message_type, depth)
        elif field.is_repeated:
            for _ in range(data.draw(st.integers(0, 2))):
                if is_message:
                    _fill(data, target.add(), depth + 1)
                else:
                    target.append(_scalar(data, field))
        elif is_message:
            _fill(data, target, depth + 1)
        else:
            setattr(message, field.name, _scalar(data, field))


def _fill_map(data: st.DataObject, target: Any, entry: Any, depth: int) -> None:
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for _ in range(data.draw(st.integers(0, 2))):
        key = _scalar(data, key_field)
        if value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            _fill(data, target[key], depth + 1)
        else:
            target[key] = _scalar(data, value_field)


def _json_format_bytes(message: Message) -> bytes:
    document = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "descriptor", [d for _, d in MESSAGE_TYPES], ids=[n for n, _ in MESSAGE_TYPES]
)
@EXAMPLES
@given(data=st.data())
def test_a_message_prints_as_json_format_prints_it(
    descriptor: Descriptor, data: st.DataObject
) -> None:
    message = GetMessageClass(descriptor)()
    _fill(data, message)
    assert message_json(message) == _json_format_bytes(message)


def _plain_variants(message: Message) -> list[dict[str, Any]]:
    """JSON forms of `message` a client may send: lowerCamelCase or proto names, int64 as
    strings or as numbers (the forms parse_plain takes or declines)."""
    camel = json_format.MessageToDict(message)
    proto_names = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return [camel, proto_names, _unquote_integers(camel)]


def _unquote_integers(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _unquote_integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unquote_integers(item) for item in value]
    if isinstance(value, str) and re.fullmatch("-?[0-9]+", value):
        return int(value)
    return value


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=2)
        | st.dictionaries(st.text(string.ascii_letters, max_size=8), children, max_size=2)
    ),
    max_leaves=4,
)


def _same_as_json_format(document: dict[str, Any], message_class: type[Message]) -> bool:
    """Checks the property on one document; whether parse_plain took it."""
    fast = message_class()
    if not parse_plain(document, fast):
        return False
    slow = message_class()
    json_format.ParseDict(document, slow)  # raises if parse_plain took what it must not
    assert fast == slow
    assert fast.SerializeToString(deterministic=True) == slow.SerializeToString(deterministic=True)
    return True


@pytest.mark.parametrize(
    "descriptor", [d for _, d in REQUEST_TYPES], ids=[n for n, _ in REQUEST_TYPES]
)
@EXAMPLES
@given(data=st.data())
def test_a_plain_document_parses_as_json_format_parses_it(
    descriptor: Descriptor, data: st.DataObject
) -> None:
    message_class = GetMessageClass(descriptor)
    message = message_class()
    _fill(data, message)
    for document in _plain_variants(message):
        _same_as_json_format(document, message_class)
        # Then with a key changed to any JSON value: a wrong type, an unknown name, null.
        names = [*document, *(f.name for f in descriptor.fields), "unknownField"]
        key = data.draw(st.sampled_from(names))
        _same_as_json_format({**document, key: data.draw(JSON_VALUES)}, message_class)


def test_plain_documents_take_the_fast_path() -> None:
    """Not vacuous: the order the bench sends, and a ticker request with proto names."""
    order = {**bench_gateway.ORDER, "postOnly": True}
    assert _same_as_json_format(order, exchange_pb2.SubmitOrderRequest)
    assert _same_as_json_format(
        {"venue": "paper", "symbol": "BTC/USDT"}, exchange_pb2.GetTickerRequest
    )


@pytest.mark.parametrize(
    "document",
    [
        {"side": "SIDE_NOT_A_SIDE"},
        {"side": 1},
        {"postOnly": "true"},
        {"venue": None},
        {"venue": "paper", "venue_": "x"},
        {"clientOrderId": "a", "client_order_id": "b"},
        {"quantity": 1},
    ],
)
def test_what_is_not_plain_is_left_to_json_format(document: dict[str, Any]) -> None:
    """Enum numbers, quoted booleans, null, unknown names, one field twice, numbers for
    strings: json_format parses them or words the error, as before."""
    assert not parse_plain(document, exchange_pb2.SubmitOrderRequest())


def test_a_well_known_type_at_the_top_is_written_by_json_format() -> None:
    moment = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    assert to_json_object(moment) == "2023-11-14T22:13:20Z"
