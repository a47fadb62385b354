"""Request bytes for fuzzing an RPC, built from its input descriptor (no hand list).

Three kinds, all from one seeded `random.Random`, so a run repeats exactly:
- random bytes: anything at all, as a client with a bug or an attacker might send;
- malformed protobuf: valid requests truncated or bit-flipped, and hand-made broken
  framing (bad wire types, endless varints, lengths past the end, field number 0);
- boundary values: one field (at any depth) set to an edge of its type: empty, huge,
  NaN, infinities, negative, 10^30, unicode, over-long strings, enum values the
  contract does not define, timestamps and durations outside their valid range.

The boundary cases of a request are enumerated exhaustively (`boundary_cases`); the
fuzz test samples them for `make test` and takes them all in `make fuzz`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# How deep nested messages are followed (Struct values nest without end).
MAX_DEPTH = 3
OVER_LONG = 100_000  # characters: far past any name, symbol or id a field expects
LONG_LIST = 1_000

# Text that services parse: decimals, symbols, ids, names, paths, tokens.
STRINGS = (
    "",
    " ",
    "0",
    "-1",
    "-0",
    "1e30",
    "1" + "0" * 30,  # 10^30 in plain notation
    "0." + "0" * 30 + "1",
    "9" * 40,
    "NaN",
    "Infinity",
    "-inf",
    "0x10",
    "1_000",
    "BTC/USDT",
    "paper",
    "🚀₿ 比特币",
    "\u202eTDSU/CTB",  # right-to-left override
    "BTC/USDT\x00",
    "\ud7ff\ue000\uffff",
    "../../../etc/passwd",
    "' OR 1=1 --",
    "%s%n%x",
    "a" * 1_000,
)
DOUBLES = (
    0.0,
    -0.0,
    -1.0,
    1e30,
    -1e30,
    math.nan,
    math.inf,
    -math.inf,
    5e-324,
    1.7976931348623157e308,
)
FLOATS = (0.0, -1.0, 1e30, math.nan, math.inf, -math.inf, 3.4e38)
INT32S = (0, 1, -1, 2**31 - 1, -(2**31))
INT64S = (0, 1, -1, 2**63 - 1, -(2**63), 10**15)
UINT32S = (0, 1, 2**32 - 1)
UINT64S = (0, 1, 2**64 - 1)
BYTES = (b"", b"\x00", b"\xff" * 64, "🚀,NaN,-1e30\n".encode() * 8, b"time,open\n" + b"1,2\n" * 50)

# Timestamps and durations: the edges of their valid ranges, and just past them.
TIMESTAMP_SECONDS = (
    0,
    -1,
    253_402_300_799,
    253_402_300_800,
    -62_135_596_800,
    -62_135_596_801,
    2**62,
)
DURATION_SECONDS = (0, -1, 315_576_000_000, 315_576_000_001, -315_576_000_001, 2**62)
NANOS = (0, 999_999_999, -1, 1_000_000_000, -(2**31))

_INTEGER_VALUES = {
    FieldDescriptor.TYPE_INT32: INT32S,
    FieldDescriptor.TYPE_SINT32: INT32S,
    FieldDescriptor.TYPE_SFIXED32: INT32S,
    FieldDescriptor.TYPE_INT64: INT64S,
    FieldDescriptor.TYPE_SINT64: INT64S,
    FieldDescriptor.TYPE_SFIXED64: INT64S,
    FieldDescriptor.TYPE_UINT32: UINT32S,
    FieldDescriptor.TYPE_FIXED32: UINT32S,
    FieldDescriptor.TYPE_UINT64: UINT64S,
    FieldDescriptor.TYPE_FIXED64: UINT64S,
}

# Broken framing that no protobuf encoder emits.
MALFORMED = (
    b"\x0f",  # field 1, wire type 7 (does not exist)
    b"\x00",  # field number 0
    b"\x08" + b"\xff" * 11,  # a varint longer than ten bytes
    b"\x08\xff",  # a varint cut short
    b"\x0a\xff\xff\xff\xff\x0f",  # a length far past the end
    b"\x0a\x05ab",  # a length past the end
    b"\x0b" * 200,  # start-group tags, never ended
    b"\x0a\x02\x0a\x00" * 3 + b"\x0a" * 100,
    b"\xfa\xff\xff\xff\x0f\x00",  # the largest field number, length-delimited, empty
)


@dataclass(frozen=True)
class Case:
    """One request to send: what it is (for a failure message) and its bytes."""

    label: str
    payload: bytes


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def boundary_cases(descriptor: Descriptor) -> list[Case]:
    """Every (field path, boundary value) of a request, each as the only field set."""
    cases = []
    for path, setter in _field_setters(descriptor, depth=0):
        request = message_class(descriptor)()
        setter(request)
        cases.append(Case(f"boundary {path}", request.SerializeToString()))
    return cases


def random_case(rng: random.Random, index: int) -> Case:
    """Bytes at random: mostly short, sometimes long."""
    size = rng.choice((0, 1, 2, 3, 8, 16, 64, 256, 4096))
    return Case(f"random bytes #{index} ({size} B)", rng.randbytes(size))


def malformed_cases(descriptor: Descriptor, rng: random.Random) -> list[Case]:
    """Broken framing, plus valid boundary requests truncated and bit-flipped."""
    cases = [Case(f"malformed framing #{i}", payload) for i, payload in enumerate(MALFORMED)]
    valid = [case for case in boundary_cases(descriptor) if len(case.payload) > 1]
    for case in rng.sample(valid, min(len(valid), 4)):
        cut = rng.randrange(1, len(case.payload))
        cases.append(Case(f"truncated {case.label}", case.payload[:cut]))
        flipped = bytearray(case.payload)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        cases.append(Case(f"bit-flipped {case.label}", bytes(flipped)))
    return cases


def mixed_case(descriptor: Descriptor, rng: random.Random, index: int) -> Case:
    """Several boundary values at once: a few fields, each set to one of its edges."""
    setters = list(_field_setters(descriptor, depth=0))
    request = message_class(descriptor)()
    chosen = rng.sample(setters, min(len(setters), rng.randint(2, 5)))
    for _path, setter in chosen:
        setter(request)
    labels = ", ".join(path for path, _ in chosen)
    return Case(f"mixed #{index}: {labels}", request.SerializeToString())


Setter = Callable[[Message], None]


def _field_setters(descriptor: Descriptor, depth: int) -> Iterator[tuple[str, Setter]]:
    """(path=value, setter) for every boundary value of every field, nested ones too."""
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            yield from _map_setters(field, depth)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            yield from _message_setters(field, depth)
        else:
            for value in _scalar_values(field):
                yield f"{field.name}={_show(value)}", _scalar_setter(field, value)
                if _is_repeated(field):
                    yield f"{field.name}=[{_show(value)}]*{LONG_LIST}", _list_setter(field, value)


def _message_setters(field: FieldDescriptor, depth: int) -> Iterator[tuple[str, Setter]]:
    if depth >= MAX_DEPTH:
        return
    for path, inner in _field_setters(_message_type(field), depth + 1):

        def setter(request: Message, inner: Setter = inner) -> None:
            target = getattr(request, field.name)
            inner(target.add() if _is_repeated(field) else target)

        yield f"{field.name}.{path}", setter
    yield f"{field.name}={{}}", lambda request: _touch(request, field)


def _map_setters(field: FieldDescriptor, depth: int) -> Iterator[tuple[str, Setter]]:
    key_field = _message_type(field).fields_by_name["key"]
    value_field = _message_type(field).fields_by_name["value"]
    keys = _map_keys(key_field)
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        if depth >= MAX_DEPTH:
            return
        for key in keys:
            for path, inner in _field_setters(_message_type(value_field), depth + 1):

                def setter(request: Message, key: Any = key, inner: Setter = inner) -> None:
                    inner(getattr(request, field.name)[key])

                yield f"{field.name}[{_show(key)}].{path}", setter
        return
    for key in keys:
        for value in _scalar_values(value_field):

            def put(request: Message, key: Any = key, value: Any = value) -> None:
                getattr(request, field.name)[key] = value

            yield f"{field.name}[{_show(key)}]={_show(value)}", put


def _map_keys(field: FieldDescriptor) -> tuple[Any, ...]:
    """A few keys only: each key multiplies every value of the map's value type."""
    if field.type == FieldDescriptor.TYPE_STRING:
        return ("", "fast", "BTC/USDT", "🚀", "k" * 1_000)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return (True,)
    return (0, -1, _scalar_values(field)[-1])


