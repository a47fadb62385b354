"""OpenAPI 3 of the gateway, generated from the same bindings that route requests.

Every binding is an operation: its path parameters (the template's variables), its
query parameters (the request fields the path and body leave, nested ones dotted,
repeated ones exploded), its request body and response in the proto3 JSON mapping,
the error schema (google.rpc.Status) as the `default` response, and the scope it
needs (`x-required-scope`, and in the description). Message schemas are emitted once
each under components.schemas, named by their full proto name.

Descriptions are the protos' comments: an operation's summary is the first sentence
of its RPC's comment and its description the whole comment, a schema's description
its message's and a property's its field's. The generated `_pb2.py` files carry no
comments, so they come from `edgequant/descriptors.binpb`, the FileDescriptorSet with
source info that `make protos` writes beside them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway import whoami
from gateway.auth import required_scope
from gateway.bindings import Binding, field_at
from gateway.streaming import NDJSON, SSE

STATUS = "google.rpc.Status"
_INT32 = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_FIXED32,
}
_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_SFIXED64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_FIXED64,
}
_FLOAT = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_NUMBER = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]
}
_SCALARS: dict[int, dict[str, Any]] = {
    **{kind: {"type": "integer", "format": "int32"} for kind in _INT32},
    # int64 is a string in the JSON mapping (JavaScript numbers lose precision past 2^53).
    **{kind: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"} for kind in _INT64},
    **{kind: _NUMBER for kind in _FLOAT},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types have their own JSON form (the proto3 JSON mapping).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "int64"},
    "google.protobuf.DoubleValue": _NUMBER,
    "google.protobuf.FloatValue": _NUMBER,
}
_STATUS_SCHEMA = {
    "type": "object",
    "description": "google.rpc.Status: the gRPC code, a message, and typed details "
    "(google.rpc.ErrorInfo with a stable reason, google.rpc.BadRequest field violations).",
    "properties": {
        "code": {"type": "integer", "format": "int32"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "properties": {"@type": {"type": "string"}}},
        },
    },
}


def proto_comments() -> dict[str, str]:
    """The comment of every service, RPC, message, field, enum and enum value of the
    contract, by full name ("edgequant.exchange.v1.Order.price"); {} without the file."""
    try:
        data = resources.files("edgequant").joinpath("descriptors.binpb").read_bytes()
    except OSError:
        return {}
    comments: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        names = _names_by_path(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = _clean(location.leading_comments or location.trailing_comments)
            if name and text:
                comments[name] = text
    return comments


# Field numbers in descriptor.proto: what a SourceCodeInfo path steps through.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


def _names_by_path(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    names: dict[tuple[int, ...], str] = {}

    def enum(path: tuple[int, ...], scope: str, proto: descriptor_pb2.EnumDescriptorProto) -> None:
        names[path] = f"{scope}.{proto.name}"
        for index, value in enumerate(proto.value):
            # Enum values are scoped by the enum's parent, as in C++.
            names[(*path, _ENUM_VALUE, index)] = f"{scope}.{proto.name}.{value.name}"

    def message(path: tuple[int, ...], scope: str, proto: descriptor_pb2.DescriptorProto) -> None:
        name = f"{scope}.{proto.name}"
        names[path] = name
        for index, field in enumerate(proto.field):
            names[(*path, _MESSAGE_FIELD, index)] = f"{name}.{field.name}"
        for index, nested in enumerate(proto.nested_type):
            message((*path, _MESSAGE_NESTED, index), name, nested)
        for index, nested_enum in enumerate(proto.enum_type):
            enum((*path, _MESSAGE_ENUM, index), name, nested_enum)

    for index, proto in enumerate(file.message_type):
        message((_FILE_MESSAGE, index), file.package, proto)
    for index, enum_proto in enumerate(file.enum_type):
        enum((_FILE_ENUM, index), file.package, enum_proto)
    for index, service in enumerate(file.service):
        service_name = f"{file.package}.{service.name}"
        names[(_FILE_SERVICE, index)] = service_name
        for number, method in enumerate(service.method):
            names[(_FILE_SERVICE, index, _SERVICE_METHOD, number)] = f"{service_name}.{method.name}"
    return names


def _clean(comment: str) -> str:
    """A comment as prose: lines unindented, wrapped lines joined, paragraphs kept."""
    paragraphs = re.split(r"\n\s*\n", comment.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _summary(comment: str) -> str:
    """The first sentence of a comment."""
    first = re.split(r"(?<=\.)\s", comment.split("\n\n", maxsplit=1)[0], maxsplit=1)[0]
    return first.rstrip(".")


class _Schemas:
    """components.schemas, filled as messages are referenced."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.schemas: dict[str, Any] = {STATUS: _STATUS_SCHEMA}
        self.comments = comments

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursive messages refer to it
            self.schemas[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def ref_status(self) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{STATUS}"}

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}
        if comment := self.comments.get(descriptor.full_name):
            schema["description"] = comment
        schema["properties"] = {
            field.json_name: self.described(field) for field in descriptor.fields
        }
        schema["additionalProperties"] = False
        return schema

    def described(self, field: FieldDescriptor) -> dict[str, Any]:
        """A field's schema with its comment; a $ref gets it through allOf (OpenAPI 3.0
        ignores a $ref's siblings)."""
        schema = self.field(field)
        comment = self.comments.get(field.full_name)
        if not comment:
            return schema
        if "$ref" in schema:
            return {"allOf": [schema], "description": comment}
        return {**schema, "description": comment}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value = self.single(message_type.fields_by_name["value"])
            return {"type": "object", "additionalProperties": value}
        single = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        return single

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
        return dict(_SCALARS.get(field.type, {"type": "string"}))


