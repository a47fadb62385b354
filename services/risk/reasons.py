"""The stable reasons risk gives: a denial's `Violation.reason` and an error's ErrorInfo.

Clients branch on these (the exchange stores a denial's reasons on the rejected order),
so a value never changes once released. README, "Risk service", has the table.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The account's book is not in sync (a feed is down, a position has no mark):
    # orders are denied until it is.
    RISK_STATE_STALE = "RISK_STATE_STALE"
    # The order's venue is no account risk knows (ListVenues does not list it); also
    # NOT_FOUND for an RPC naming such an account.
    RISK_UNKNOWN_ACCOUNT = "RISK_UNKNOWN_ACCOUNT"
    # Trading state HALTED (globally or for the account): every new order is denied.
    RISK_TRADING_HALTED = "RISK_TRADING_HALTED"
    # Trading state REDUCING: only orders that shrink a position pass.
    RISK_REDUCING_ONLY = "RISK_REDUCING_ONLY"
    # Not a market of the venue, or not in `allowed_symbols`.
    RISK_SYMBOL_NOT_ALLOWED = "RISK_SYMBOL_NOT_ALLOWED"
    # The quantity is not positive.
    RISK_INVALID_QUANTITY = "RISK_INVALID_QUANTITY"
    # A limit price that is not positive.
    RISK_INVALID_PRICE = "RISK_INVALID_PRICE"
    # No mark to value a market order, a stress-tested position or a VaR position.
    RISK_NO_MARK_PRICE = "RISK_NO_MARK_PRICE"
    # Price or quantity off the market's steps.
    RISK_PRECISION = "RISK_PRECISION"
    # Quantity below the market's minimum.
    RISK_MIN_QUANTITY = "RISK_MIN_QUANTITY"
    # Quantity above the market's maximum.
    RISK_MAX_QUANTITY = "RISK_MAX_QUANTITY"
    # Order value below `min_order_notional` (or the market's minimum).
    RISK_MIN_NOTIONAL = "RISK_MIN_NOTIONAL"
    # Order value reaching `max_order_notional`.
    RISK_MAX_NOTIONAL = "RISK_MAX_NOTIONAL"
    # Position plus same-side open orders plus the order over the position limit.
    RISK_MAX_POSITION = "RISK_MAX_POSITION"
    # Gross exposure with the order over `max_gross_exposure`.
    RISK_MAX_GROSS_EXPOSURE = "RISK_MAX_GROSS_EXPOSURE"
    # Gross exposure over equity above `max_leverage` (or equity not positive).
    RISK_MAX_LEVERAGE = "RISK_MAX_LEVERAGE"
    # Too many open orders.
    RISK_MAX_OPEN_ORDERS = "RISK_MAX_OPEN_ORDERS"
    # Too many approved submissions in the last second or minute: wait and retry.
    RISK_ORDER_RATE = "RISK_ORDER_RATE"
    # A limit price `max_price_deviation` or further from the mark (fat-finger guard).
    RISK_PRICE_BAND = "RISK_PRICE_BAND"
    # A reduce-only order that would open, grow or flip a position.
    RISK_REDUCE_ONLY = "RISK_REDUCE_ONLY"
    # Spot: not enough cash (buys) or holding (sells) left after open orders.
    RISK_INSUFFICIENT_BALANCE = "RISK_INSUFFICIENT_BALANCE"
    # Equity lost since 00:00 UTC reached `max_daily_loss` (trading halts itself).
    RISK_DAILY_LOSS = "RISK_DAILY_LOSS"
    # Equity below its peak by `max_drawdown` (trading halts itself).
    RISK_MAX_DRAWDOWN = "RISK_MAX_DRAWDOWN"
    # `loss_cooldown_trades` losing trades in a row: new exposure waits `loss_cooldown`.
    RISK_LOSS_COOLDOWN = "RISK_LOSS_COOLDOWN"
    # The one-day 99% VaR with the order filled reaches `max_var`, or cannot be estimated.
    RISK_MAX_VAR = "RISK_MAX_VAR"
    # ALREADY_EXISTS: an order id checked before with a different order.
    ORDER_ID_REUSED = "ORDER_ID_REUSED"
    # UNAVAILABLE: the exchange did not give the candles ComputeVaR needs; retry shortly.
    VAR_CANDLES_UNAVAILABLE = "VAR_CANDLES_UNAVAILABLE"
    # FAILED_PRECONDITION: fewer candle returns than `[risk.var] min_observations`.
    VAR_INSUFFICIENT_HISTORY = "VAR_INSUFFICIENT_HISTORY"
