"""HTTP request -> protobuf request, protobuf response -> JSON.

A request message is assembled as one JSON object, then parsed in the proto3 JSON
mapping (int64 as strings, enums by name, Timestamps as RFC 3339; gateway.protojson
where the values are plain, else `google.protobuf.json_format`), in this order, later
wins:
1. the body: the whole request (`body: "*"`) or the field it names (`body: "limits"`);
2. query parameters, for every field the path and body leave: `a.b=1` sets a nested
   field, a repeated field takes the parameter as many times as it has values;
3. path variables.
Unknown JSON fields and unknown query parameters are rejected with 400 and a
BadRequest violation naming each, before anything is sent to a service.

A PATCH whose body is a named field and whose request has a FieldMask `update_mask`
the client left out gets one naming the fields the body holds, relative to the body
(grpc-gateway's behaviour, AIP-134): `PATCH /v1/risk/limits {"maxLeverage": "3"}`
updates max_leverage only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from common.errors import FieldViolation, InvalidArgument
from gateway.bindings import Binding, field_at
from gateway.protojson import parse_plain, to_json_object
from gateway.reasons import Reason

# Messages with their own JSON form (a string, number or free object): leaves.
_WELL_KNOWN_PREFIX = "google.protobuf."
# Query parameters the gateway itself consumes (RFC 6750 §2.3: EventSource cannot
# send an Authorization header).
RESERVED_QUERY = frozenset({"access_token"})
UPDATE_MASK = "update_mask"
# json_format names the field by nesting: "Failed to parse limits field: Failed to parse
# maxOpenOrders field: invalid literal ..." -> "limits.maxOpenOrders".
_PARSE_ERROR_FIELD = re.compile(r"Failed to parse (\S+) field")


def request_message(
    binding: Binding,
    path_values: dict[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request of `binding`'s RPC; raises InvalidArgument naming each bad field."""
    descriptor = binding.rpc.method.input_type
    document: dict[str, Any] = {}
    violations: list[FieldViolation] = []
    target: FieldDescriptor | None = None
    body_value: Any = None
    if binding.body:
        body_value = _json_body(body)
        target = field_at(descriptor, binding.body) if binding.body != "*" else None
        violations += _unknown_fields(
            target.message_type if target else descriptor, body_value, binding.body
        )
        if target is None:
            if not isinstance(body_value, dict):
                raise InvalidArgument([FieldViolation("*", "the body must be a JSON object")])
            document = body_value
        else:
            _set(document, binding.body.split("."), body_value)
    if binding.has_query:
        violations += _apply_query(descriptor, document, query)
    if binding.http_method == "PATCH" and target is not None and target.message_type:
        _derive_update_mask(descriptor, document, target.message_type, body_value)
    for field_path, raw in path_values.items():
        _set_path_value(descriptor, document, field_path.split("."), unquote(raw))
    if violations:
        raise InvalidArgument(violations)
    return _parse(document, binding.rpc.request_class)


def response_json(binding: Binding, message: Message) -> bytes:
    """The response body: the message (or its `response_body` field) in the JSON mapping."""
    if binding.response_body:
        value = getattr(message, binding.response_body)
        if isinstance(value, Message):
            message = value
    return message_json(message)


def message_json(message: Message) -> bytes:
    """JSON of a message as grpc-gateway writes it: lowerCamelCase names, every field
    present (zero values too, so a client sees one stable shape), int64 as strings."""
    document = to_json_object(message)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _json_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidArgument(
            [FieldViolation("body", f"not valid JSON: {error}")], reason=Reason.MALFORMED_JSON
        ) from None


def _parse(document: dict[str, Any], message_class: type[Message]) -> Message:
    message = message_class()
    if parse_plain(document, message):
        return message
    message = message_class()  # parse_plain may have set part of the first one
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as error:
        text = str(error).splitlines()[0]
        field = ".".join(_PARSE_ERROR_FIELD.findall(text))
        raise InvalidArgument([FieldViolation(field or "body", text)]) from None
    return message