def document(
    bindings: Sequence[Binding],
    title: str,
    version: str,
    comments: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI document; `comments` by full name (default: `proto_comments()`)."""
    schemas = _Schemas(proto_comments() if comments is None else comments)
    paths: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for binding in bindings:
        base = f"{binding.rpc.method.containing_service.name}_{binding.rpc.method.name}"
        seen[base] = seen.get(base, 0) + 1
        operation_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
        operation = _operation(binding, operation_id, schemas)
        paths.setdefault(binding.template.openapi_path(), {})[binding.http_method.lower()] = (
            operation
        )
    paths["/healthz"] = {"get": _healthz()}
    paths[whoami.PATH] = {"get": whoami.operation()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": version,
            "description": "HTTP/JSON for EdgeQuant's gRPC services, from the protos' "
            "google.api.http annotations. Errors are google.rpc.Status.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "accessToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "access_token",
                    "description": "For EventSource, which cannot send an Authorization header.",
                },
            },
        },
        "security": [{"bearer": []}, {"accessToken": []}],
    }


def _operation(binding: Binding, operation_id: str, schemas: _Schemas) -> dict[str, Any]:
    rpc = binding.rpc
    scope = required_scope(binding)
    full_name = f"{rpc.method.containing_service.full_name}.{rpc.method.name}"
    comment = schemas.comments.get(full_name, "")
    notes = f"`{full_name}`. Needs a token with the `{scope}` scope." + (
        " Server-streaming: Server-Sent Events, or NDJSON on request."
        if rpc.server_streaming
        else ""
    )
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [rpc.method.containing_service.name],
        "summary": _summary(comment) if comment else full_name,
        "description": f"{comment}\n\n{notes}" if comment else notes,
        "x-required-scope": scope,
        "parameters": _path_parameters(binding, schemas) + _query_parameters(binding, schemas),
        "responses": {
            "200": _success(binding, schemas),
            "default": {
                "description": "An error: google.rpc.Status, HTTP status by the canonical table.",
                "content": {"application/json": {"schema": schemas.ref_status()}},
            },
        },
    }
    if binding.body:
        body_descriptor = (
            rpc.method.input_type
            if binding.body == "*"
            else _field(rpc.method.input_type, binding.body).message_type
        )
        assert body_descriptor is not None, "a named body is a message field"
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schemas.ref(body_descriptor)}},
        }
    return operation


def _success(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    rpc = binding.rpc
    output: Descriptor = rpc.method.output_type
    if binding.response_body:
        field = output.fields_by_name[binding.response_body]
        schema = schemas.field(field)
    else:
        schema = schemas.ref(output)
    if not rpc.server_streaming:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}
    line = {
        "type": "object",
        "properties": {"result": schema, "error": schemas.ref_status()},
        "additionalProperties": False,
    }
    return {
        "description": "A stream: SSE `data:` events of the message (an `error` event "
        "carries a google.rpc.Status), or NDJSON lines of {result} / {error}.",
        "content": {SSE: {"schema": {"type": "string"}}, NDJSON: {"schema": line}},
    }


def _path_parameters(binding: Binding, schemas: _Schemas) -> list[dict[str, Any]]:
    parameters = []
    for variable in binding.template.variables:
        field = _field(binding.rpc.method.input_type, variable.field_path)
        schema = schemas.single(field)
        if schema.get("type") == "string" and "enum" not in schema:
            schema["minLength"] = 1
        greedy = "**" in variable.pattern
        notes = [schemas.comments.get(field.full_name, "")]
        if greedy:
            notes.append("May hold '/' (BTC/USDT), as is or as %2F.")
        parameters.append(
            {
                "name": variable.field_path,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": " ".join(note for note in notes if note),
            }
        )
    return parameters


def _query_parameters(binding: Binding, schemas: _Schemas) -> list[dict[str, Any]]:
    if not binding.has_query:
        return []
    taken = {v.field_path for v in binding.template.variables}
    if binding.body:
        taken.add(binding.body)
    parameters: list[dict[str, Any]] = []
    _collect_query(
        binding.rpc.method.input_type,
        proto_prefix="",
        json_prefix="",
        taken=taken,
        schemas=schemas,
        parameters=parameters,
        depth=0,
    )
    return parameters


def _collect_query(
    descriptor: Descriptor,
    *,
    proto_prefix: str,
    json_prefix: str,
    taken: set[str],
    schemas: _Schemas,
    parameters: list[dict[str, Any]],
    depth: int,
) -> None:
    for field in descriptor.fields:
        proto_path = proto_prefix + field.name
        if proto_path in taken:
            continue
        name = json_prefix + field.json_name
        message_type = field.message_type
        is_leaf = message_type is None or message_type.full_name in _WELL_KNOWN
        if message_type is not None and message_type.GetOptions().map_entry:
            continue  # maps cannot be set from a query string
        if is_leaf:
            schema = schemas.field(field)
            parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
            if comment := schemas.comments.get(field.full_name):
                parameter["description"] = comment
            if field.is_repeated:
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
        elif message_type is not None and not field.is_repeated and depth < 3:
            _collect_query(
                message_type,
                proto_prefix=f"{proto_path}.",
                json_prefix=f"{name}.",
                taken=taken,
                schemas=schemas,
                parameters=parameters,
                depth=depth + 1,
            )


def _field(descriptor: Descriptor, path: str) -> FieldDescriptor:
    field = field_at(descriptor, path)
    assert field is not None, f"bindings checked {path!r}"
    return field


def _healthz() -> dict[str, Any]:
    return {
        "operationId": "healthz",
        "summary": "grpc.health.v1 of every service",
        "security": [],
        "responses": {
            "200": {"description": "Every service is SERVING", "content": _health_content()},
            "503": {"description": "A service is not SERVING", "content": _health_content()},
        },
    }


def _health_content() -> dict[str, Any]:
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "services": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        }
    }
