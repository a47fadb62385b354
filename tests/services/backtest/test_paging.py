"""Page tokens: only the offsets the service issued are taken back."""

from __future__ import annotations

import pytest

from common.errors import InvalidArgument
from services.backtest.paging import next_token, page_window


def test_an_issued_token_gives_its_offset_back() -> None:
    token = next_token(offset=0, limit=100, returned=100)
    assert page_window(100, token) == (100, 100)


@pytest.mark.parametrize("token", ["abc", "-1", "²", "١٢", "9" * 19, "1" + "0" * 30])
def test_a_token_the_service_never_issued_is_a_field_violation(token: str) -> None:
    """Unicode digits pass str.isdigit, and 10^30 overflows SQLite's int64 (INTERNAL before)."""
    with pytest.raises(InvalidArgument) as raised:
        page_window(10, token)
    assert raised.value.violations[0].field == "page_token"
