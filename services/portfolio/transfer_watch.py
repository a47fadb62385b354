"""The transfer watch, a client of the exchange: deposits and withdrawals found by
comparing the venue with the ledger.

For each sandbox and live account, every `transfer_check_seconds`, GetBalances is
compared with the ledger's balances. A difference counts only when nothing else can
explain it:
- the venue's balances include exactly the executions the ledger has applied
  (GetBalances' `as_of_sequence` equals the ledger's cursor): no fill in flight;
- the venue has no order open or of unknown outcome (PENDING_NEW included): no fill
  about to land, no fee or hold moving;
- the same difference is seen on two checks in a row: a venue's balances lag its
  fills for a moment, a real transfer stays.
Then it is booked (Ledger.book_transfers): a deposit where the venue holds more, a
withdrawal where it holds less: the quote currency to cash, another asset as a
balance only (unvalued; a position in it is not adjusted, and a warning says so).
Transfers move equity but not PnL; returns and drawdown
are taken net of them (performance.py), and risk shifts its day-start equity and
equity peak by them, so a withdrawal never halts trading.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import grpc

from common.reconnect import Reconnect
from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from services.portfolio.accounts import AccountKind
from services.portfolio.ledger import Ledger

log = logging.getLogger("edgequant.portfolio.transfers")

# Orders that may still fill, or whose outcome is not known yet.
OPEN_STATUSES = (
    common_pb2.ORDER_STATUS_PENDING_NEW,
    common_pb2.ORDER_STATUS_OPEN,
    common_pb2.ORDER_STATUS_PARTIALLY_FILLED,
    common_pb2.ORDER_STATUS_PENDING_CANCEL,
)


class TransferWatch:
    def __init__(
        self, channel: grpc.aio.Channel, ledger: Ledger, *, every_seconds: float, timeout: float
    ) -> None:
        self._stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        self._ledger = ledger
        self._every = every_seconds
        self._timeout = timeout
        # The difference seen at each account's last check, waiting for confirmation.
        self._pending: dict[str, dict[str, Decimal]] = {}

    async def run(self) -> None:
        """A check every `every_seconds`; a pass that fails (the ledger's database) is
        tried again after a backoff rather than ending the checks."""
        reconnect = Reconnect("exchange balances", retried=(Exception,))

        async def check_periodically() -> None:
            while True:
                await asyncio.sleep(self._every)
                await self.check_all()
                reconnect.connected()

        await reconnect.forever(check_periodically)

    async def check_all(self) -> None:
        for account_id, book in list(self._ledger.books.items()):
            if book.account.kind is AccountKind.PAPER:
                continue  # paper's balances are its executions: nothing else moves them
            try:
                await self.check(account_id)
            except grpc.aio.AioRpcError as error:
                self._pending.pop(account_id, None)
                # Debug: an imported account's venue is not the exchange's, every pass.
                log.debug(
                    "transfer check skipped: the venue did not answer",
                    extra={"account": account_id, "code": error.code().name},
                )

    async def check(self, account_id: str) -> None:
        """One check of one account (see the module's docstring)."""
        book = self._ledger.books[account_id]
        venue = book.account.venue
        response = await self._stub.GetBalances(
            exchange_pb2.GetBalancesRequest(venue=venue), timeout=self._timeout
        )
        # Read together, with no await between: the ledger as of one cursor.
        cursor = self._ledger.cursor or 0
        ledger_balances = dict(book.balances)
        if response.as_of_sequence != cursor:
            self._pending.pop(account_id, None)
            return
        orders = await self._stub.ListOrders(
            exchange_pb2.ListOrdersRequest(venue=venue, statuses=OPEN_STATUSES, page_size=1),
            timeout=self._timeout,
        )
        if orders.orders or (self._ledger.cursor or 0) != cursor:
            self._pending.pop(account_id, None)
            return
        difference = _difference(
            {b.asset: Decimal(b.total or "0") for b in response.balances}, ledger_balances
        )
        if not difference:
            self._pending.pop(account_id, None)
            return
        if self._pending.get(account_id) != difference:
            self._pending[account_id] = difference  # confirmed, or not, at the next check
            return
        del self._pending[account_id]
        booked = await self._ledger.book_transfers(account_id, difference, cursor)
        quote = book.account.quote_currency
        for transfer in booked:
            held = self._ledger.books[account_id].positions.get(f"{transfer.asset}/{quote}")
            if transfer.value is None and held is not None and held.quantity:
                # Booked as a balance only: the position (and so equity) still counts
                # what the venue no longer holds, or misses what it received.
                log.warning(
                    "transfer of an asset held as a position: the position is not adjusted",
                    extra={"account": account_id, "asset": transfer.asset},
                )
            log.warning(
                "transfer booked: %s",
                "deposit" if transfer.amount > 0 else "withdrawal",
                extra={
                    "account": account_id,
                    "asset": transfer.asset,
                    "amount": str(transfer.amount),
                },
            )


def _difference(venue: dict[str, Decimal], ledger: dict[str, Decimal]) -> dict[str, Decimal]:
    """What the venue holds more (> 0) or less (< 0) than the ledger, per asset."""
    assets = set(venue) | set(ledger)
    changes = {a: venue.get(a, Decimal(0)) - ledger.get(a, Decimal(0)) for a in assets}
    return {asset: change for asset, change in changes.items() if change}
