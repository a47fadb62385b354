"""The HTTP bindings of every RPC, read from the `google.api.http` annotations.

This is the gateway's only source of routes: each service descriptor's methods, each
method's `HttpRule` and its `additional_bindings`. Adding an annotated RPC to a proto
makes it reachable (and documented in /openapi.json) without gateway code.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[attr-defined]
from google.protobuf import message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

from common.config import SERVICE_NAMES
from gateway import templates
from gateway.templates import PathTemplate

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


class BindingError(ValueError):
    """An annotation the gateway cannot serve (bad template, unknown field)."""


@dataclass(frozen=True)
class Rpc:
    """One RPC with what the gateway needs to call it generically."""

    service: str  # the EdgeQuant service that serves it: "exchange"
    method: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]

    @property
    def full_name(self) -> str:
        """`edgequant.exchange.v1.ExchangeService.SubmitOrder`."""
        return str(self.method.full_name)

    @property
    def path(self) -> str:
        """The gRPC method path: `/edgequant.exchange.v1.ExchangeService/SubmitOrder`."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)


@dataclass(frozen=True)
class Binding:
    """One HTTP method + path template bound to an RPC."""

    rpc: Rpc
    http_method: str  # upper case: "GET"
    template: PathTemplate
    # "" (no body: every other field comes from the query), "*" (the whole request)
    # or the name of the request field the body fills.
    body: str
    # "" (the whole response) or the response field that is the body.
    response_body: str

    @property
    def has_query(self) -> bool:
        return self.body != "*"


def service_descriptors(
    names: Iterable[str] = SERVICE_NAMES,
) -> list[tuple[str, ServiceDescriptor]]:
    """(EdgeQuant service name, descriptor) for every service in the contract's files."""
    found = []
    for name in names:
        module: Any = importlib.import_module(f"edgequant.{name}.v1.{name}_pb2")
        found += [(name, service) for service in module.DESCRIPTOR.services_by_name.values()]
    return found


def bindings_of(services: Sequence[tuple[str, ServiceDescriptor]]) -> list[Binding]:
    """Every binding of every annotated method; raises BindingError on a bad annotation."""
    bindings = []
    for name, service in services:
        for method in service.methods:
            rule = _http_rule(method)
            if rule is None:
                continue
            rpc = Rpc(
                service=name,
                method=method,
                request_class=message_factory.GetMessageClass(method.input_type),
                response_class=message_factory.GetMessageClass(method.output_type),
            )
            for each in (rule, *rule.additional_bindings):
                bindings.append(_binding(rpc, each))
    return bindings


def _http_rule(method: MethodDescriptor) -> http_pb2.HttpRule | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    return rule


def _binding(rpc: Rpc, rule: http_pb2.HttpRule) -> Binding:
    pattern = rule.WhichOneof("pattern")
    where = f"{rpc.full_name}"
    if pattern in HTTP_METHODS:
        http_method, text = pattern.upper(), getattr(rule, pattern)
    elif pattern == "custom":
        http_method, text = rule.custom.kind.upper(), rule.custom.path
    else:
        raise BindingError(f"{where}: google.api.http has no path")
    try:
        template = templates.parse(text)
    except templates.TemplateError as error:
        raise BindingError(f"{where}: {error}") from None
    for variable in template.variables:
        _leaf_field(rpc.method.input_type, variable.field_path, where)
    if rule.body not in ("", "*"):
        _field(rpc.method.input_type, rule.body, where)
    if rule.response_body:
        _field(rpc.method.output_type, rule.response_body, where)
    return Binding(
        rpc=rpc,
        http_method=http_method,
        template=template,
        body=rule.body,
        response_body=rule.response_body,
    )


def field_at(message: Descriptor, path: str) -> FieldDescriptor | None:
    """The field at a dotted path of proto names ("limits.max_leverage"), or None."""
    field: FieldDescriptor | None = None
    current: Descriptor | None = message
    for name in path.split("."):
        if current is None or (field := current.fields_by_name.get(name)) is None:
            return None
        current = field.message_type
    return field


def _field(message: Descriptor, path: str, where: str) -> FieldDescriptor:
    field = field_at(message, path)
    if field is None:
        raise BindingError(f"{where}: no field {path!r} in the request")
    return field


def _leaf_field(message: Descriptor, path: str, where: str) -> None:
    """A path variable binds a scalar (not repeated) field."""
    field = _field(message, path, where)
    if field.message_type is not None or field.is_repeated:
        raise BindingError(f"{where}: path variable {path!r} must name a scalar field")
