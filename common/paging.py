"""Page tokens and sizes: the one paging format of every List RPC.

A page token is opaque to clients: base64url of a JSON array whose first item names
what is paged (so a ListOrders token is refused by ListFills) and whose other items
are the key of the last item returned, as strings. A keyset listing passes that key
(a time and an id, say) to its query; an offset listing passes one integer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from common.validation import Violations

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Longer tokens are not ours: refused before decoding.
MAX_TOKEN_LENGTH = 512
_NOT_OURS = "is not a token this service gave out"


@dataclass(frozen=True)
class Page:
    """What a request asks for: at most `size` items after `after` (None: from the start)."""

    size: int
    after: tuple[str, ...] | None = None

    @property
    def offset(self) -> int:
        """The start of an offset listing (a token made by `offset_token`)."""
        return int(self.after[0]) if self.after else 0


def read_page(
    page_size: int,
    page_token: str,
    *,
    kind: str,
    problems: Violations,
    key_length: int = 1,
    default_size: int = DEFAULT_PAGE_SIZE,
    max_size: int = MAX_PAGE_SIZE,
) -> Page:
    """The page a request asks for; a bad size or token is recorded in `problems`.

    `page_size` 0 means `default_size`; larger than `max_size` is clamped (AIP-158).
    """
    problems.require(page_size >= 0, "page_size", "must not be negative")
    size = min(page_size or default_size, max_size) if page_size >= 0 else default_size
    if not page_token:
        return Page(size)
    key = _decode(page_token)
    if key is None or len(key) != key_length + 1 or key[0] != kind:
        problems.add("page_token", _NOT_OURS)
        return Page(size)
    return Page(size, tuple(key[1:]))


def read_offset_page(
    page_size: int,
    page_token: str,
    *,
    kind: str,
    problems: Violations,
    default_size: int = DEFAULT_PAGE_SIZE,
    max_size: int = MAX_PAGE_SIZE,
) -> Page:
    """As `read_page`, for a token holding an offset (a non-negative int64)."""
    page = read_page(
        page_size,
        page_token,
        kind=kind,
        problems=problems,
        default_size=default_size,
        max_size=max_size,
    )
    if page.after is not None and not _is_offset(page.after[0]):
        problems.add("page_token", _NOT_OURS)
        return Page(page.size)
    return page


def page_token(kind: str, *key: str) -> str:
    """The token of the page after the item whose key is `key`."""
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def offset_token(kind: str, page: Page, returned: int, total: int | None = None) -> str:
    """The next token of an offset listing, or "" when this page is the last."""
    end = page.offset + returned
    if returned < page.size or (total is not None and end >= total):
        return ""
    return page_token(kind, str(end))


def _decode(token: str) -> list[str] | None:
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(key, list) or not all(isinstance(item, str) for item in key):
        return None
    return key


def _is_offset(text: str) -> bool:
    # ASCII digits only ("²".isdigit() is true), and an offset int64 holds.
    return text.isascii() and text.isdigit() and len(text) <= 18
