"""Reads and writes of the risk tables. Only the control path (limits, trading state)
touches the database; CheckOrder never does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import func as sa_func
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.risk.limits import Limits, from_document, to_document
from services.risk.storage.models import AccountLimitsRecord, LimitsRecord, TradingStateRecord
from services.risk.trading_state import TradingState, TradingStateChange

LIMITS_ROW = 1


class RiskRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def load_limits(self) -> Limits | None:
        async with self.sessions() as session:
            record = await session.get(LimitsRecord, LIMITS_ROW)
            return None if record is None else from_document(json.loads(record.document))

    async def load_account_limits(self) -> dict[str, Limits]:
        """The limits of every account that was given its own."""
        async with self.sessions() as session:
            records = await session.scalars(select(AccountLimitsRecord))
            return {
                record.account_id: from_document(json.loads(record.document)) for record in records
            }

    async def save_limits(
        self, limits: Limits, updated_by: str, when: datetime, account_id: str = ""
    ) -> None:
        """Stores the global defaults, or with `account_id` that account's own limits."""
        document = json.dumps(to_document(limits), sort_keys=True)
        if account_id:
            async with self.sessions.begin() as session:
                account = await session.get(AccountLimitsRecord, account_id)
                if account is None:
                    session.add(
                        AccountLimitsRecord(
                            account_id=account_id,
                            document=document,
                            updated_by=updated_by,
                            update_time=when,
                        )
                    )
                else:
                    account.document, account.updated_by = document, updated_by
                    account.update_time = when
            return
        async with self.sessions.begin() as session:
            record = await session.get(LimitsRecord, LIMITS_ROW)
            if record is None:
                session.add(
                    LimitsRecord(
                        id=LIMITS_ROW, document=document, updated_by=updated_by, update_time=when
                    )
                )
            else:
                record.document, record.updated_by, record.update_time = document, updated_by, when

    async def latest_trading_state(self, account_id: str = "") -> TradingStateChange | None:
        """The current global state, or with `account_id` that account's own."""
        async with self.sessions() as session:
            record = await session.scalar(
                select(TradingStateRecord)
                .where(TradingStateRecord.account_id == account_id)
                .order_by(TradingStateRecord.id.desc())
                .limit(1)
            )
            return None if record is None else _change(record)

    async def account_trading_states(self) -> dict[str, TradingStateChange]:
        """The current state of every account that ever had one of its own."""
        newest = (
            select(sa_func.max(TradingStateRecord.id))
            .where(TradingStateRecord.account_id != "")
            .group_by(TradingStateRecord.account_id)
        )
        async with self.sessions() as session:
            records = await session.scalars(
                select(TradingStateRecord).where(TradingStateRecord.id.in_(newest))
            )
            return {record.account_id: _change(record) for record in records}

    async def trading_state_history(self, limit: int = 100) -> list[TradingStateChange]:
        """The audit trail, newest first."""
        async with self.sessions() as session:
            records = await session.scalars(
                select(TradingStateRecord).order_by(TradingStateRecord.id.desc()).limit(limit)
            )
            return [_change(record) for record in records]

    async def append_trading_state(self, change: TradingStateChange) -> None:
        async with self.sessions.begin() as session:
            session.add(
                TradingStateRecord(
                    account_id=change.account_id,
                    state=change.state.name,
                    reason=change.reason,
                    updated_by=change.updated_by,
                    update_time=change.update_time,
                )
            )


def _change(record: TradingStateRecord) -> TradingStateChange:
    moment = record.update_time
    if moment.tzinfo is None:  # SQLite keeps no offset: stored as UTC
        moment = moment.replace(tzinfo=UTC)
    return TradingStateChange(
        state=TradingState[record.state],
        reason=record.reason,
        updated_by=record.updated_by,
        update_time=moment,
        account_id=record.account_id,
    )
