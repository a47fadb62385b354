"""Page tokens: the offset of the next item, as text (opaque to clients by contract)."""

from __future__ import annotations

from common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_window(page_size: int, page_token: str) -> tuple[int, int]:
    """(offset, limit) of a page request; 0 size means the default."""
    violations = []
    if page_size < 0:
        violations.append(FieldViolation("page_size", "must not be negative"))
    offset = 0
    if page_token:
        # ASCII digits only ("²".isdigit() is true), and an offset SQLite's int64 holds.
        if not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 18):
            violations.append(FieldViolation("page_token", "is not a token this service issued"))
        else:
            offset = int(page_token)
    if violations:
        raise InvalidArgument(violations)
    return offset, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def next_token(offset: int, limit: int, returned: int, total: int | None = None) -> str:
    """The next page's token, or "" at the end."""
    end = offset + returned
    if returned < limit or (total is not None and end >= total):
        return ""
    return str(end)
