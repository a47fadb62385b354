"""The proto3 JSON mapping on the RPC path, without json_format's per-field Python.

protobuf's `json_format` is pure Python and walks descriptors for every field of every
message; on the gateway it was a third of the CPU of a POST order. The same mapping is
compiled here once per message type:

- `to_json_object(message)`: what `json_format.MessageToDict(message,
  always_print_fields_with_no_presence=True)` returns, in the same key order (the set
  fields in field-number order, then the unset fields without presence in declaration
  order), so the bytes the gateway writes stay the same. Timestamp, Duration and
  FieldMask fields are written by their ToJsonString, as json_format does; other
  well-known types and anything unusual (extensions, closed enums, bytes) are still
  written by json_format.
- `parse_plain(document, message)`: sets a JSON object whose values are all plain
  (strings, enum names, booleans, integers, nested objects of those) and answers True;
  anything else (numbers as strings, floats, lists, maps, oneofs, well-known types,
  null, unknown or repeated names) answers False, and the caller parses a fresh message
  with json_format, which then also words any error.

tests/gateway/test_protojson.py checks both against json_format over every message
type of the contract, with generated field values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.internal import type_checkers
from google.protobuf.message import Message

Converter = Callable[[Any], Any]
_WELL_KNOWN_PREFIX = "google.protobuf."
_INT64 = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
_INT32 = frozenset({FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32})
# Well-known types json_format writes with their own ToJsonString (its
# _GenericMessageToJsonObject); the others (Any, Struct, wrappers...) go to json_format.
_OWN_JSON_STRING = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
)
# json_format rejects unpaired surrogates; a string with any surrogate goes to it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_enum_names_in_use() -> bool:
    """Whether an enum value may carry its own JSON name (`pb.enumvalue.json`), which
    json_format honours: then every enum is left to json_format."""
    try:
        descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return False
    return True


_ENUMS_BY_NAME_ONLY = not _json_enum_names_in_use()


def _is_map(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return message_type is not None and bool(message_type.GetOptions().map_entry)


# ---- printing ---------------------------------------------------------------------


class _Plan:
    """How one message type is written: a converter per field, the defaults of the
    fields without presence, in declaration order."""

    __slots__ = ("converters", "defaults")

    def __init__(self) -> None:
        self.converters: dict[FieldDescriptor, tuple[str, Converter]] = {}
        self.defaults: list[tuple[str, Callable[[], Any]]] = []


# By descriptor (a generated message's DESCRIPTOR is upb's type, hence Any).
_plans: dict[Any, _Plan | None] = {}


def _json_format_object(message: Message) -> Any:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def _plan(descriptor: Any) -> _Plan | None:
    """The plan of a message type; None where json_format writes it (well-known types)."""
    if descriptor in _plans:
        return _plans[descriptor]
    if descriptor.full_name.startswith(_WELL_KNOWN_PREFIX):
        _plans[descriptor] = None
        return None
    plan = _Plan()
    _plans[descriptor] = plan  # before the fields: a message type may contain itself
    try:
        for field in descriptor.fields:
            convert = _field_converter(field)
            plan.converters[field] = (field.json_name, convert)
            if not field.has_presence:
                plan.defaults.append((field.json_name, _default(field, convert)))
    except _Unsupported:
        _plans[descriptor] = None
        return None
    return plan


class _Unsupported(Exception):
    """A field json_format writes in a way not compiled here."""


def _default(field: FieldDescriptor, convert: Converter) -> Callable[[], Any]:
    if _is_map(field):
        return dict
    if field.is_repeated:
        return list
    value = convert(field.default_value)
    return lambda: value


def _field_converter(field: FieldDescriptor) -> Converter:
    if _is_map(field):
        entry = field.message_type
        assert entry is not None
        value_converter = _value_converter(entry.fields_by_name["value"])

        def map_object(value: Any) -> dict[str, Any]:
            return {
                ("true" if key else "false") if isinstance(key, bool) else str(key): (
                    value_converter(item)
                )
                for key, item in value.items()
            }

        return map_object
    convert = _value_converter(field)
    if field.is_repeated:
        return lambda values: [convert(value) for value in values]
    return convert


def _value_converter(field: FieldDescriptor) -> Converter:  # noqa: PLR0911 - one per type
    cpp_type = field.cpp_type
    if cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        message_type = field.message_type
        assert message_type is not None
        if message_type.full_name in _OWN_JSON_STRING:
            return _json_string
        return to_json_object
    if cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        enum_type = field.enum_type
        assert enum_type is not None
        if enum_type.full_name == "google.protobuf.NullValue":
            return lambda _value: None
        if enum_type.is_closed or not _ENUMS_BY_NAME_ONLY:
            raise _Unsupported(field.full_name)
        names = {number: value.name for number, value in enum_type.values_by_number.items()}
        return lambda value: names.get(value, value)
    if cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:  # a dataset upload only: left to json_format
            raise _Unsupported(field.full_name)
        return str
    if cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if cpp_type in _INT64:
        return str
    if cpp_type in _INT32:
        return _same
    if cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
        return lambda value: _special_float(value) or type_checkers.ToShortestFloat(value)
    if cpp_type == FieldDescriptor.CPPTYPE_DOUBLE:
        return lambda value: _special_float(value) or value
    raise _Unsupported(field.full_name)


def _json_string(message: Any) -> str:
    return str(message.ToJsonString())


def _same(value: Any) -> Any:
    return value


def _special_float(value: float) -> str | None:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return None


def to_json_object(message: Message) -> Any:
    """`json_format.MessageToDict(message, always_print_fields_with_no_presence=True)`."""
    plan = _plans.get(message.DESCRIPTOR) or _plan(message.DESCRIPTOR)
    if plan is None:
        return _json_format_object(message)
    converters = plan.converters
    document: dict[str, Any] = {}
    for field, value in message.ListFields():
        found = converters.get(field)
        if found is None:  # an extension
            return _json_format_object(message)
        name, convert = found
        document[name] = convert(value)
    for name, default in plan.defaults:
        if name not in document:
            document[name] = default()
    return document


# ---- parsing ----------------------------------------------------------------------


_parse_fields: dict[Any, dict[str, FieldDescriptor]] = {}


def _fields_by_json_or_proto_name(descriptor: Any) -> dict[str, FieldDescriptor]:
    """Names as json_format looks them up: the JSON name first, then the proto name."""
    fields = _parse_fields.get(descriptor)
    if fields is None:
        fields = {field.name: field for field in descriptor.fields}
        fields.update({field.json_name: field for field in descriptor.fields})
        _parse_fields[descriptor] = fields
    return fields


def parse_plain(document: dict[str, Any], message: Message) -> bool:
    """Sets `document` on `message` if every value is plain (see the module docstring);
    False otherwise, with `message` possibly half set: parse a fresh one then."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name.startswith(_WELL_KNOWN_PREFIX):
        return False
    fields = _fields_by_json_or_proto_name(descriptor)
    seen: set[str] = set()
    for key, value in document.items():
        field = fields.get(key)
        if field is None or field.name in seen or field.containing_oneof is not None:
            return False
        seen.add(field.name)
        if field.is_repeated or not _set_plain(message, field, value):
            return False
    return True