def _is_leaf(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return message_type is None or message_type.full_name.startswith(_WELL_KNOWN_PREFIX)


def _is_map(field: FieldDescriptor) -> bool:
    message_type = field.message_type
    return message_type is not None and message_type.GetOptions().map_entry


def _lookup(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    """A field by its proto name ("client_order_id") or JSON name ("clientOrderId")."""
    field = descriptor.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in descriptor.fields:
        if candidate.json_name == name:
            return candidate
    return None


def _unknown_fields(descriptor: Descriptor | None, value: Any, where: str) -> list[FieldViolation]:
    """Violations for JSON keys the message does not have, at any depth."""
    if descriptor is None or not isinstance(value, dict):
        return []
    if descriptor.full_name.startswith(_WELL_KNOWN_PREFIX):
        return []
    prefix = "" if where in ("*", "") else f"{where}."
    violations = []
    for key, item in value.items():
        field = _lookup(descriptor, key)
        if field is None:
            violations.append(FieldViolation(f"{prefix}{key}", "unknown field"))
        elif _is_map(field):
            entry = field.message_type
            assert entry is not None
            value_field = entry.fields_by_name["value"]
            if isinstance(item, dict) and not _is_leaf(value_field):
                for map_key, map_value in item.items():
                    violations += _unknown_fields(
                        value_field.message_type, map_value, f"{prefix}{field.name}[{map_key}]"
                    )
        elif not _is_leaf(field):
            items = item if field.is_repeated and isinstance(item, list) else [item]
            for index, element in enumerate(items):
                path = f"{prefix}{field.name}" + (f"[{index}]" if field.is_repeated else "")
                violations += _unknown_fields(field.message_type, element, path)
    return violations


def _apply_query(
    descriptor: Descriptor, document: dict[str, Any], query: Iterable[tuple[str, str]]
) -> list[FieldViolation]:
    violations = []
    for key, raw in query:
        if key in RESERVED_QUERY:
            continue
        names: list[str] = []
        current: Descriptor | None = descriptor
        field: FieldDescriptor | None = None
        for part in key.split("."):
            field = _lookup(current, part) if current is not None else None
            if field is None or _is_map(field):
                break
            names.append(field.name)
            current = None if _is_leaf(field) or field.is_repeated else field.message_type
        if field is None or _is_map(field) or not _is_leaf(field):
            violations.append(FieldViolation(key, "unknown query parameter"))
            continue
        value = _query_value(field, raw)
        if field.is_repeated:
            _append(document, names, value)
        else:
            _set(document, names, value)
    return violations


def _query_value(field: FieldDescriptor, raw: str) -> Any:
    """Query text as the JSON value json_format expects for the field."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return {"true": True, "false": False}.get(raw, raw)
    if field.type == FieldDescriptor.TYPE_ENUM and raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def _set(document: dict[str, Any], names: list[str], value: Any) -> None:
    node = document
    for name in names[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    node[names[-1]] = value


def _derive_update_mask(
    descriptor: Descriptor, document: dict[str, Any], body_type: Descriptor, body: Any
) -> None:
    mask = descriptor.fields_by_name.get(UPDATE_MASK)
    if mask is None or mask.message_type is None or not isinstance(body, dict):
        return
    if mask.message_type.full_name != "google.protobuf.FieldMask":
        return
    if UPDATE_MASK in document or mask.json_name in document:
        return
    document[UPDATE_MASK] = ",".join(_mask_paths(body_type, body, ""))


def _mask_paths(descriptor: Descriptor, body: dict[str, Any], prefix: str) -> list[str]:
    """Paths of the fields set in `body` (into nested messages, not maps), in the
    FieldMask's JSON form (lowerCamelCase: "maxLeverage" is max_leverage)."""
    paths = []
    for key, value in body.items():
        field = _lookup(descriptor, key)
        if field is None:
            continue
        path = f"{prefix}{field.json_name}"
        nested = field.message_type
        recurse = not (_is_leaf(field) or _is_map(field) or field.is_repeated)
        if nested is not None and recurse and isinstance(value, dict) and value:
            paths += _mask_paths(nested, value, f"{path}.")
        else:
            paths.append(path)
    return paths


def _set_path_value(
    descriptor: Descriptor, document: dict[str, Any], names: list[str], value: str
) -> None:
    """Sets a path variable's field, dropping the body's value for it under either name
    (the path wins, as in grpc-gateway)."""
    node, current = document, descriptor
    for index, name in enumerate(names):
        field = current.fields_by_name[name]
        if field.json_name != name:
            node.pop(field.json_name, None)
        if index == len(names) - 1:
            node[name] = value
            return
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        next_type = field.message_type
        assert next_type is not None, "bindings checked that the path names message fields"
        node, current = child, next_type


def _append(document: dict[str, Any], names: list[str], value: Any) -> None:
    node = document
    for name in names[:-1]:
        node = node.setdefault(name, {})
    existing = node.get(names[-1])
    if isinstance(existing, list):
        existing.append(value)
    else:
        node[names[-1]] = [value]
