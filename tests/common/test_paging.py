import pytest

from common.errors import InvalidArgument
from common.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    offset_token,
    page_token,
    read_offset_page,
    read_page,
)
from common.validation import Violations


def _read(
    size: int, token: str, kind: str = "orders", key_length: int = 2
) -> tuple[Page, Violations]:
    problems = Violations()
    page = read_page(size, token, kind=kind, problems=problems, key_length=key_length)
    return page, problems


def test_a_token_round_trips_the_key_of_the_last_item() -> None:
    token = page_token("orders", "2026-11-30T01:02:03+00:00", "ord-7")
    page, problems = _read(50, token)
    assert not problems
    assert page.size == 50
    assert page.after == ("2026-11-30T01:02:03+00:00", "ord-7")


def test_no_token_starts_at_the_beginning_with_the_default_size() -> None:
    page, problems = _read(0, "")
    assert not problems
    assert (page.size, page.after) == (DEFAULT_PAGE_SIZE, None)


def test_a_size_over_the_maximum_is_clamped() -> None:
    page, _ = _read(MAX_PAGE_SIZE * 10, "")
    assert page.size == MAX_PAGE_SIZE


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        page_token("fills", "2026-11-30T01:02:03+00:00", "f-1"),  # another listing's
        page_token("orders", "only-one-part"),  # wrong shape
        "x" * 600,
        "²",
    ],
)
def test_a_token_this_listing_did_not_give_out_is_refused(token: str) -> None:
    _page, problems = _read(10, token)
    with pytest.raises(InvalidArgument) as caught:
        problems.raise_if_any()
    assert [violation.field for violation in caught.value.violations] == ["page_token"]


def test_a_negative_size_is_refused() -> None:
    _page, problems = _read(-1, "")
    with pytest.raises(InvalidArgument) as caught:
        problems.raise_if_any()
    assert [violation.field for violation in caught.value.violations] == ["page_size"]


def test_offset_pages_walk_a_listing_to_its_end() -> None:
    items = list(range(25))
    seen: list[int] = []
    token = ""
    while True:
        problems = Violations()
        page = read_offset_page(10, token, kind="runs", problems=problems)
        problems.raise_if_any()
        chunk = items[page.offset : page.offset + page.size]
        seen.extend(chunk)
        token = offset_token("runs", page, len(chunk), total=len(items))
        if not token:
            break
    assert seen == items


def test_an_offset_token_must_hold_digits() -> None:
    problems = Violations()
    read_offset_page(10, page_token("runs", "-5"), kind="runs", problems=problems)
    assert problems
