"""The strategy service's stable ErrorInfo reasons (see common/reasons.py)."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # No runner has that id: list them with ListRunners.
    RUNNER_NOT_FOUND = "RUNNER_NOT_FOUND"
    # Another runner trades that venue account and symbol: delete it or pick another symbol.
    RUNNER_SYMBOL_TAKEN = "RUNNER_SYMBOL_TAKEN"
    # The capital asked for exceeds the free quote balance not reserved by other runners.
    CAPITAL_UNAVAILABLE = "CAPITAL_UNAVAILABLE"
    # A live venue needs `[strategy.runners] allow_live = true` and confirm_live = its name.
    LIVE_NOT_CONFIRMED = "LIVE_NOT_CONFIRMED"
    # The runner is running (stop it first) or not running, as the RPC needs.
    RUNNER_STATE_CONFLICT = "RUNNER_STATE_CONFLICT"
    # DeleteRunner on a runner that still holds a position: Flatten it first.
    RUNNER_HAS_POSITION = "RUNNER_HAS_POSITION"
    # The exchange holds too few candles for the strategy's warm-up.
    WARMUP_INSUFFICIENT_HISTORY = "WARMUP_INSUFFICIENT_HISTORY"
    # The strategy's output over the warm-up history depends on where the history starts.
    WARMUP_UNSTABLE = "WARMUP_UNSTABLE"
    # The exchange does not answer: retry later.
    EXCHANGE_UNAVAILABLE = "EXCHANGE_UNAVAILABLE"
    # The backtest result named could not be read.
    BACKTEST_RESULT_UNAVAILABLE = "BACKTEST_RESULT_UNAVAILABLE"
    # Too many runners exist (`[strategy.runners] max_runners`).
    TOO_MANY_RUNNERS = "TOO_MANY_RUNNERS"


class ExchangeReason(StrEnum):
    """The exchange's ErrorInfo reasons this service recognises in its answers (the
    exchange's registry is its own: services never import each other, so the values are
    written out here, and they never change once released)."""

    # SubmitOrder: the client_order_id names an order with other parameters (the same
    # parameters answer the original order instead).
    CLIENT_ORDER_ID_REUSED = "CLIENT_ORDER_ID_REUSED"
    # No order with that id (or client order id on that venue): GetOrder's answer for an
    # order the exchange never saw, so a lost submission may be sent again.
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
