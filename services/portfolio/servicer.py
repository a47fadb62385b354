"""PortfolioService: translates each RPC to the portfolio domain and back.

One method per RPC, named as in protos/edgequant/portfolio/v1/portfolio.proto.
Positions, balances and PnL (average cost) are answered from the ledger's memory;
fills, equity history, performance and FIFO PnL from the database.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from google.protobuf import duration_pb2, timestamp_pb2

from common.errors import FieldViolation, InvalidArgument, NotFound
from common.service import Context, Runtime
from common.validation import Violations
from common.wire import decimal_text
from edgequant.common.v1 import common_pb2
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
from services.portfolio.accounting import ZERO, CostMethod, Position, Side, replay
from services.portfolio.accounts import AccountKind, parse_holdings
from services.portfolio.equity import downsample, equity_points
from services.portfolio.imports import PARSERS
from services.portfolio.ledger import Book, Ledger
from services.portfolio.marks import MarkBook
from services.portfolio.performance import performance
from services.portfolio.responses import ResponseCache
from services.portfolio.settings import PortfolioSettings
from services.portfolio.storage import queries
from services.portfolio.storage.models import FillRow, TransferRow, to_micros
from services.portfolio.subscriptions import Subscription
from services.portfolio.valuation import mark_for, value_book, value_position

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# An import file costs about this many times its size in memory while parsed.
IMPORT_MEMORY_FACTOR = 20

_KINDS = {
    AccountKind.PAPER: portfolio_pb2.ACCOUNT_KIND_PAPER,
    AccountKind.SANDBOX: portfolio_pb2.ACCOUNT_KIND_SANDBOX,
    AccountKind.LIVE: portfolio_pb2.ACCOUNT_KIND_LIVE,
}
_SIDES = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
_LIQUIDITY = {"maker": common_pb2.LIQUIDITY_MAKER, "taker": common_pb2.LIQUIDITY_TAKER}
_FORMATS = {
    portfolio_pb2.FILLS_FORMAT_CSV: "csv",
    portfolio_pb2.FILLS_FORMAT_CCXT_JSON: "ccxt_json",
}


class PortfolioServicer(portfolio_pb2_grpc.PortfolioServiceServicer):
    def __init__(
        self, runtime: Runtime, ledger: Ledger, marks: MarkBook, settings: PortfolioSettings
    ) -> None:
        self.runtime = runtime
        self.ledger = ledger
        self.marks = marks
        self.settings = settings
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
        return ListAccountsResponse(
            accounts=[
                portfolio_pb2.Account(
                    account_id=book.account.account_id,
                    venue=book.account.venue,
                    kind=_KINDS[book.account.kind],
                    quote_currency=book.account.quote_currency,
                    create_time=_timestamp(book.account.create_time),
                    opening_balances=_balances(parse_holdings(book.account.opening_holdings)),
                )
                for book in books
            ]
        )

    async def GetPortfolio(
        self, request: GetPortfolioRequest, context: Context
    ) -> GetPortfolioResponse:
        book = self._book(request.account_id)
        kept = self._portfolios.get(
            book, book.account.account_id, lambda: _portfolio(book, self.marks)
        )
        response = GetPortfolioResponse(portfolio=kept)  # a copy: the kept one is shared
        # Valued as of now: nothing the figures come from changed since they were built.
        response.portfolio.time.CopyFrom(_timestamp(datetime.now(UTC)))
        return response

    async def ListPositions(
        self, request: ListPositionsRequest, context: Context
    ) -> ListPositionsResponse:
        book = self._book(request.account_id)
        page_size = _page_size(request.page_size)
        after = _decode_token(request.page_token)
        key = (book.account.account_id, request.include_closed, page_size, after)
        return self._position_lists.get(
            book, key, lambda: self._list_positions(book, request.include_closed, page_size, after)
        )

    async def ListFills(self, request: ListFillsRequest, context: Context) -> ListFillsResponse:
        book = self._book(request.account_id)
        page_size = _page_size(request.page_size)
        before = _fill_cursor(request.page_token)
        async with self.runtime.sessions() as session:
            rows = await queries.list_fills(
                session,
                book.account.account_id,
                symbol=request.symbol,
                start=_datetime(request, "start_time"),
                end=_datetime(request, "end_time"),
                before=before,
                limit=page_size + 1,
            )
        page = rows[:page_size]
        last = page[-1] if page and len(rows) > page_size else None
        return ListFillsResponse(
            fills=[_fill(row) for row in page],
            next_page_token=_encode_token(f"{last.time.isoformat()}|{last.id}") if last else "",
        )

    async def ListTransfers(
        self, request: portfolio_pb2.ListTransfersRequest, context: Context
    ) -> portfolio_pb2.ListTransfersResponse:
        book = self._book(request.account_id)
        page_size = _page_size(request.page_size)
        before = _fill_cursor(request.page_token)
        async with self.runtime.sessions() as session:
            rows = await queries.list_transfers(
                session, book.account.account_id, before=before, limit=page_size + 1
            )
        page = rows[:page_size]
        last = page[-1] if page and len(rows) > page_size else None
        return portfolio_pb2.ListTransfersResponse(
            transfers=[_transfer(row) for row in page],
            next_page_token=_encode_token(f"{last.time.isoformat()}|{last.id}") if last else "",
        )

    async def GetPnL(self, request: GetPnLRequest, context: Context) -> GetPnLResponse:
        book = self._book(request.account_id)
        positions = dict(book.positions)
        if request.method == portfolio_pb2.COST_BASIS_METHOD_FIFO:
            async with self.runtime.sessions() as session:
                trades = await queries.trades_in_ledger_order(
                    session, book.account.account_id, request.symbol
                )
            positions = replay(trades, CostMethod.FIFO, book.openings)
        if request.symbol:
            positions = {s: p for s, p in positions.items() if s == request.symbol}
        symbols = []
        total = [ZERO, ZERO, ZERO]
        for symbol, position in sorted(positions.items()):
            unrealized = value_position(book, position, self.marks).unrealized_pnl
            figures = (position.realized_pnl, unrealized, position.fees)
            total = [a + b for a, b in zip(total, figures, strict=True)]
            symbols.append(portfolio_pb2.SymbolPnL(symbol=symbol, pnl=_pnl(*figures)))
        return GetPnLResponse(
            total=_pnl(*total), symbols=symbols, quote_currency=book.account.quote_currency
        )

    async def GetEquityHistory(
        self, request: GetEquityHistoryRequest, context: Context
    ) -> GetEquityHistoryResponse:
        book = self._book(request.account_id)
        interval = None
        if request.HasField("interval"):
            violations = Violations()
            interval = violations.duration("interval", request.interval)
            violations.raise_if_any()
        if interval is not None and interval < timedelta(0):
            raise _invalid("interval", "must not be negative")
        async with self.runtime.sessions() as session:
            points = await equity_points(
                session,
                book.account.account_id,
                _datetime(request, "start_time"),
                _datetime(request, "end_time"),
            )
        if interval:
            points = downsample(points, interval)
        return GetEquityHistoryResponse(
            points=[
                portfolio_pb2.EquityPoint(
                    time=_timestamp(point.time),
                    equity=decimal_text(point.equity),
                    cash=decimal_text(point.cash),
                    net_transfers=decimal_text(point.net_transfers),
                )
                for point in points
            ]
        )

    async def GetPerformance(
        self, request: GetPerformanceRequest, context: Context
    ) -> GetPerformanceResponse:
        book = self._book(request.account_id)
        start, end = _datetime(request, "start_time"), _datetime(request, "end_time")
        async with self.runtime.sessions() as session:
            points = await equity_points(session, book.account.account_id, start, end)
            round_trips = await queries.round_trip_pnls(
                session, book.account.account_id, start, end
            )
        figures = performance(points, round_trips)
        result = portfolio_pb2.Performance(
            total_return=figures.total_return,
            max_drawdown=figures.max_drawdown,
            max_drawdown_duration=_duration(figures.max_drawdown_duration),
            sharpe_ratio=figures.sharpe_ratio,
            sortino_ratio=figures.sortino_ratio,
            win_rate=figures.win_rate,
            profit_factor=figures.profit_factor,
            closed_trades=figures.closed_trades,
        )
        if figures.start_time and figures.end_time:
            result.start_time.CopyFrom(_timestamp(figures.start_time))
            result.end_time.CopyFrom(_timestamp(figures.end_time))
        return GetPerformanceResponse(performance=result)

    async def StreamPositions(
        self, request: StreamPositionsRequest, context: Context
    ) -> AsyncIterator[StreamPositionsResponse]:
        account_id = _required(request.account_id)
        subscription: Subscription[portfolio_pb2.Position] = Subscription()

        def on_change(changed_account: str, positions: list[Position]) -> None:
            book = self.ledger.book(changed_account)
            if changed_account == account_id and book is not None:
                for position in positions:
                    subscription.offer(self._position(book, position))

        unsubscribe = self.ledger.subscribe(on_change)
        try:
            async for position in subscription.items():
                yield StreamPositionsResponse(position=position)
        finally:
            unsubscribe()

    async def ImportFills(
        self, request: ImportFillsRequest, context: Context
    ) -> ImportFillsResponse:
        account_id = _required(request.account_id)
        parse = PARSERS.get(_FORMATS.get(request.format, ""))
        if parse is None:
            raise _invalid("format", "must be FILLS_FORMAT_CSV or FILLS_FORMAT_CCXT_JSON")
        self.runtime.memory.admit("ImportFills", len(request.content) * IMPORT_MEMORY_FACTOR)
        book = self.ledger.book(account_id)
        venue = book.account.venue if book else account_id
        trades = parse(request.content, venue)
        trades.sort(key=lambda trade: trade.time)  # the ledger applies fills in time order
        applied = await self.ledger.apply(trades, account_id=account_id)
        return ImportFillsResponse(
            imported_count=applied.applied, duplicate_count=applied.duplicates
        )

    # -- translation -----------------------------------------------------------------

    def _list_positions(
        self, book: Book, include_closed: bool, page_size: int, after: str
    ) -> ListPositionsResponse:
        symbols = sorted(
            symbol
            for symbol, position in book.positions.items()
            if (include_closed or position.quantity) and symbol > after
        )
        page = symbols[:page_size]
        more = len(symbols) > page_size
        return ListPositionsResponse(
            positions=[self._position(book, book.positions[symbol]) for symbol in page],
            next_page_token=_encode_token(page[-1]) if more else "",
        )

    def _book(self, account_id: str) -> Book:
        book = self.ledger.book(_required(account_id))
        if book is None:
            raise NotFound(
                f"no account {account_id!r}: ListAccounts names them (one per venue)",
                reason="ACCOUNT_NOT_FOUND",
                metadata={"account_id": account_id},
            )
        return book

    def _position(self, book: Book, position: Position) -> portfolio_pb2.Position:
        key = (book.account.account_id, position.symbol)
        mark = mark_for(book, position.symbol, self.marks)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] is position and cached[1] == mark:
            return cached[2]
        message = self._render(book, position)
        self._rendered[key] = (position, mark, message)
        return message

    def _render(self, book: Book, position: Position) -> portfolio_pb2.Position:
        value = value_position(book, position, self.marks)
        message = portfolio_pb2.Position(
            account_id=book.account.account_id,
            symbol=position.symbol,
            quantity=decimal_text(position.quantity),
            average_entry_price=decimal_text(position.average_price),
            cost_basis=decimal_text(position.cost_basis),
            mark_price=decimal_text(value.mark),
            market_value=decimal_text(value.market_value),
            unrealized_pnl=decimal_text(value.unrealized_pnl),
            realized_pnl=decimal_text(position.realized_pnl),
        )
        if position.update_time:
            message.update_time.CopyFrom(_timestamp(position.update_time))
        return message


def _portfolio(book: Book, marks: MarkBook) -> portfolio_pb2.Portfolio:
    """The account marked to market; without its `time`, which is the caller's."""
    value = value_book(book, marks)
    return portfolio_pb2.Portfolio(
        account_id=book.account.account_id,
        quote_currency=book.account.quote_currency,
        equity=decimal_text(value.equity),
        cash=decimal_text(value.cash),
        positions_value=decimal_text(value.positions_value),
        unrealized_pnl=decimal_text(value.unrealized_pnl),
        realized_pnl=decimal_text(value.realized_pnl),
        fees=decimal_text(value.fees),
        # The ledger knows totals only; what open orders hold is the exchange's.
        balances=_balances(book.balances),
        net_transfers=decimal_text(book.net_transfers),
    )


