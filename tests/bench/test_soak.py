"""What the soak counts against a stack: the failures a healthy stack never gives, the
streams cut, a crossed book and a GOAWAY in any of its logs."""

from __future__ import annotations

from pathlib import Path

from bench.soak import Load, goaway_lines


def test_only_var_refused_for_too_little_history_is_expected() -> None:
    load = Load()
    load.count("var", "FAILED_PRECONDITION", "needs 30 observations, has 5")
    load.count("orders")
    load.count("portfolio", "UNAVAILABLE", "UNAVAILABLE: Too many pings")
    load.count("var", "RESOURCE_EXHAUSTED", "MEMORY_BUDGET")

    assert load.errors() == {"portfolio UNAVAILABLE": 1, "var RESOURCE_EXHAUSTED": 1}
    assert load.examples["portfolio UNAVAILABLE"] == "UNAVAILABLE: Too many pings"


def test_a_book_with_its_best_bid_at_or_above_its_best_ask_is_crossed() -> None:
    load = Load()
    load.book("ticker", "61662.00", "61662.01")
    load.book("ticker", "", "61662.01")  # one side empty: nothing to compare
    load.book("ticker", "61820.99", "61817.40")
    load.book("order book", "61700", "61700.00")

    assert load.crossed_count == 2
    assert load.crossed[0] == "ticker: bid 61820.99 >= ask 61817.40"


def test_a_cut_stream_is_counted_with_how_it_ended() -> None:
    load = Load()
    load.cut("grpc positions", "ended")
    load.cut("grpc positions", "UNAVAILABLE: GOAWAY received")

    assert load.stream_cuts == {"grpc positions": 2}
    assert load.examples["grpc positions cut"] == "ended"


def test_goaway_lines_are_found_in_every_log_of_the_stack(tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_text(
        "serving\n"
        'E1130 chttp2_transport.cc:1435] Received a GOAWAY with error code ENHANCE_YOUR_CALM and debug data equal to "too_many_pings"\n'  # noqa: E501
    )
    (tmp_path / "supervisor").mkdir()
    (tmp_path / "supervisor" / "risk.log").write_text("UNAVAILABLE: Too many pings\n")
    (tmp_path / "exchange.log").write_text("a quiet log\n")

    found = goaway_lines(tmp_path)

    assert [line.split(":")[:2] for line in found] == [["gateway.log", "2"], ["risk.log", "1"]]
