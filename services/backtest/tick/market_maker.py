"""The grid market maker, as a numba function over an hftbacktest backtest.

Every `interval_ns` it re-centres a grid of post-only (GTX) limit orders on the mid:
bids at mid - half_spread - k * spacing and asks at mid + half_spread + k * spacing
(k = 0..levels-1, rounded away from the mid to the tick, never through the touch),
cancels the orders that left the grid, and posts only as many levels a side as keep the
position within max_position. Order ids are the price in ticks, so a level that stays
keeps its order and its queue position.

It records, at every step, the time, mid, position, balance and fees: the equity curve
and the fills come from these. This module imports hftbacktest and numba: workers only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hftbacktest import BUY, GTX, LIMIT
from numba import njit

RECORD_FIELDS = 5  # time, mid, position, balance, fee


# Not cached: hftbacktest objects hold ctypes pointers, which numba cannot cache.
@njit
def grid_market_maker(  # noqa: PLR0912, PLR0917 - numba takes positional arguments
    hbt: Any,
    interval_ns: int,
    half_spread_bps: float,
    grid_spacing_bps: float,
    levels: int,
    order_quantity: float,
    max_position: float,
    records: Any,
) -> int:
    """Runs to the end of the data; returns how many rows of `records` it filled."""
    asset = 0
    count = 0
    while hbt.elapse(interval_ns) == 0:
        hbt.clear_inactive_orders(asset)
        depth = hbt.depth(asset)
        tick = depth.tick_size
        best_bid = depth.best_bid
        best_ask = depth.best_ask
        position = hbt.position(asset)
        if np.isfinite(best_bid) and np.isfinite(best_ask) and best_ask > best_bid:
            mid = (best_bid + best_ask) / 2.0
            half = mid * half_spread_bps / 10_000.0
            spacing = max(np.round(mid * grid_spacing_bps / 10_000.0 / tick), 1.0)
            first_bid = min(np.floor((mid - half) / tick), np.round(best_bid / tick))
            first_ask = max(np.ceil((mid + half) / tick), np.round(best_ask / tick))
            bid_levels = 0
            ask_levels = 0
            if order_quantity > 0:
                bid_levels = min(
                    levels, int(max(max_position - position, 0.0) / order_quantity + 1e-9)
                )
                ask_levels = min(
                    levels, int(max(max_position + position, 0.0) / order_quantity + 1e-9)
                )
            orders = hbt.orders(asset)
            stale = orders.values()
            while stale.has_next():
                order = stale.get()
                ticks = np.round(order.price / tick)
                if order.side == BUY:
                    keep = (first_bid - ticks) % spacing == 0 and 0 <= (
                        first_bid - ticks
                    ) / spacing < bid_levels
                else:
                    keep = (ticks - first_ask) % spacing == 0 and 0 <= (
                        ticks - first_ask
                    ) / spacing < ask_levels
                if not keep and order.cancellable:
                    hbt.cancel(asset, order.order_id, False)
            for k in range(bid_levels):
                ticks = first_bid - k * spacing
                order_id = np.uint64(ticks)
                if order_id not in orders:
                    hbt.submit_buy_order(
                        asset, order_id, ticks * tick, order_quantity, GTX, LIMIT, False
                    )
            for k in range(ask_levels):
                ticks = first_ask + k * spacing
                order_id = np.uint64(ticks)
                if order_id not in orders:
                    hbt.submit_sell_order(
                        asset, order_id, ticks * tick, order_quantity, GTX, LIMIT, False
                    )
        else:
            mid = np.nan
        if count < records.shape[0]:
            state = hbt.state_values(asset)
            records[count, 0] = hbt.current_timestamp
            records[count, 1] = mid
            records[count, 2] = state.position
            records[count, 3] = state.balance
            records[count, 4] = state.fee
            count += 1
    return count