def _transfer(row: TransferRow) -> portfolio_pb2.Transfer:
    return portfolio_pb2.Transfer(
        transfer_id=str(row.id),
        account_id=row.account_id,
        asset=row.asset,
        amount=decimal_text(row.amount),
        value=decimal_text(row.value) if row.value is not None else "",
        time=_timestamp(row.time),
        as_of_sequence=row.as_of_sequence,
    )


def _fill(row: FillRow) -> portfolio_pb2.Fill:
    return portfolio_pb2.Fill(
        account_id=row.account_id,
        venue=row.venue,
        trade_id=row.trade_id,
        order_id=row.order_id,
        symbol=row.symbol,
        side=_SIDES[Side(row.side)],
        quantity=decimal_text(row.quantity),
        price=decimal_text(row.price),
        fee=decimal_text(row.fee),
        fee_currency=row.fee_currency,
        liquidity=_LIQUIDITY.get(row.liquidity, common_pb2.LIQUIDITY_UNSPECIFIED),
        time=_timestamp(row.time),
        sequence=row.sequence,
    )


def _pnl(realized: Decimal, unrealized: Decimal, fees: Decimal) -> portfolio_pb2.PnLBreakdown:
    return portfolio_pb2.PnLBreakdown(
        realized=decimal_text(realized),
        unrealized=decimal_text(unrealized),
        fees=decimal_text(fees),
        net=decimal_text(realized + unrealized - fees),
    )


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


