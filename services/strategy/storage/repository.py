"""Reads and writes of the strategy tables; domain objects in and out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.strategy.runners import (
    Decision,
    Fill,
    Mode,
    OrderStatus,
    Runner,
    RunnerState,
)
from services.strategy.storage.models import CursorRecord, DecisionRecord, RunnerRecord
from strategies.sizing import Sizing

# The one row of strategy_cursor.
SEQUENCE_ROW = 1


class SymbolTaken(Exception):
    """Another runner holds that venue account and symbol."""


class StrategyRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add_runner(self, runner: Runner) -> None:
        try:
            async with self.sessions.begin() as session:
                session.add(_record(runner))
        except IntegrityError:
            raise SymbolTaken(f"{runner.venue} {runner.symbol}") from None

    async def save_runner(self, runner: Runner) -> None:
        async with self.sessions.begin() as session:
            await session.merge(_record(runner))

    async def get_runner(self, runner_id: str) -> Runner | None:
        async with self.sessions() as session:
            record = await session.get(RunnerRecord, runner_id)
            return None if record is None else _runner(record)

    async def runners(self, offset: int = 0, limit: int | None = None) -> list[Runner]:
        query = select(RunnerRecord).order_by(RunnerRecord.create_time, RunnerRecord.runner_id)
        if limit is not None:
            query = query.offset(offset).limit(limit)
        async with self.sessions() as session:
            return [_runner(record) for record in await session.scalars(query)]

    async def runner_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(RunnerRecord)) or 0)

    async def delete_runner(self, runner_id: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(
                delete(DecisionRecord).where(DecisionRecord.runner_id == runner_id)
            )
            await session.execute(delete(RunnerRecord).where(RunnerRecord.runner_id == runner_id))

    async def add_decision(self, decision: Decision, runner: Runner) -> Decision:
        """Stores a decision and the runner's new target and last bar, together."""
        async with self.sessions.begin() as session:
            record = _decision_record(decision)
            session.add(record)
            await session.execute(
                update(RunnerRecord)
                .where(RunnerRecord.runner_id == runner.runner_id)
                .values(target=runner.target, last_bar_time=runner.last_bar_time)
            )
            await session.flush()
            return _decision(record)

    async def save_decision(self, decision: Decision) -> None:
        async with self.sessions.begin() as session:
            record = await session.get(DecisionRecord, decision.id)
            if record is None:
                return
            record.order_id = decision.order_id
            record.order_status = _status_column(decision.order_status)
            record.message = decision.message

    async def decisions(self, runner_id: str, offset: int, limit: int) -> list[Decision]:
        query = (
            select(DecisionRecord)
            .where(DecisionRecord.runner_id == runner_id)
            .order_by(DecisionRecord.id.desc())
            .offset(offset)
            .limit(limit)
        )
        async with self.sessions() as session:
            return [_decision(record) for record in await session.scalars(query)]

    async def get_decision(self, runner_id: str, decision_id: int) -> Decision | None:
        async with self.sessions() as session:
            record = await session.get(DecisionRecord, decision_id)
            return None if record is None or record.runner_id != runner_id else _decision(record)

    async def unanswered_decisions(self, runner_id: str) -> list[Decision]:
        """Decisions whose order was written down but never answered (a crash between)."""
        query = select(DecisionRecord).where(
            DecisionRecord.runner_id == runner_id,
            DecisionRecord.client_order_id.is_not(None),
            DecisionRecord.order_id == "",
        )
        async with self.sessions() as session:
            return [_decision(record) for record in await session.scalars(query)]

    async def last_execution_sequence(self) -> int:
        """The last exchange execution sequence applied (0: none yet)."""
        async with self.sessions() as session:
            record = await session.get(CursorRecord, SEQUENCE_ROW)
            return 0 if record is None else record.executions_seq

    async def set_fields(self, runner_id: str, **changes: object) -> None:
        """Writes some of a runner's fields (others, e.g. the position a fill moves, stay)."""
        columns = {name: _column(value) for name, value in changes.items()}
        async with self.sessions.begin() as session:
            await session.execute(
                update(RunnerRecord).where(RunnerRecord.runner_id == runner_id).values(**columns)
            )

    async def apply_fill(
        self, fill: Fill, apply: Callable[[Runner], Runner]
    ) -> tuple[Runner, Decision | None] | None:
        """Applies one of a runner's fills (`apply(runner) -> runner`), accumulates it on
        its decision, and advances the last applied sequence, in one transaction: exactly once."""
        async with self.sessions.begin() as session:
            await _advance_sequence(session, fill.sequence)
            record = await session.get(RunnerRecord, fill.runner_id)
            if record is None:
                return None
            updated = apply(_runner(record))
            record.position, record.cash = str(updated.position), str(updated.cash)
            record.entry_price = str(updated.entry_price)
            decision_record = await session.scalar(
                select(DecisionRecord).where(DecisionRecord.client_order_id == fill.client_order_id)
            )
            decision = None
            if decision_record is not None:
                decision_record.filled_quantity = str(
                    Decimal(decision_record.filled_quantity) + abs(fill.quantity)
                )
                decision_record.filled_notional = str(
                    Decimal(decision_record.filled_notional) + abs(fill.quantity) * fill.price
                )
                decision = _decision(decision_record)
            return updated, decision

    async def skip_execution(self, sequence: int) -> None:
        async with self.sessions.begin() as session:
            await _advance_sequence(session, sequence)


