"""Portfolio domain objects <-> protobuf messages of the portfolio contract.

Every enum is translated by an explicit map, decimals go out in plain notation
(common.wire.decimal_text) and page tokens are common.paging's. Requests are parsed
here: bad input raises InvalidArgument naming each field.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from google.protobuf import duration_pb2

from common.errors import FieldViolation, InvalidArgument
from common.paging import Page
from common.validation import Violations
from common.wire import decimal_text, timestamp
from edgequant.common.v1 import common_pb2
from edgequant.portfolio.v1 import portfolio_pb2
from services.portfolio.accounting import CostMethod, Position, TradeSide
from services.portfolio.accounts import AccountKind, EquityPoint, Transfer, parse_holdings
from services.portfolio.ledger import AccountBook
from services.portfolio.marks import MarkBook
from services.portfolio.reports import PnL, PnLReport
from services.portfolio.storage.repository import StoredFill
from services.portfolio.valuation import value_book, value_position

if TYPE_CHECKING:
    from services.portfolio.performance import Performance

KINDS = {
    AccountKind.PAPER: portfolio_pb2.ACCOUNT_KIND_PAPER,
    AccountKind.SANDBOX: portfolio_pb2.ACCOUNT_KIND_SANDBOX,
    AccountKind.LIVE: portfolio_pb2.ACCOUNT_KIND_LIVE,
}
SIDES = {TradeSide.BUY: common_pb2.SIDE_BUY, TradeSide.SELL: common_pb2.SIDE_SELL}
LIQUIDITY = {"maker": common_pb2.LIQUIDITY_MAKER, "taker": common_pb2.LIQUIDITY_TAKER}
COST_METHOD_OF: dict[int, CostMethod] = {
    portfolio_pb2.COST_BASIS_METHOD_UNSPECIFIED: CostMethod.AVERAGE_COST,
    portfolio_pb2.COST_BASIS_METHOD_AVERAGE_COST: CostMethod.AVERAGE_COST,
    portfolio_pb2.COST_BASIS_METHOD_FIFO: CostMethod.FIFO,
}
# Names of services.portfolio.imports.PARSERS.
FORMAT_OF: dict[int, str] = {
    portfolio_pb2.FILLS_FORMAT_CSV: "csv",
    portfolio_pb2.FILLS_FORMAT_CCXT_JSON: "ccxt_json",
}
# What each List RPC's page tokens page (common.paging refuses one kind's for another).
POSITIONS_PAGE = "positions"
FILLS_PAGE = "fills"
TRANSFERS_PAGE = "transfers"

# --- requests ------------------------------------------------------------------------


def invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation(field, description)])


def required_account(account_id: str) -> str:
    if not account_id:
        raise invalid("account_id", "is required")
    return account_id


def cost_method(value: int) -> CostMethod:
    method = COST_METHOD_OF.get(value)
    if method is None:
        raise invalid("method", "must be COST_BASIS_METHOD_AVERAGE_COST or COST_BASIS_METHOD_FIFO")
    return method


def fills_format(value: int) -> str:
    name = FORMAT_OF.get(value)
    if name is None:
        raise invalid("format", "must be FILLS_FORMAT_CSV or FILLS_FORMAT_CCXT_JSON")
    return name


def optional_time(
    request: portfolio_pb2.ListFillsRequest
    | portfolio_pb2.GetEquityHistoryRequest
    | portfolio_pb2.GetPerformanceRequest,
    field: str,
) -> datetime | None:
    if not request.HasField(field):  # type: ignore[arg-type]
        return None
    violations = Violations()
    moment = violations.timestamp(field, getattr(request, field))
    violations.raise_if_any()
    return moment


def interval(request: portfolio_pb2.GetEquityHistoryRequest) -> timedelta | None:
    if not request.HasField("interval"):
        return None
    violations = Violations()
    value = violations.duration("interval", request.interval)
    violations.raise_if_any()
    return value


def time_key(page: Page) -> tuple[datetime, int] | None:
    """The (time, id) a keyset page token of fills or transfers holds."""
    if page.after is None:
        return None
    time, item_id = page.after
    try:
        return datetime.fromisoformat(time), int(item_id)
    except ValueError:
        raise invalid("page_token", "is not a token this service gave out") from None


# --- answers -------------------------------------------------------------------------


def account_to_proto(book: AccountBook) -> portfolio_pb2.Account:
    account = book.account
    return portfolio_pb2.Account(
        account_id=account.account_id,
        venue=account.venue,
        kind=KINDS[account.kind],
        quote_currency=account.quote_currency,
        create_time=timestamp(account.create_time),
        opening_balances=balances_to_proto(parse_holdings(account.opening_holdings)),
    )


def portfolio_to_proto(book: AccountBook, marks: MarkBook) -> portfolio_pb2.Portfolio:
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
        balances=balances_to_proto(book.balances),
        net_transfers=decimal_text(book.net_transfers),
    )


def position_to_proto(
    book: AccountBook, position: Position, marks: MarkBook
) -> portfolio_pb2.Position:
    value = value_position(book, position, marks)
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
        message.update_time.CopyFrom(timestamp(position.update_time))
    return message


def fill_to_proto(fill: StoredFill) -> portfolio_pb2.Fill:
    trade = fill.trade
    return portfolio_pb2.Fill(
        account_id=fill.account_id,
        venue=trade.venue,
        trade_id=trade.trade_id,
        order_id=trade.order_id,
        symbol=trade.symbol,
        side=SIDES[trade.side],
        quantity=decimal_text(trade.quantity),
        price=decimal_text(trade.price),
        fee=decimal_text(trade.fee),
        fee_currency=trade.fee_currency,
        liquidity=LIQUIDITY.get(trade.liquidity, common_pb2.LIQUIDITY_UNSPECIFIED),
        time=timestamp(trade.time),
        sequence=trade.sequence,
    )


def fill_key(fill: StoredFill) -> tuple[str, str]:
    """The page-token key of a fill: its time and id."""
    return fill.trade.time.isoformat(), str(fill.fill_id)


def transfer_to_proto(transfer: Transfer) -> portfolio_pb2.Transfer:
    return portfolio_pb2.Transfer(
        transfer_id=str(transfer.transfer_id),
        account_id=transfer.account_id,
        asset=transfer.asset,
        amount=decimal_text(transfer.amount),
        value=decimal_text(transfer.value),
        time=timestamp(transfer.time),
        as_of_sequence=transfer.as_of_sequence,
    )


def transfer_key(transfer: Transfer) -> tuple[str, str]:
    return transfer.time.isoformat(), str(transfer.transfer_id)


def pnl_to_proto(pnl: PnL) -> portfolio_pb2.PnLBreakdown:
    return portfolio_pb2.PnLBreakdown(
        realized=decimal_text(pnl.realized),
        unrealized=decimal_text(pnl.unrealized),
        fees=decimal_text(pnl.fees),
        net=decimal_text(pnl.net),
    )


def pnl_report_to_proto(report: PnLReport) -> portfolio_pb2.GetPnLResponse:
    return portfolio_pb2.GetPnLResponse(
        total=pnl_to_proto(report.total),
        symbols=[
            portfolio_pb2.SymbolPnL(symbol=symbol, pnl=pnl_to_proto(pnl))
            for symbol, pnl in report.symbols
        ],
        quote_currency=report.quote_currency,
    )


def equity_point_to_proto(point: EquityPoint) -> portfolio_pb2.EquityPoint:
    return portfolio_pb2.EquityPoint(
        time=timestamp(point.time),
        equity=decimal_text(point.equity),
        cash=decimal_text(point.cash),
        net_transfers=decimal_text(point.net_transfers),
    )


def performance_to_proto(figures: Performance) -> portfolio_pb2.Performance:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(figures.max_drawdown_duration)
    result = portfolio_pb2.Performance(
        total_return=figures.total_return,
        max_drawdown=figures.max_drawdown,
        max_drawdown_duration=duration,
        sharpe_ratio=figures.sharpe_ratio,
        sortino_ratio=figures.sortino_ratio,
        win_rate=figures.win_rate,
        profit_factor=figures.profit_factor,
        closed_trades=figures.closed_trades,
    )
    if figures.start_time and figures.end_time:
        result.start_time.CopyFrom(timestamp(figures.start_time))
        result.end_time.CopyFrom(timestamp(figures.end_time))
    return result


def balances_to_proto(totals: dict[str, Decimal]) -> list[common_pb2.Balance]:
    """Totals as Balance messages, all free."""
    return [
        common_pb2.Balance(
            asset=asset, free=decimal_text(total), locked="0", total=decimal_text(total)
        )
        for asset, total in sorted(totals.items())
    ]
