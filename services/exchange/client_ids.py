"""Client order id rules per venue: what each exchange accepts, checked before sending.

Venues disagree: Binance takes 36 characters with `-_.:/`, OKX 1-32 letters and digits
only, Kraken a UUID or 18 characters of free text. Generated ids are 32 hexadecimal
digits (a dash-less UUID), valid on every venue listed here; an id a client gives is
checked against its venue's rule and refused as INVALID_ARGUMENT naming that rule.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientIdRule:
    pattern: re.Pattern[str]
    description: str

    def accepts(self, client_order_id: str) -> bool:
        return bool(self.pattern.fullmatch(client_order_id))


def _rule(pattern: str, description: str) -> ClientIdRule:
    return ClientIdRule(re.compile(pattern), description)


# The paper venue's and any exchange not listed: safe characters, Binance's length.
DEFAULT = _rule(r"[A-Za-z0-9._:-]{1,36}", "1-36 characters of A-Z a-z 0-9 . _ : -")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RULES: dict[str, ClientIdRule] = {
    # newClientOrderId: ^[\.A-Z\:/a-z0-9_-]{1,36}$
    "binance": _rule(r"[.A-Z:/a-z0-9_-]{1,36}", "1-36 characters of A-Z a-z 0-9 . : / _ -"),
    # clOrdId: 1-32 letters and digits, case-sensitive; no hyphens, no underscores.
    "okx": _rule(r"[A-Za-z0-9]{1,32}", "1-32 letters and digits (okx allows no - or _)"),
    # cl_ord_id: a UUID, with or without hyphens, or up to 18 characters of free text.
    "kraken": _rule(
        rf"{_UUID}|[0-9a-fA-F]{{32}}|[A-Za-z0-9_-]{{1,18}}",
        "a UUID, 32 hex digits, or 1-18 characters of A-Z a-z 0-9 _ -",
    ),
    # orderLinkId: up to 36 letters, digits, - and _.
    "bybit": _rule(r"[A-Za-z0-9_-]{1,36}", "1-36 characters of A-Z a-z 0-9 _ -"),
    # clientOid: up to 40 letters, digits, - and _.
    "kucoin": _rule(r"[A-Za-z0-9_-]{1,40}", "1-40 characters of A-Z a-z 0-9 _ -"),
}


def rule_for(exchange_id: str) -> ClientIdRule:
    return RULES.get(exchange_id, DEFAULT)


def new_client_order_id() -> str:
    """32 hex digits: valid under every rule above (Kraken takes it as a short UUID)."""
    return uuid.uuid4().hex
