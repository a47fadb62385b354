"""A run's trades or equity curve as CSV text (ExportResult).

Trades: one line per trade, in order of entry, with the columns of TRADE_HEADER; times
are ISO 8601 UTC with milliseconds, bars are 0-based indices into the dataset (empty
for tick runs), numbers are written in full (shortest round-trip form). Equity: the
stored curve (every bar up to 20,000 points, evenly thinned beyond), `time,equity`.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from services.backtest.bars.engine import EXIT_REASONS
from services.backtest.jobs.results import StoredRun

TRADE_HEADER = (
    "trade",
    "side",
    "entry_time",
    "entry_bar",
    "entry_price",
    "exit_time",
    "exit_bar",
    "exit_price",
    "exit_reason",
    "quantity",
    "pnl",
    "return_fraction",
    "fees",
)
EQUITY_HEADER = ("time", "equity")


def to_csv(run: StoredRun, table: str) -> tuple[str, int]:
    """The CSV document of `table` ("trades" or "equity_curve") and its row count."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if table == "equity_curve":
        writer.writerow(EQUITY_HEADER)
        times, values = run.equity_time_ms.tolist(), run.equity.tolist()
        writer.writerows((_iso(int(t)), repr(float(v))) for t, v in zip(times, values, strict=True))
        return out.getvalue(), len(times)
    writer.writerow(TRADE_HEADER)
    columns = {name: column.tolist() for name, column in run.trades.items()}
    for k in range(run.trade_count):
        reason = int(columns["exit_reason"][k])
        writer.writerow(
            (
                k + 1,
                "buy" if columns["direction"][k] > 0 else "sell",
                _iso(int(columns["entry_time_ms"][k])),
                _bar(int(columns["entry_bar"][k])),
                repr(float(columns["entry_price"][k])),
                _iso(int(columns["exit_time_ms"][k])),
                _bar(int(columns["exit_bar"][k])),
                repr(float(columns["exit_price"][k])),
                EXIT_REASONS[reason] if 0 <= reason < len(EXIT_REASONS) else "",
                repr(float(columns["quantity"][k])),
                repr(float(columns["pnl"][k])),
                repr(float(columns["return_fraction"][k])),
                repr(float(columns["fees"][k])),
            )
        )
    return out.getvalue(), run.trade_count


def _iso(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bar(index: int) -> str:
    return str(index) if index >= 0 else ""
