"""The backtest service's tables (SQLAlchemy 2.0 `mapped_column` models).

Metadata lives here; bulky arrays (candles, ticks, equity curves, trades) live in
compact .npy/.npz files under <var_dir>/backtest, named by the rows that own them.
Each run's metrics are columns, so results can be queried and ranked in SQL.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Base of the backtest models; its metadata is what Alembic compares against."""


metadata = Base.metadata


class DatasetRow(Base):
    __tablename__ = "datasets"

    dataset_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # "candles" or "ticks".
    kind: Mapped[str] = mapped_column(String(16))
    # How it came in: "csv", "freqtrade_json", "hftbacktest_npz", "binance_futures_raw".
    source_format: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(64), default="")
    # Candles: "1m", "1h", ...; empty for ticks.
    timeframe: Mapped[str] = mapped_column(String(8), default="")
    rows: Mapped[int] = mapped_column(BigInteger)
    # ms since the epoch, UTC.
    start_ms: Mapped[int] = mapped_column(BigInteger)
    end_ms: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # [[after_ms, resume_ms, missing], ...]
    gaps: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    tick_size: Mapped[float] = mapped_column(Float, default=0.0)
    lot_size: Mapped[float] = mapped_column(Float, default=0.0)
    # "continuous" (crypto, 365-day years) or "trading_days" (252 a year).
    calendar: Mapped[str] = mapped_column(String(16), default="continuous")
    # Relative to the datasets directory.
    file_name: Mapped[str] = mapped_column(String(200))
    create_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    __tablename__ = "jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # "queued", "running", "succeeded", "failed", "cancelled".
    state: Mapped[str] = mapped_column(String(16), index=True)
    engine: Mapped[str] = mapped_column(String(8))
    strategy: Mapped[str] = mapped_column(String(100))
    dataset_id: Mapped[str] = mapped_column(String(36))
    # The job as submitted (a JSON document of the domain request).
    spec: Mapped[dict[str, object]] = mapped_column(JSON)
    runs_total: Mapped[int] = mapped_column(Integer)
    runs_done: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    rank_by: Mapped[str] = mapped_column(String(32), default="")
    submit_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    start_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RunRow(Base):
    """One run of a job (one, or one per parameter combination of a sweep)."""

    __tablename__ = "runs"

    job_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True
    )
    run_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    parameters: Mapped[dict[str, float]] = mapped_column(JSON)
    # The equity curve and trades, relative to the results directory.
    file_name: Mapped[str] = mapped_column(String(200))
    total_return: Mapped[float] = mapped_column(Float)
    cagr: Mapped[float] = mapped_column(Float)
    sharpe_ratio: Mapped[float] = mapped_column(Float)
    sortino_ratio: Mapped[float] = mapped_column(Float)
    calmar_ratio: Mapped[float] = mapped_column(Float)
    max_drawdown: Mapped[float] = mapped_column(Float)
    max_drawdown_duration_ms: Mapped[int] = mapped_column(BigInteger)
    win_rate: Mapped[float] = mapped_column(Float)
    profit_factor: Mapped[float] = mapped_column(Float)
    sqn: Mapped[float] = mapped_column(Float)
    time_in_market: Mapped[float] = mapped_column(Float)
    trades: Mapped[int] = mapped_column(Integer)
    average_trade_return: Mapped[float] = mapped_column(Float)
    buy_and_hold_return: Mapped[float] = mapped_column(Float)
    final_equity: Mapped[float] = mapped_column(Float)
    periods_per_year: Mapped[float] = mapped_column(Float, default=0.0)
    liquidated: Mapped[bool] = mapped_column(Boolean, default=False)
    liquidation_bar: Mapped[int] = mapped_column(BigInteger, default=-1)
    liquidation_time_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    uncovered_loss: Mapped[float] = mapped_column(Float, default=0.0)
