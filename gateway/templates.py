"""Path templates of `google.api.http` rules, parsed and matched.

The syntax is the one google/api/http.proto defines:

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    Verb     = ":" LITERAL ;

`{symbol}` binds one segment, `{symbol=**}` any number of them (so "BTC/USDT" fits).
Matching follows grpc-gateway: a template with a verb matches only a path whose last
segment ends with ":verb"; a template without one matches the whole path, colons
included (so "/v1/venues/x/tickers/BTC/USDT:USDT" is a ticker, not a verb).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

ONE = "*"
ANY = "**"
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")


class TemplateError(ValueError):
    """A `google.api.http` path template that does not follow the syntax."""


@dataclass(frozen=True)
class Variable:
    """A field bound to path segments: `{field.path=pattern}` (pattern `*` by default)."""

    field_path: str
    pattern: tuple[str, ...]


Segment = str | Variable


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    verb: str
    # (pattern segment, the variable it belongs to or None), one per segment: matched
    # on every request, so flattened once.
    flat: tuple[tuple[str, str | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flat: list[tuple[str, str | None]] = []
        for segment in self.segments:
            if isinstance(segment, Variable):
                flat += [(part, segment.field_path) for part in segment.pattern]
            else:
                flat.append((segment, None))
        object.__setattr__(self, "flat", tuple(flat))

    @property
    def variables(self) -> tuple[Variable, ...]:
        return tuple(s for s in self.segments if isinstance(s, Variable))

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The variables' values in `raw_path` (still percent-encoded), or None."""
        if not raw_path.startswith("/"):
            return None
        path = raw_path[1:]
        if self.verb:
            suffix = f":{self.verb}"
            if not path.endswith(suffix):
                return None
            path = path[: -len(suffix)]
        parts = path.split("/") if path else []
        values: dict[str, str] = {}
        if not _match(self.flat, parts, values):
            return None
        return values

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: `/v1/venues/{venue}/tickers/{symbol}`."""
        parts = [f"{{{s.field_path}}}" if isinstance(s, Variable) else s for s in self.segments]
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")


def _match(
    flat: tuple[tuple[str, str | None], ...], parts: list[str], values: dict[str, str]
) -> bool:
    """Matches segment by segment; `**` takes what the segments after it leave (one or
    more: an empty `{symbol=**}` would only ever be a client's mistake)."""
    for index, (pattern, variable) in enumerate(flat):
        if pattern == ANY:
            rest = len(flat) - index - 1
            taken = len(parts) - index - rest
            if taken < 1 or not _match_fixed(flat[index + 1 :], parts[len(parts) - rest :], values):
                return False
            segment = "/".join(parts[index : index + taken])
            if variable is not None:
                _bind(values, variable, segment)
            return True
        if index >= len(parts):
            return False
        part = parts[index]
        if pattern == ONE:
            if not part:
                return False
        elif unquote(part) != pattern:
            return False
        if variable is not None:
            _bind(values, variable, part)
    return len(parts) == len(flat)


def _match_fixed(
    flat: tuple[tuple[str, str | None], ...], parts: list[str], values: dict[str, str]
) -> bool:
    return len(flat) == len(parts) and _match(flat, parts, values)


def _bind(values: dict[str, str], variable: str, segment: str) -> None:
    values[variable] = f"{values[variable]}/{segment}" if variable in values else segment


def parse(text: str) -> PathTemplate:
    """Parses a template; raises TemplateError naming what is wrong."""
    if not text.startswith("/"):
        raise TemplateError(f"{text!r}: a path template starts with '/'")
    body, verb = text[1:], ""
    # The verb is after the last ':' that is outside braces.
    depth = 0
    for index, char in enumerate(body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == ":" and depth == 0:
            body, verb = body[:index], body[index + 1 :]
            if not _LITERAL.match(verb):
                raise TemplateError(f"{text!r}: bad verb {verb!r}")
            break
    segments: list[Segment] = []
    for raw in _split_segments(body, text):
        if raw.startswith("{"):
            segments.append(_variable(raw, text))
        elif raw in (ONE, ANY) or _LITERAL.match(raw):
            segments.append(raw)
        else:
            raise TemplateError(f"{text!r}: bad segment {raw!r}")
    flat_patterns = [
        part
        for segment in segments
        for part in (segment.pattern if isinstance(segment, Variable) else (segment,))
    ]
    if flat_patterns.count(ANY) > 1 or (ANY in flat_patterns and flat_patterns[-1] != ANY):
        raise TemplateError(f"{text!r}: '**' may appear once, as the last segment")
    return PathTemplate(text=text, segments=tuple(segments), verb=verb)


def _split_segments(body: str, text: str) -> list[str]:
    segments, current, depth = [], "", 0
    for char in body:
        if char == "/" and depth == 0:
            segments.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth not in (0, 1):
            raise TemplateError(f"{text!r}: unbalanced braces")
        current += char
    segments.append(current)
    if depth or any(not segment for segment in segments):
        raise TemplateError(f"{text!r}: empty segment or unbalanced braces")
    return segments


def _variable(raw: str, text: str) -> Variable:
    if not raw.endswith("}"):
        raise TemplateError(f"{text!r}: bad variable {raw!r}")
    field_path, _, pattern = raw[1:-1].partition("=")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", field_path):
        raise TemplateError(f"{text!r}: bad field path {field_path!r}")
    parts = tuple(pattern.split("/")) if pattern else (ONE,)
    if any(not (part in (ONE, ANY) or _LITERAL.match(part)) for part in parts):
        raise TemplateError(f"{text!r}: bad variable pattern {pattern!r}")
    return Variable(field_path=field_path, pattern=parts)