def _scalar_values(field: FieldDescriptor) -> tuple[Any, ...]:  # noqa: PLR0911 - one per type
    """The boundary values of a scalar field's type (well-known types by their parts)."""
    kind = field.type
    container = field.containing_type.full_name if field.containing_type else ""
    if container in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        if field.name == "nanos":
            return NANOS
        return TIMESTAMP_SECONDS if container.endswith("Timestamp") else DURATION_SECONDS
    if kind == FieldDescriptor.TYPE_STRING:
        return (*STRINGS, "x" * OVER_LONG)
    if kind == FieldDescriptor.TYPE_BYTES:
        return (*BYTES, b"\xa5" * OVER_LONG)
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return DOUBLES
    if kind == FieldDescriptor.TYPE_FLOAT:
        return FLOATS
    if kind == FieldDescriptor.TYPE_BOOL:
        return (True, False)
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        defined = tuple(value.number for value in field.enum_type.values)
        return (*defined, max(defined) + 1, 999, -1, 2**31 - 1)
    return _INTEGER_VALUES[kind]


def _scalar_setter(field: FieldDescriptor, value: Any) -> Setter:
    def setter(request: Message) -> None:
        if _is_repeated(field):
            getattr(request, field.name).append(value)
        else:
            setattr(request, field.name, value)

    return setter


def _list_setter(field: FieldDescriptor, value: Any) -> Setter:
    return lambda request: getattr(request, field.name).extend([value] * LONG_LIST)


def _touch(request: Message, field: FieldDescriptor) -> None:
    """Sets a message field to its empty message (present, every field default)."""
    target = getattr(request, field.name)
    if _is_repeated(field):
        target.add()
    else:
        target.SetInParent()


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None, field.full_name
    return field.message_type


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} chars)"
