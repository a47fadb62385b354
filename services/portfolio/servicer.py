"""PortfolioService: translates each RPC to the portfolio domain and back.

One method per RPC, named as in protos/edgequant/portfolio/v1/portfolio.proto.
Requests are parsed and answers built by services.portfolio.convert; positions,
balances and average-cost PnL are the ledger's, the rest services.portfolio.reports'.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

from common.paging import page_token, read_page
from common.service import Context
from common.validation import Violations
from common.wire import timestamp
from edgequant.portfolio.v1 import portfolio_pb2, portfolio_pb2_grpc
from edgequant.portfolio.v1.portfolio_pb2 import (
    GetEquityHistoryRequest,
    GetEquityHistoryResponse,
    GetPerformanceRequest,
    GetPerformanceResponse,
    GetPnLRequest,
    GetPnLResponse,
    GetPortfolioRequest,
    GetPortfolioResponse,
    ImportFillsRequest,
    ImportFillsResponse,
    ListAccountsRequest,
    ListAccountsResponse,
    ListFillsRequest,
    ListFillsResponse,
    ListPositionsRequest,
    ListPositionsResponse,
    StreamPositionsRequest,
    StreamPositionsResponse,
)
from services.portfolio import convert
from services.portfolio.accounting import Position
from services.portfolio.ledger import AccountBook, Ledger, PositionChange
from services.portfolio.marks import MarkBook
from services.portfolio.reports import Reports
from services.portfolio.responses import ResponseCache
from services.portfolio.valuation import mark_for


class PortfolioServicer(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(self, ledger: Ledger, marks: MarkBook, reports: Reports) -> None:
        self.ledger = ledger
        self.marks = marks
        self.reports = reports
        # The last rendering of each position, reused while the ledger holds the same
        # Position object (a commit replaces it, never mutates it) and the mark is unchanged.
        self._rendered: dict[tuple[str, str], tuple[Position, Decimal, portfolio_pb2.Position]] = {}
        # Whole answers, built again only once the account or its marks changed.
        self._position_lists: ResponseCache[ListPositionsResponse] = ResponseCache(marks)
        self._portfolios: ResponseCache[portfolio_pb2.Portfolio] = ResponseCache(marks)

    async def ListAccounts(
        self, request: ListAccountsRequest, context: Context
    ) -> ListAccountsResponse:
        books = sorted(self.ledger.books.values(), key=lambda book: book.account.account_id)
        return ListAccountsResponse(accounts=[convert.account_to_proto(book) for book in books])

    async def GetPortfolio(
        self, request: GetPortfolioRequest, context: Context
    ) -> GetPortfolioResponse:
        book = self._book(request.account_id)
        kept = self._portfolios.get(
            book, book.account.account_id, lambda: convert.portfolio_to_proto(book, self.marks)
        )
        response = GetPortfolioResponse(portfolio=kept)  # a copy: the kept one is shared
        # Valued as of now: nothing the figures come from changed since they were built.
        response.portfolio.time.CopyFrom(timestamp(datetime.now(UTC)))
        return response

    async def ListPositions(
        self, request: ListPositionsRequest, context: Context
    ) -> ListPositionsResponse:
        book = self._book(request.account_id)
        violations = Violations()
        page = read_page(
            request.page_size,
            request.page_token,
            kind=convert.POSITIONS_PAGE,
            problems=violations,
        )
        violations.raise_if_any()
        after = page.after[0] if page.after else ""
        key = (book.account.account_id, request.include_closed, page.size, after)
        return self._position_lists.get(
            book, key, lambda: self._list_positions(book, request.include_closed, page.size, after)
        )

    async def ListFills(self, request: ListFillsRequest, context: Context) -> ListFillsResponse:
        book = self._book(request.account_id)
        violations = Violations()
        page = read_page(
            request.page_size,
            request.page_token,
            kind=convert.FILLS_PAGE,
            problems=violations,
            key_length=2,
        )
        violations.raise_if_any()
        fills = await self.reports.fills(
            book,
            symbol=request.symbol,
            start=convert.optional_time(request, "start_time"),
            end=convert.optional_time(request, "end_time"),
            after=convert.time_key(page),
            limit=page.size + 1,
        )
        shown = fills[: page.size]
        more = len(fills) > page.size
        return ListFillsResponse(
            fills=[convert.fill_to_proto(fill) for fill in shown],
            next_page_token=page_token(convert.FILLS_PAGE, *convert.fill_key(shown[-1]))
            if more
            else "",
        )

    async def ListTransfers(
        self, request: portfolio_pb2.ListTransfersRequest, context: Context
    ) -> portfolio_pb2.ListTransfersResponse:
        book = self._book(request.account_id)
        violations = Violations()
        page = read_page(
            request.page_size,
            request.page_token,
            kind=convert.TRANSFERS_PAGE,
            problems=violations,
            key_length=2,
        )
        violations.raise_if_any()
        transfers = await self.reports.transfers(
            book, after=convert.time_key(page), limit=page.size + 1
        )
        shown = transfers[: page.size]
        more = len(transfers) > page.size
        return portfolio_pb2.ListTransfersResponse(
            transfers=[convert.transfer_to_proto(transfer) for transfer in shown],
            next_page_token=page_token(convert.TRANSFERS_PAGE, *convert.transfer_key(shown[-1]))
            if more
            else "",
        )

    async def GetPnL(self, request: GetPnLRequest, context: Context) -> GetPnLResponse:
        book = self._book(request.account_id)
        method = convert.cost_method(request.method)
        report = await self.reports.pnl(book, method, request.symbol)
        return convert.pnl_report_to_proto(report)

    async def GetEquityHistory(
        self, request: GetEquityHistoryRequest, context: Context
    ) -> GetEquityHistoryResponse:
        book = self._book(request.account_id)
        points = await self.reports.equity_history(
            book,
            convert.optional_time(request, "start_time"),
            convert.optional_time(request, "end_time"),
            convert.interval(request),
        )
        return GetEquityHistoryResponse(
            points=[convert.equity_point_to_proto(point) for point in points]
        )

    async def GetPerformance(
        self, request: GetPerformanceRequest, context: Context
    ) -> GetPerformanceResponse:
        book = self._book(request.account_id)
        figures = await self.reports.performance(
            book,
            convert.optional_time(request, "start_time"),
            convert.optional_time(request, "end_time"),
        )
        return GetPerformanceResponse(performance=convert.performance_to_proto(figures))

    async def StreamPositions(
        self, request: StreamPositionsRequest, context: Context
    ) -> AsyncIterator[StreamPositionsResponse]:
        account_id = convert.required_account(request.account_id)

        def ours(change: PositionChange) -> bool:
            return change.account_id == account_id

        async with self.ledger.position_changes.subscribed(ours) as changes:
            # Headers once subscribed: a client that awaits them and then reads
            # ListPositions misses no change in between.
            await context.send_initial_metadata(())
            async for change in changes:
                book = self.ledger.book(account_id)
                if book is not None:
                    yield StreamPositionsResponse(position=self._position(book, change.position))

    async def ImportFills(
        self, request: ImportFillsRequest, context: Context
    ) -> ImportFillsResponse:
        account_id = convert.required_account(request.account_id)
        file_format = convert.fills_format(request.format)
        applied = await self.reports.import_fills(account_id, file_format, request.content)
        return ImportFillsResponse(
            imported_count=applied.applied, duplicate_count=applied.duplicates
        )

    # -- translation -----------------------------------------------------------------

    def _book(self, account_id: str) -> AccountBook:
        return self.reports.book(convert.required_account(account_id))

    def _list_positions(
        self, book: AccountBook, include_closed: bool, page_size: int, after: str
    ) -> ListPositionsResponse:
        symbols = sorted(
            symbol
            for symbol, position in book.positions.items()
            if (include_closed or position.quantity) and symbol > after
        )
        shown = symbols[:page_size]
        more = len(symbols) > page_size
        return ListPositionsResponse(
            positions=[self._position(book, book.positions[symbol]) for symbol in shown],
            next_page_token=page_token(convert.POSITIONS_PAGE, shown[-1]) if more else "",
        )

    def _position(self, book: AccountBook, position: Position) -> portfolio_pb2.Position:
        key = (book.account.account_id, position.symbol)
        mark = mark_for(book, position.symbol, self.marks)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] is position and cached[1] == mark:
            return cached[2]
        message = convert.position_to_proto(book, position, self.marks)
        self._rendered[key] = (position, mark, message)
        return message