def _set_plain(message: Message, field: FieldDescriptor, value: Any) -> bool:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if type(value) is not dict:
            return False
        child = getattr(message, field.name)
        child.SetInParent()
        return parse_plain(value, child)
    plain = _plain_scalar(field, value)
    if plain is _NOT_PLAIN:
        return False
    try:
        setattr(message, field.name, plain)
    except (ValueError, TypeError):  # out of range: json_format words it
        return False
    return True


_NOT_PLAIN = object()


def _plain_scalar(field: FieldDescriptor, value: Any) -> Any:
    """The value to set for a plain JSON value of a scalar field, or _NOT_PLAIN."""
    field_type = field.type
    if field_type == FieldDescriptor.TYPE_STRING:
        return value if type(value) is str and not _SURROGATE.search(value) else _NOT_PLAIN
    if field_type == FieldDescriptor.TYPE_BOOL:
        return value if type(value) is bool else _NOT_PLAIN
    if field.cpp_type in _INT64 or field.cpp_type in _INT32:
        return value if type(value) is int else _NOT_PLAIN
    if field_type == FieldDescriptor.TYPE_ENUM and type(value) is str and _ENUMS_BY_NAME_ONLY:
        enum_type = field.enum_type
        assert enum_type is not None
        found = enum_type.values_by_name.get(value)
        if found is None or enum_type.full_name == "google.protobuf.NullValue":
            return _NOT_PLAIN
        return found.number
    return _NOT_PLAIN