def _required(account_id: str) -> str:
    if not account_id:
        raise _invalid("account_id", "is required")
    return account_id


def _page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise _invalid("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return requested or DEFAULT_PAGE_SIZE


def _encode_token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid("page_token", "is not a token this service gave out") from None


def _fill_cursor(token: str) -> tuple[datetime, int] | None:
    if not token:
        return None
    time, _, row_id = _decode_token(token).partition("|")
    try:
        return datetime.fromisoformat(time), int(row_id)
    except ValueError:
        raise _invalid("page_token", "is not a token this service gave out") from None


def _balances(totals: dict[str, Decimal]) -> list[common_pb2.Balance]:
    """Totals as Balance messages, all free."""
    return [
        common_pb2.Balance(
            asset=asset, free=decimal_text(total), locked="0", total=decimal_text(total)
        )
        for asset, total in sorted(totals.items())
    ]


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    seconds, micros = divmod(to_micros(value), 1_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=micros * 1000)


def _duration(value: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(value)
    return duration


def _datetime(
    request: ListFillsRequest | GetEquityHistoryRequest | GetPerformanceRequest, field: str
) -> datetime | None:
    if not request.HasField(field):  # type: ignore[arg-type]
        return None
    violations = Violations()
    moment = violations.timestamp(field, getattr(request, field))
    violations.raise_if_any()
    return moment
