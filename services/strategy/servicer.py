"""StrategyService: translates requests into RunnerManager calls and back; decides nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

from common import timeframes
from common.errors import FailedPrecondition, NotFound
from common.fanout import Fanout
from common.paging import offset_token, read_offset_page
from common.service import Context
from common.validation import Violations
from edgequant.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from edgequant.strategy.v1.strategy_pb2 import (
    CreateRunnerRequest,
    CreateRunnerResponse,
    DeleteRunnerRequest,
    DeleteRunnerResponse,
    FlattenRequest,
    FlattenResponse,
    GetRunnerRequest,
    GetRunnerResponse,
    ListDecisionsRequest,
    ListDecisionsResponse,
    ListRunnersRequest,
    ListRunnersResponse,
    PauseEntriesRequest,
    PauseEntriesResponse,
    ResumeEntriesRequest,
    ResumeEntriesResponse,
    StartRunnerRequest,
    StartRunnerResponse,
    StopRunnerRequest,
    StopRunnerResponse,
    StreamRunnerEventsRequest,
    StreamRunnerEventsResponse,
)
from services.strategy.convert import SIZING_OF, decision_message, event_message, runner_message
from services.strategy.manager import NewRunner, RunnerManager
from services.strategy.reasons import Reason
from services.strategy.runners import RunnerEvent
from services.strategy.venue import Backtests
from strategies.base import UnknownStrategy
from strategies.catalog import StrategyCatalog
from strategies.sizing import Sizing

MAX_ID_LENGTH = 64


class StrategyServicer(strategy_pb2_grpc.StrategyServiceServicer):
    def __init__(
        self,
        manager: RunnerManager,
        catalog: StrategyCatalog,
        events: Fanout[RunnerEvent],
        backtests: Backtests,
        allow_live: bool,
    ) -> None:
        self.manager = manager
        self.catalog = catalog
        self.events = events
        self.backtests = backtests
        self.allow_live = allow_live

    async def CreateRunner(
        self, request: CreateRunnerRequest, context: Context
    ) -> CreateRunnerResponse:
        strategy, parameters = request.strategy, dict(request.parameters)
        if request.backtest_job_id and not strategy:
            try:
                strategy, from_result = await self.backtests.strategy_of(
                    request.backtest_job_id, request.backtest_run_index
                )
            except Exception as error:
                raise FailedPrecondition(
                    f"backtest result {request.backtest_job_id} could not be read: {error}",
                    reason=Reason.BACKTEST_RESULT_UNAVAILABLE,
                ) from None
            parameters = {**from_result, **parameters}
        runner = await self.manager.create(
            self._new_runner(request, strategy, parameters), self.allow_live
        )
        return CreateRunnerResponse(runner=runner_message(runner))

    async def GetRunner(self, request: GetRunnerRequest, context: Context) -> GetRunnerResponse:
        runner = await self.manager.get(_runner_id(request.runner_id))
        return GetRunnerResponse(runner=runner_message(runner))

    async def ListRunners(
        self, request: ListRunnersRequest, context: Context
    ) -> ListRunnersResponse:
        problems = Violations()
        page = read_offset_page(
            request.page_size, request.page_token, kind="runners", problems=problems
        )
        problems.raise_if_any()
        runners = await self.manager.repository.runners(page.offset, page.size)
        listed = [await self.manager.get(runner.runner_id) for runner in runners]
        return ListRunnersResponse(
            runners=[runner_message(runner) for runner in listed],
            next_page_token=offset_token("runners", page, len(listed)),
        )

    async def StartRunner(
        self, request: StartRunnerRequest, context: Context
    ) -> StartRunnerResponse:
        runner = await self.manager.start(_runner_id(request.runner_id))
        return StartRunnerResponse(runner=runner_message(runner))

    async def StopRunner(self, request: StopRunnerRequest, context: Context) -> StopRunnerResponse:
        runner = await self.manager.stop(_runner_id(request.runner_id))
        return StopRunnerResponse(runner=runner_message(runner))

    async def PauseEntries(
        self, request: PauseEntriesRequest, context: Context
    ) -> PauseEntriesResponse:
        runner = await self.manager.pause_entries(_runner_id(request.runner_id), paused=True)
        return PauseEntriesResponse(runner=runner_message(runner))

    async def ResumeEntries(
        self, request: ResumeEntriesRequest, context: Context
    ) -> ResumeEntriesResponse:
        runner = await self.manager.pause_entries(_runner_id(request.runner_id), paused=False)
        return ResumeEntriesResponse(runner=runner_message(runner))

    async def Flatten(self, request: FlattenRequest, context: Context) -> FlattenResponse:
        runner, decision = await self.manager.flatten(_runner_id(request.runner_id))
        return FlattenResponse(
            runner=runner_message(runner),
            decision=decision_message(decision) if decision else None,
        )

    async def DeleteRunner(
        self, request: DeleteRunnerRequest, context: Context
    ) -> DeleteRunnerResponse:
        await self.manager.delete(_runner_id(request.runner_id))
        return DeleteRunnerResponse()

    async def ListDecisions(
        self, request: ListDecisionsRequest, context: Context
    ) -> ListDecisionsResponse:
        problems = Violations()
        runner_id = request.runner_id
        problems.require(0 < len(runner_id) <= MAX_ID_LENGTH, "runner_id", "is required")
        page = read_offset_page(
            request.page_size, request.page_token, kind="decisions", problems=problems
        )
        problems.raise_if_any()
        await self.manager.get(runner_id)
        decisions = await self.manager.repository.decisions(runner_id, page.offset, page.size)
        return ListDecisionsResponse(
            decisions=[decision_message(decision) for decision in decisions],
            next_page_token=offset_token("decisions", page, len(decisions)),
        )

    async def StreamRunnerEvents(
        self, request: StreamRunnerEventsRequest, context: Context
    ) -> AsyncIterator[StreamRunnerEventsResponse]:
        wanted = request.runner_id
        if wanted:
            await self.manager.get(_runner_id(wanted))
        async with self.events.subscribed(
            lambda event: not wanted or event.runner.runner_id == wanted
        ) as events:
            async for event in events:
                yield StreamRunnerEventsResponse(event=event_message(event))

    # --- requests ------------------------------------------------------------------------

    def _new_runner(
        self, request: CreateRunnerRequest, strategy: str, parameters: dict[str, float]
    ) -> NewRunner:
        problems = Violations()
        definition = None
        try:
            definition = self.catalog.get(strategy)
        except UnknownStrategy:
            problems.add("strategy", f"no strategy {strategy!r}: see ListStrategies")
        values: dict[str, float] = {}
        if definition is not None:
            values, schema_problems = definition.resolve(parameters)
            for name, problem in schema_problems:
                problems.add(f"parameters[{name}]", problem)
            if not schema_problems:
                for name, problem in definition.constraint_problems(values):
                    problems.add(f"parameters[{name}]", problem)
        problems.require(0 < len(request.venue) <= 128, "venue", "is required")
        problems.require(0 < len(request.symbol) <= 64, "symbol", "is required")
        timeframe = timeframes.from_proto(request.timeframe)
        if timeframe is None or timeframe.milliseconds is None:
            problems.add("timeframe", "must be a fixed timeframe (1m to 1w)")
        capital = problems.decimal("capital", request.capital, required=False, positive=True)
        fraction = problems.decimal(
            "capital_fraction", request.capital_fraction, required=False, positive=True
        )
        if (request.capital == "") == (request.capital_fraction == ""):
            problems.add("capital", "give exactly one of capital and capital_fraction")
        if fraction is not None and fraction > 1:
            problems.add("capital_fraction", "must be at most 1")
        sizing = SIZING_OF.get(request.sizing, Sizing.FRACTION_OF_EQUITY)
        if request.sizing and request.sizing not in SIZING_OF:
            problems.add("sizing", "is not a known sizing")
        size = problems.decimal("size", request.size or "1", positive=True) or Decimal(1)
        if sizing is not Sizing.FIXED_QUANTITY and size > 1:
            problems.add("size", "a fraction of equity must be at most 1")
        stop_loss = problems.decimal(
            "stop_loss", request.stop_loss, required=False, non_negative=True
        )
        take_profit = problems.decimal(
            "take_profit", request.take_profit, required=False, non_negative=True
        )
        if stop_loss is not None and stop_loss >= 1:
            problems.add("stop_loss", "must be below 1 (a fraction of the entry price)")
        problems.raise_if_any()
        assert definition is not None
        assert timeframe is not None
        return NewRunner(
            strategy=definition,
            parameters=values,
            venue=request.venue,
            symbol=request.symbol,
            timeframe=timeframe.name,
            capital=capital,
            capital_fraction=fraction,
            sizing=sizing,
            size=size,
            stop_loss=stop_loss or Decimal(0),
            take_profit=take_profit or Decimal(0),
            allow_short=request.allow_short,
            confirm_live=request.confirm_live,
            backtest_job_id=request.backtest_job_id,
        )


def _runner_id(runner_id: str) -> str:
    problems = Violations()
    problems.require(0 < len(runner_id) <= MAX_ID_LENGTH, "runner_id", "is required")
    problems.raise_if_any()
    return runner_id


__all__ = ["NotFound", "StrategyServicer", "strategy_pb2"]
