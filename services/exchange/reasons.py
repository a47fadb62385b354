"""Stable reasons (google.rpc.ErrorInfo.reason) the exchange service gives.

Clients branch on these, so a value never changes once released. Each member says when
it is given and what the caller should do. STREAM_OVERFLOW is common.reasons'.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The venue name is not configured: see ListVenues.
    UNKNOWN_VENUE = "UNKNOWN_VENUE"
    # The venue lists no such market: see ListMarkets.
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    # A market-data-only venue (`trading = false`): trade on another venue.
    VENUE_READ_ONLY = "VENUE_READ_ONLY"
    # Swaps, futures and options are not traded yet: spot markets only.
    DERIVATIVES_NOT_SUPPORTED = "DERIVATIVES_NOT_SUPPORTED"
    # The exchange restarted before the order reached the venue: it was not placed;
    # submit again with a new client_order_id.
    EXCHANGE_RESTARTED = "EXCHANGE_RESTARTED"
    # The order is no longer open (filled, cancelled, rejected): nothing to cancel.
    ORDER_NOT_OPEN = "ORDER_NOT_OPEN"
    # No order with that id (or client order id on that venue).
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    # The client_order_id names an order with other parameters: use a new id.
    CLIENT_ORDER_ID_REUSED = "CLIENT_ORDER_ID_REUSED"
    # A stored rejection without a reason (from before reasons were stored).
    REJECTED = "REJECTED"
    # A post-only order would have taken liquidity: it was not placed.
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE"
    # A reduce-only order would have increased the position.
    REDUCE_ONLY_WOULD_INCREASE = "REDUCE_ONLY_WOULD_INCREASE"
    # The account cannot pay for the order: deposit, or order less.
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    # The paper-live venue's public source does not list that market.
    PAPER_SOURCE_NO_MARKET = "PAPER_SOURCE_NO_MARKET"
    # The paper-live venue's public source does not answer: retry later.
    PAPER_SOURCE_UNAVAILABLE = "PAPER_SOURCE_UNAVAILABLE"
    # The venue's answer to a create is not certain: the order stays PENDING_NEW and is
    # reconciled by client_order_id; look it up before submitting again.
    VENUE_OUTCOME_UNKNOWN = "VENUE_OUTCOME_UNKNOWN"
    # The risk service did not answer in time (or failed): the order was rejected
    # (fail closed); submit again with a new client_order_id once risk answers.
    RISK_UNAVAILABLE = "RISK_UNAVAILABLE"
    # Risk denied the order without naming a reason of its own.
    RISK_DENIED = "RISK_DENIED"
    # The ccxt venue refused the order's terms (InvalidOrder).
    VENUE_INVALID_ORDER = "VENUE_INVALID_ORDER"
    # The ccxt venue refused the request (BadRequest).
    VENUE_BAD_REQUEST = "VENUE_BAD_REQUEST"
    # The API key lacks a permission the call needs: check its rights at the venue.
    VENUE_PERMISSION_DENIED = "VENUE_PERMISSION_DENIED"
    # The venue refused the API key (AuthenticationError): check the configured keys.
    VENUE_AUTHENTICATION = "VENUE_AUTHENTICATION"
    # The venue's rate limit was hit: retry later.
    VENUE_RATE_LIMITED = "VENUE_RATE_LIMITED"
    # The venue's DDoS protection refused the call: retry later, less often.
    VENUE_DDOS_PROTECTION = "VENUE_DDOS_PROTECTION"
    # The venue did not answer in time: retry (a create: look the order up first).
    VENUE_TIMEOUT = "VENUE_TIMEOUT"
    # The venue is down or in maintenance: retry later.
    VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"
    # The venue could not be reached: retry later.
    VENUE_NETWORK_ERROR = "VENUE_NETWORK_ERROR"
    # The venue (through ccxt) does not support the call.
    VENUE_NOT_SUPPORTED = "VENUE_NOT_SUPPORTED"
    # The venue answered something ccxt could not read: retry later.
    VENUE_BAD_RESPONSE = "VENUE_BAD_RESPONSE"
    # The venue refused the call for a reason ccxt does not classify.
    VENUE_REJECTED = "VENUE_REJECTED"
    # Any other ccxt failure.
    VENUE_ERROR = "VENUE_ERROR"
