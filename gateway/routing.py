"""Which binding an HTTP request is for: method + path against every path template.

A client repeats its paths (a ticker polled, the same order list), so the last matches
are kept: a repeated path costs one dict lookup, not a pass over its method's templates.
Only matches are kept, so a scan of unbound paths cannot crowd them out or grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import grpc

from gateway.bindings import Binding
from gateway.errors import GatewayError
from gateway.reasons import Reason
from gateway.templates import ANY, Variable

# Recent matches kept (one entry is a few hundred bytes).
MATCHES_KEPT = 512


def _specificity(binding: Binding) -> tuple[int, int, int]:
    """Verb templates first, then more literal segments, then no `**`: the most specific
    template wins where two could match."""
    segments = binding.template.segments
    literals = sum(1 for s in segments if not isinstance(s, Variable) and s not in ("*", ANY))
    greedy = any(isinstance(s, Variable) and ANY in s.pattern for s in segments)
    return (0 if binding.template.verb else 1, -literals, 1 if greedy else 0)


class Router:
    def __init__(self, bindings: Iterable[Binding]) -> None:
        self.bindings = sorted(bindings, key=_specificity)
        # Per HTTP method, so a request is matched against its method's templates only.
        self._by_method: dict[str, list[Binding]] = {}
        for binding in self.bindings:
            self._by_method.setdefault(binding.http_method, []).append(binding)
        self._recent: OrderedDict[tuple[str, str], tuple[Binding, dict[str, str]]] = OrderedDict()

    def match(self, http_method: str, raw_path: str) -> tuple[Binding, dict[str, str]]:
        """The binding and its path variables (percent-encoded); 404 or 405 otherwise."""
        key = (http_method, raw_path)
        found = self._recent.get(key)
        if found is not None:
            self._recent.move_to_end(key)
            return found[0], dict(found[1])
        for binding in self._by_method.get(http_method, ()):
            values = binding.template.match(raw_path)
            if values is not None:
                self._recent[key] = (binding, dict(values))
                if len(self._recent) > MATCHES_KEPT:
                    self._recent.popitem(last=False)
                return binding, values
        allowed = {b.http_method for b in self.bindings if b.template.match(raw_path) is not None}
        if allowed:
            raise GatewayError(
                grpc.StatusCode.UNIMPLEMENTED,
                Reason.METHOD_NOT_ALLOWED,
                f"{http_method} is not bound to {raw_path}; use {', '.join(sorted(allowed))}",
                http_status=405,
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise GatewayError(
            grpc.StatusCode.NOT_FOUND, Reason.NO_ROUTE, f"no RPC is bound to {raw_path}"
        )
