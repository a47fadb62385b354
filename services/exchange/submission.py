"""Validation of SubmitOrder: every bad field reported at once, before anything is stored
or sent. What passes becomes an `OrderIntent` in the market's own terms."""

from __future__ import annotations

from decimal import Decimal

from common.errors import Unimplemented
from common.validation import Violations
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1.exchange_pb2 import SubmitOrderRequest
from services.exchange import client_ids
from services.exchange.markets import Market
from services.exchange.orders import OrderIntent, OrderType, Side, TimeInForce
from services.exchange.reasons import Reason
from services.exchange.venue import require_trading
from services.exchange.venues import Venues

# Portfolio and risk are spot models (no margin, funding or liquidation).
DERIVATIVES = frozenset({"swap", "future", "option"})

_SIDES = {common_pb2.SIDE_BUY: Side.BUY, common_pb2.SIDE_SELL: Side.SELL}
_TYPES = {
    common_pb2.ORDER_TYPE_MARKET: OrderType.MARKET,
    common_pb2.ORDER_TYPE_LIMIT: OrderType.LIMIT,
}
_TIFS = {
    common_pb2.TIME_IN_FORCE_GTC: TimeInForce.GTC,
    common_pb2.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    common_pb2.TIME_IN_FORCE_FOK: TimeInForce.FOK,
}


def new_client_order_id() -> str:
    return client_ids.new_client_order_id()


async def validate_order(request: SubmitOrderRequest, venues: Venues) -> OrderIntent:
    """The order the request asks for; raises InvalidArgument naming every bad field."""
    problems = Violations()
    market = await _market(request, venues, problems)
    side = _SIDES.get(request.side)
    problems.require(side is not None, "side", "must be SIDE_BUY or SIDE_SELL")
    order_type = _TYPES.get(request.type)
    problems.require(
        order_type is not None, "type", "must be ORDER_TYPE_MARKET or ORDER_TYPE_LIMIT"
    )
    quantity = problems.decimal("quantity", request.quantity, positive=True)
    price = _price(request, order_type, problems)
    time_in_force = _time_in_force(request, order_type, problems)
    if market is not None:
        _check_steps(market, quantity, price, problems)
    client_order_id = request.client_order_id or new_client_order_id()
    venue = venues.get(request.venue)
    rule = client_ids.rule_for(venue.info.exchange_id if venue else "")
    problems.require(
        rule.accepts(client_order_id),
        "client_order_id",
        f"must be {rule.description} on {request.venue[:40] or 'this venue'}",
    )
    problems.raise_if_any()
    if market is not None and market.type in DERIVATIVES:
        raise Unimplemented(
            f"{market.symbol} is a {market.type} market: orders on derivatives are not "
            "supported (portfolio and risk model spot holdings only)",
            reason=Reason.DERIVATIVES_NOT_SUPPORTED,
        )
    assert side
    assert order_type
    assert quantity is not None
    assert time_in_force is not None
    return OrderIntent(
        venue=request.venue,
        symbol=request.symbol,
        side=side,
        type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        client_order_id=client_order_id,
    )


async def _market(
    request: SubmitOrderRequest, venues: Venues, problems: Violations
) -> Market | None:
    if not request.venue:
        problems.add("venue", "is required")
        return None
    venue = venues.get(request.venue)
    if venue is None:
        problems.add("venue", f"unknown venue {request.venue[:40]!r}; ListVenues names them")
        return None
    require_trading(venue)
    if not request.symbol:
        problems.add("symbol", "is required")
        return None
    market = await venue.market(request.symbol)
    if market is None:
        problems.add(
            "symbol", f"{request.symbol[:40]!r} is not traded on {request.venue}; see ListMarkets"
        )
    return market


def _price(
    request: SubmitOrderRequest, order_type: OrderType | None, problems: Violations
) -> Decimal | None:
    if order_type is OrderType.MARKET:
        problems.require(request.price == "", "price", "must be empty for a market order")
        return None
    return problems.decimal(
        "price", request.price, required=order_type is OrderType.LIMIT, positive=True
    )


def _time_in_force(
    request: SubmitOrderRequest, order_type: OrderType | None, problems: Violations
) -> TimeInForce | None:
    if request.time_in_force == common_pb2.TIME_IN_FORCE_UNSPECIFIED:
        chosen = TimeInForce.IOC if order_type is OrderType.MARKET else TimeInForce.GTC
    else:
        chosen = _TIFS.get(request.time_in_force)  # type: ignore[assignment]
        if chosen is None:
            problems.add("time_in_force", "must be GTC, IOC or FOK")
            return None
    if order_type is OrderType.MARKET and chosen is TimeInForce.GTC:
        problems.add("time_in_force", "a market order cannot rest: use IOC or FOK")
    if request.post_only and (order_type is not OrderType.LIMIT or chosen is not TimeInForce.GTC):
        problems.add("post_only", "only a GTC limit order can be post-only")
    return chosen


def _check_steps(
    market: Market, quantity: Decimal | None, price: Decimal | None, problems: Violations
) -> None:
    if quantity is not None:
        if not market.fits_quantity(quantity):
            problems.add(
                "quantity",
                f"has more decimals than {market.symbol}'s quantity step "
                f"{market.quantity_increment.normalize():f}",
            )
        elif market.min_quantity is not None and quantity < market.min_quantity:
            problems.add("quantity", f"is below the market's minimum {market.min_quantity:f}")
        elif market.max_quantity is not None and quantity > market.max_quantity:
            problems.add("quantity", f"is above the market's maximum {market.max_quantity:f}")
    if price is not None and not market.fits_price(price):
        problems.add(
            "price",
            f"has more decimals than {market.symbol}'s price step "
            f"{market.price_increment.normalize():f}",
        )
    if (
        quantity is not None
        and price is not None
        and market.min_notional
        and quantity * price < market.min_notional
    ):
        problems.add(
            "quantity",
            f"order value {quantity * price:f} is below the market's minimum notional "
            f"{market.min_notional:f}",
        )