async def _advance_sequence(session: AsyncSession, sequence: int) -> None:
    record = await session.get(CursorRecord, SEQUENCE_ROW)
    if record is None:
        session.add(CursorRecord(id=SEQUENCE_ROW, executions_seq=sequence))
    else:
        record.executions_seq = max(record.executions_seq, sequence)


def _status_column(status: OrderStatus | None) -> str:
    return "" if status is None else status.value


def _column(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _record(runner: Runner) -> RunnerRecord:
    return RunnerRecord(
        runner_id=runner.runner_id,
        strategy=runner.strategy,
        parameters=json.dumps(runner.parameters, sort_keys=True),
        venue=runner.venue,
        symbol=runner.symbol,
        timeframe=runner.timeframe,
        mode=runner.mode.value,
        state=runner.state.value,
        entries_paused=runner.entries_paused,
        capital=str(runner.capital),
        sizing=runner.sizing.value,
        size=str(runner.size),
        stop_loss=str(runner.stop_loss),
        take_profit=str(runner.take_profit),
        allow_short=runner.allow_short,
        position=str(runner.position),
        cash=str(runner.cash),
        entry_price=str(runner.entry_price),
        target=runner.target,
        last_bar_time=runner.last_bar_time,
        stop_reason=runner.stop_reason,
        backtest_job_id=runner.backtest_job_id,
        warmup_bars=runner.warmup_bars,
        create_time=runner.create_time,
    )


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _runner(record: RunnerRecord) -> Runner:
    create_time = _aware(record.create_time)
    assert create_time is not None
    return Runner(
        runner_id=record.runner_id,
        strategy=record.strategy,
        parameters={str(k): float(v) for k, v in json.loads(record.parameters).items()},
        venue=record.venue,
        symbol=record.symbol,
        timeframe=record.timeframe,
        mode=Mode(record.mode),
        capital=Decimal(record.capital),
        sizing=Sizing(record.sizing),
        size=Decimal(record.size),
        stop_loss=Decimal(record.stop_loss),
        take_profit=Decimal(record.take_profit),
        allow_short=record.allow_short,
        create_time=create_time,
        warmup_bars=record.warmup_bars,
        backtest_job_id=record.backtest_job_id,
        state=RunnerState(record.state),
        entries_paused=record.entries_paused,
        position=Decimal(record.position),
        cash=Decimal(record.cash),
        entry_price=Decimal(record.entry_price),
        target=record.target,
        last_bar_time=_aware(record.last_bar_time),
        stop_reason=record.stop_reason,
    )


def _decision_record(decision: Decision) -> DecisionRecord:
    return DecisionRecord(
        runner_id=decision.runner_id,
        bar_time=decision.bar_time,
        signal=decision.signal,
        target=decision.target,
        position_before=str(decision.position_before),
        order_quantity=str(decision.order_quantity),
        client_order_id=decision.client_order_id or None,
        order_id=decision.order_id,
        order_status=_status_column(decision.order_status),
        expected_price=str(decision.expected_price),
        filled_quantity=str(decision.filled_quantity),
        filled_notional=str(decision.filled_notional),
        reason=decision.reason,
        message=decision.message,
        decide_time=decision.decide_time,
    )


def _decision(record: DecisionRecord) -> Decision:
    bar_time, decide_time = _aware(record.bar_time), _aware(record.decide_time)
    assert bar_time is not None
    assert decide_time is not None
    return Decision(
        id=record.id,
        runner_id=record.runner_id,
        bar_time=bar_time,
        signal=record.signal,
        target=record.target,
        position_before=Decimal(record.position_before),
        order_quantity=Decimal(record.order_quantity),
        client_order_id=record.client_order_id or "",
        order_id=record.order_id,
        order_status=OrderStatus(record.order_status) if record.order_status else None,
        expected_price=Decimal(record.expected_price),
        filled_quantity=Decimal(record.filled_quantity),
        filled_notional=Decimal(record.filled_notional),
        reason=record.reason,
        message=record.message,
        decide_time=decide_time,
    )
