"""Runners' lives: create, start (warm-up, reconcile), one decision per closed candle,
stop-loss / take-profit from the ticker stream, fills from the exchange's executions,
stop, flatten, delete.

The loop of a running runner:
1. Warm-up: the newest 2 x `warmup_bars` closed candles (GetCandles); the strategy's
   output over the newest `warmup_bars` must equal its output over all of them on the
   last bars (else WARMUP_UNSTABLE: it depends on where the history starts).
2. Reconcile: a decision whose order was written down but never answered is sent again
   with the same client_order_id (the exchange answers the original order, never a
   second one); the runner's open orders left from before are cancelled; its position
   and cash are the sum of its own fills (applied exactly once, by execution sequence).
3. Bars that closed while it was not running are skipped, never replayed (an event
   names them); the newest closed bar is decided at once: the position the strategy
   wants now. From the first start, the strategy's wanted position over the history
   (its last non-NaN output) is taken, as the bar engine holds it.
4. Each closed candle from StreamCandles: the strategy runs over the runner's history;
   its newest output sets the wanted position (NaN keeps it); where that changes, the
   difference to the runner's own position is ordered at market with the
   client_order_id `r-<runner>-<bar open ms>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import grpc

from common import timeframes
from common.errors import FailedPrecondition, NotFound, ResourceExhausted, Unavailable
from common.fanout import Fanout
from common.memory import MemoryGuard
from common.reconnect import Reconnect
from services.strategy import decide
from services.strategy.reasons import Reason
from services.strategy.runners import (
    ZERO,
    Decision,
    EventKind,
    Fill,
    MarketRules,
    Mode,
    OrderStatus,
    Runner,
    RunnerEvent,
    RunnerState,
)
from services.strategy.settings import RunnerSettings
from services.strategy.storage.repository import StrategyRepository, SymbolTaken
from services.strategy.venue import Bar, Exchange, OrderResult
from strategies.base import StrategyDefinition
from strategies.catalog import StrategyCatalog
from strategies.sizing import Sizing

if TYPE_CHECKING:  # numpy: loaded when a runner first runs, so an idle service holds none
    from strategies.candles import FloatArray

T = TypeVar("T")

log = logging.getLogger("edgequant.strategy.runners")

# gRPC codes of an order that no retry or later bar can fix: the runner stops.
PERMANENT = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
)
# A restart checks that the fills of this many recent decisions are applied.
RECONCILED_ORDERS = 10
# Bars of the newest output compared by the warm-up check.
STABLE_BARS = 5
# Executions of other orders move the stored sequence at most this often: after a restart
# the few since are read again and skipped again, where a write for each cost the device
# ~2 ms of CPU per order.
FOREIGN_SEQUENCE_SAVE_SECONDS = 10.0


class PermanentError(Exception):
    """The runner cannot go on: it stops itself, FAILED, with this message."""


@dataclass(frozen=True)
class NewRunner:
    """A validated CreateRunner request."""

    strategy: StrategyDefinition
    parameters: dict[str, float]
    venue: str
    symbol: str
    timeframe: str
    capital: Decimal | None
    capital_fraction: Decimal | None
    sizing: Sizing
    size: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    allow_short: bool
    confirm_live: str
    backtest_job_id: str


class RunnerManager:
    def __init__(
        self,
        repository: StrategyRepository,
        exchange: Exchange,
        catalog: StrategyCatalog,
        settings: RunnerSettings,
        events: Fanout[RunnerEvent],
        *,
        memory: MemoryGuard | None = None,
    ) -> None:
        self.memory = memory
        self.repository = repository
        self.exchange = exchange
        self.catalog = catalog
        self.settings = settings
        self.events = events
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._fills_applied = asyncio.Condition()
        self._liveness: dict[str, tuple[datetime, float]] = {}
        self._markets: dict[str, MarketRules] = {}
        self._follower: asyncio.Task[None] | None = None
        # The stop watchers' view of each runner (refreshed by its fills and decisions),
        # and the stop orders already sent.
        self._held: dict[str, Runner] = {}
        self._stops_sent: set[str] = set()

    # -- lifecycle of the service ---------------------------------------------------------

    async def open(self) -> None:
        """Follows executions (once a runner exists), then resumes the runners that were
        running."""
        runners = await self.repository.runners()
        if runners:
            self._follow_fills_once()
        for runner in runners:
            if runner.active:
                self._spawn(runner.runner_id)

    def _follow_fills_once(self) -> None:
        """Starts following the exchange's executions, if not yet. Without a runner no
        execution can be a runner's, and following them all cost the device CPU on every
        order; the stored sequence makes the first runner's follower catch up."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow_fills(), name="strategy-fills")

    async def close(self) -> None:
        tasks = [*self._loops.values(), *self._watchers.values()]
        if self._follower is not None:
            tasks.append(self._follower)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- RPCs -----------------------------------------------------------------------------

    async def create(self, new: NewRunner, allow_live: bool) -> Runner:
        if await self.repository.runner_count() >= self.settings.max_runners:
            raise ResourceExhausted(
                f"{self.settings.max_runners} runners exist already",
                reason=Reason.TOO_MANY_RUNNERS,
            )
        mode = await self._call(self.exchange.mode(new.venue))
        if mode is None:
            raise FailedPrecondition(
                f"the exchange has no venue {new.venue!r} that takes orders",
                reason=Reason.RUNNER_STATE_CONFLICT,
            )
        if mode is Mode.LIVE and not (allow_live and new.confirm_live == new.venue):
            raise FailedPrecondition(
                "a live runner needs [strategy.runners] allow_live = true and confirm_live "
                "equal to the venue's name",
                reason=Reason.LIVE_NOT_CONFIRMED,
            )
        market = await self._call(self.exchange.market(new.venue, new.symbol))
        if market is None:
            raise FailedPrecondition(
                f"{new.venue} has no market {new.symbol}", reason=Reason.RUNNER_STATE_CONFLICT
            )
        if new.allow_short and market.spot:
            raise FailedPrecondition(
                f"{new.symbol} on {new.venue} is spot: it cannot be shorted",
                reason=Reason.RUNNER_STATE_CONFLICT,
            )
        free = await self._call(self.exchange.free_balance(new.venue, market.quote))
        reserved = sum(
            (r.capital for r in await self.repository.runners() if r.venue == new.venue), ZERO
        )
        available = max(free - reserved, ZERO)
        capital = (
            new.capital if new.capital is not None else available * (new.capital_fraction or 0)
        )
        if capital <= 0 or capital > available:
            raise FailedPrecondition(
                f"capital {capital} {market.quote} exceeds the {available} {market.quote} free "
                "and not reserved by other runners",
                reason=Reason.CAPITAL_UNAVAILABLE,
            )
        # secrets (with hmac, ~26 KiB) is loaded by the first runner, not by an idle service.
        import secrets  # noqa: PLC0415

        runner = Runner(
            runner_id=secrets.token_hex(4),
            strategy=new.strategy.name,
            parameters=new.parameters,
            venue=new.venue,
            symbol=new.symbol,
            timeframe=new.timeframe,
            mode=mode,
            capital=capital,
            sizing=new.sizing,
            size=new.size,
            stop_loss=new.stop_loss,
            take_profit=new.take_profit,
            allow_short=new.allow_short,
            create_time=datetime.now(UTC),
            warmup_bars=new.strategy.warmup_bars(new.parameters),
            backtest_job_id=new.backtest_job_id,
            cash=capital,
        )
        try:
            await self.repository.add_runner(runner)
        except SymbolTaken:
            raise FailedPrecondition(
                f"a runner trades {new.symbol} on {new.venue} already",
                reason=Reason.RUNNER_SYMBOL_TAKEN,
            ) from None
        self._follow_fills_once()
        self._publish(runner, EventKind.STATE, "created (stopped)")
        return runner

    async def get(self, runner_id: str) -> Runner:
        runner = await self.repository.get_runner(runner_id)
        if runner is None:
            raise NotFound(f"no runner {runner_id!r}", reason=Reason.RUNNER_NOT_FOUND)
        heartbeat, lateness = self._liveness.get(runner_id, (None, 0.0))
        return runner.but(heartbeat_time=heartbeat, lateness_seconds=lateness)

    async def start(self, runner_id: str) -> Runner:
        async with self._lock(runner_id):
            runner = await self.get(runner_id)
            if runner.active:
                raise FailedPrecondition(
                    f"runner {runner_id} is running", reason=Reason.RUNNER_STATE_CONFLICT
                )
            if self.memory is not None:
                # Above the soft limit a new runner (its history, numpy) is refused.
                self.memory.admit(f"starting runner {runner_id}")
            history = await self._warm_up(runner)
            runner = await self._set(runner, state=RunnerState.WARMING_UP, stop_reason="")
            self._publish(runner, EventKind.STATE, f"warm-up passed on {len(history)} candles")
        self._spawn(runner_id, history=history)
        return runner

    async def stop(self, runner_id: str, reason: str = "") -> Runner:
        runner = await self.get(runner_id)
        await self._end_loop(runner_id)
        async with self._lock(runner_id):
            runner = await self._set(runner, state=RunnerState.STOPPED, stop_reason=reason)
        self._publish(runner, EventKind.STATE, "stopped" + (f": {reason}" if reason else ""))
        return runner

    async def pause_entries(self, runner_id: str, paused: bool) -> Runner:
        async with self._lock(runner_id):
            runner = await self._set(await self.get(runner_id), entries_paused=paused)
        self._publish(runner, EventKind.STATE, "entries paused" if paused else "entries resumed")
        return runner

    async def flatten(self, runner_id: str) -> tuple[Runner, Decision | None]:
        async with self._lock(runner_id):
            runner = await self._set(await self.get(runner_id), entries_paused=True)
            decision = None
            if runner.position != 0:
                now = datetime.now(UTC)
                decision = await self._order(
                    runner,
                    Decision(
                        runner_id=runner.runner_id,
                        bar_time=now,
                        signal=None,
                        target=0,
                        position_before=runner.position,
                        order_quantity=-runner.position,
                        expected_price=ZERO,
                        reason="flatten",
                        decide_time=now,
                        client_order_id=f"{runner.prefix}f{int(now.timestamp() * 1000)}",
                    ),
                    target=runner.target,
                )
            return await self.get(runner_id), decision

    async def delete(self, runner_id: str) -> None:
        runner = await self.get(runner_id)
        if runner.active:
            raise FailedPrecondition(
                f"runner {runner_id} is running: stop it first",
                reason=Reason.RUNNER_STATE_CONFLICT,
            )
        if runner.position != 0:
            raise FailedPrecondition(
                f"runner {runner_id} holds {runner.position}: flatten it first",
                reason=Reason.RUNNER_HAS_POSITION,
            )
        await self.repository.delete_runner(runner_id)
        self._locks.pop(runner_id, None)

    # -- the loop -------------------------------------------------------------------------

    def _spawn(self, runner_id: str, history: list[Bar] | None = None) -> None:
        self._loops[runner_id] = asyncio.create_task(
            self._run(runner_id, history), name=f"strategy-runner-{runner_id}"
        )

    async def _end_loop(self, runner_id: str) -> None:
        for tasks in (self._loops, self._watchers):
            task = tasks.pop(runner_id, None)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _run(self, runner_id: str, history: list[Bar] | None) -> None:
        try:
            runner = await self.get(runner_id)
            reconnect = Reconnect(f"exchange, starting runner {runner_id}", retried=(Unavailable,))
            while True:
                # The exchange down while a runner (re)starts: try again, never fail it.
                try:
                    if history is None:
                        history = await self._warm_up(runner)
                    market = await self._market(runner)
                    await self._reconcile(runner, market)
                    break
                except Unavailable as error:
                    log.info(
                        "runner waits for the exchange",
                        extra={"runner_id": runner_id, "error": error.message},
                    )
                    await asyncio.sleep(reconnect.backoff.next())
            definition = self.catalog.get(runner.strategy)
            window: deque[Bar] = deque(history, maxlen=2 * runner.warmup_bars)
            runner = await self.get(runner_id)
            newest = window[-1]
            if runner.last_bar_time is not None:
                await self._report_skipped(runner, newest)
            runner = await self._set(runner, state=RunnerState.RUNNING)
            self._publish(runner, EventKind.STATE, "running")
            if runner.last_bar_time is None or newest.open_time > runner.last_bar_time:
                await self._decide(
                    runner_id,
                    window,
                    definition,
                    market,
                    first=runner.target == 0 and runner.last_bar_time is None,
                )
            if runner.stop_loss > 0 or runner.take_profit > 0:
                self._watchers[runner_id] = asyncio.create_task(
                    self._watch_stops(runner_id), name=f"strategy-stops-{runner_id}"
                )
            await self._follow_candles(runner_id, window, definition, market)
        except asyncio.CancelledError:
            raise
        except (PermanentError, FailedPrecondition, NotFound) as error:
            await self._fail(runner_id, str(getattr(error, "message", error)))
        except Exception as error:
            log.exception("runner failed", extra={"runner_id": runner_id})
            await self._fail(runner_id, f"unexpected error: {error!r}")

    async def _fail(self, runner_id: str, reason: str) -> None:
        self._loops.pop(runner_id, None)
        watcher = self._watchers.pop(runner_id, None)
        if watcher is not None:
            watcher.cancel()
        runner = await self.repository.get_runner(runner_id)
        if runner is None:
            return
        runner = await self._set(runner, state=RunnerState.FAILED, stop_reason=reason)
        self._publish(runner, EventKind.ERROR, reason)

    async def _warm_up(self, runner: Runner) -> list[Bar]:
        needed = runner.warmup_bars
        history = await self._call(
            self.exchange.history(runner.venue, runner.symbol, runner.timeframe, 2 * needed)
        )
        if len(history) < needed:
            raise FailedPrecondition(
                f"{runner.strategy} needs {needed} closed {runner.timeframe} candles of "
                f"history; the exchange has {len(history)}",
                reason=Reason.WARMUP_INSUFFICIENT_HISTORY,
            )
        definition = self.catalog.get(runner.strategy)
        full = _signals(definition, runner, history)
        trailing = _signals(definition, runner, history[-needed:])
        compared = min(STABLE_BARS, needed)
        if not _stable(full, trailing, compared):
            raise FailedPrecondition(
                f"{runner.strategy}'s output over its last {compared} bars changes with where "
                f"its {needed}-bar history starts: declare a longer warm-up",
                reason=Reason.WARMUP_UNSTABLE,
            )
        return history

    async def _reconcile(self, runner: Runner, market: MarketRules) -> None:
        notes = []
        for decision in await self.repository.unanswered_decisions(runner.runner_id):
            answered = await self._call(self._submit(runner, decision))
            await self.repository.save_decision(
                _with(decision, order_id=answered.order_id, order_status=answered.status)
            )
            notes.append(f"order {decision.client_order_id} answered {answered.status}")
        for order_id, client_order_id in await self._call(
            self.exchange.open_orders(runner.venue, runner.symbol, runner.prefix)
        ):
            await self._call(self.exchange.cancel(order_id))
            notes.append(f"open order {client_order_id} cancelled")
        # The position is the sum of the runner's fills: wait until the exchange's fills
        # of its recent orders are applied (a crash may have come between a fill and
        # its application) before the first decision reads it.
        recent = await self.repository.decisions(runner.runner_id, 0, RECONCILED_ORDERS)
        for decision in recent:
            if not decision.client_order_id:
                continue
            result = await self._call(self.exchange.order(runner.venue, decision.client_order_id))
            if result is not None and result.filled_quantity > decision.filled_quantity:
                settled = await self._settle(runner, decision, result)
                notes.append(
                    f"fills of {decision.client_order_id} applied: {settled.filled_quantity}"
                )
        current = await self.get(runner.runner_id)
        notes.append(
            f"position {current.position} {market.base}, cash {current.cash} {market.quote}"
        )
        self._publish(current, EventKind.RECONCILED, "; ".join(notes))

    async def _report_skipped(self, runner: Runner, newest: Bar) -> None:
        """Bars that closed while the runner was not running: written down as one
        "skipped" decision (and an event), never replayed."""
        assert runner.last_bar_time is not None
        step = timeframes.FIXED_MS.get(runner.timeframe)
        last_ms = int(runner.last_bar_time.timestamp() * 1000)
        if step is None or newest.open_time_ms - last_ms <= step:
            return
        skipped = (newest.open_time_ms - last_ms) // step - 1
        first = datetime.fromtimestamp((last_ms + step) / 1000, UTC)
        last = datetime.fromtimestamp((newest.open_time_ms - step) / 1000, UTC)
        message = (
            f"{skipped} bars closed while the runner was not running and were skipped "
            f"(not replayed): {first.isoformat()} to {last.isoformat()}"
        )
        decision = await self.repository.add_decision(
            Decision(
                runner_id=runner.runner_id,
                bar_time=first,
                signal=None,
                target=runner.target,
                position_before=runner.position,
                order_quantity=ZERO,
                expected_price=ZERO,
                reason="skipped",
                decide_time=datetime.now(UTC),
                message=message,
            ),
            runner,
        )
        self._publish(runner, EventKind.SKIPPED_BARS, message, decision=decision)

    async def _follow_candles(
        self,
        runner_id: str,
        window: deque[Bar],
        definition: StrategyDefinition,
        market: MarketRules,
    ) -> None:
        runner = await self.get(runner_id)
        reconnect = Reconnect(f"exchange candles {runner.venue} {runner.symbol}")
        heartbeat = asyncio.create_task(self._beat(runner_id))
        step_ms = timeframes.FIXED_MS.get(runner.timeframe, 0)

        async def attempt() -> None:
            async for bar in self.exchange.closed_candles(
                runner.venue, runner.symbol, runner.timeframe, window[-1].open_time_ms
            ):
                reconnect.connected()
                if bar.open_time_ms <= window[-1].open_time_ms:
                    continue
                lateness = datetime.now(UTC).timestamp() - (bar.open_time_ms + step_ms) / 1000
                self._liveness[runner_id] = (datetime.now(UTC), lateness)
                if lateness > self.settings.late_after_seconds:
                    log.info("late candle", extra={"runner_id": runner_id, "lateness": lateness})
                window.append(bar)
                await self._decide(runner_id, window, definition, market, first=False)

        try:
            await reconnect.forever(attempt)
        finally:
            heartbeat.cancel()

    async def _beat(self, runner_id: str) -> None:
        while True:
            _, lateness = self._liveness.get(runner_id, (None, 0.0))
            self._liveness[runner_id] = (datetime.now(UTC), lateness)
            await asyncio.sleep(self.settings.heartbeat_seconds)

    async def _decide(
        self,
        runner_id: str,
        window: deque[Bar],
        definition: StrategyDefinition,
        market: MarketRules,
        first: bool,
    ) -> None:
        bar = window[-1]
        async with self._lock(runner_id):
            runner = await self.get(runner_id)
            try:
                signals = _signals(definition, runner, list(window))
            except Exception as error:
                raise PermanentError(f"{runner.strategy} raised {error!r}") from error
            raw = float(signals[-1])
            signal = None if math.isnan(raw) else raw
            if first:
                defined = [float(value) for value in signals if not math.isnan(float(value))]
                target = decide.wanted(defined[-1] if defined else None, 0, runner.allow_short)
            else:
                target = decide.wanted(signal, runner.target, runner.allow_short)
            order = decide.Order(ZERO)
            if target != runner.target or first:
                order = decide.order_for(runner, target, bar.close_decimal, market)
            now = datetime.now(UTC)
            decision = Decision(
                runner_id=runner_id,
                bar_time=bar.open_time,
                signal=signal,
                target=target,
                position_before=runner.position,
                order_quantity=order.quantity,
                expected_price=bar.close_decimal,
                reason="signal",
                decide_time=now,
                client_order_id=f"{runner.prefix}{bar.open_time_ms}" if order.quantity else "",
                message=order.note,
            )
            runner = runner.but(target=target, last_bar_time=bar.open_time)
            if order.quantity == 0:
                stored = await self.repository.add_decision(decision, runner)
                self._publish(runner, EventKind.DECISION, decision=stored)
                return
            await self._order(runner, decision, target=target)

    async def _order(self, runner: Runner, decision: Decision, target: int) -> Decision:
        """Writes the decision down, sends its order, waits until it settles."""
        runner = runner.but(target=target)
        stored = await self.repository.add_decision(decision, runner)
        try:
            result = await self._submit(runner, stored)
        except grpc.aio.AioRpcError as error:
            if error.code() in PERMANENT:
                raise PermanentError(
                    f"order {stored.client_order_id} refused: {error.details()}"
                ) from error
            stored = _with(
                stored,
                order_status=OrderStatus.REJECTED,
                message=f"{error.code().name}: {error.details()}",
            )
            await self.repository.save_decision(stored)
            self._publish(runner, EventKind.DECISION, decision=stored)
            return stored
        stored = _with(
            stored,
            order_id=result.order_id,
            order_status=result.status,
            message=stored.message or result.reject_message,
        )
        await self.repository.save_decision(stored)
        settled = await self._settle(runner, stored, result)
        self._publish(await self.get(runner.runner_id), EventKind.DECISION, decision=settled)
        return settled

    async def _submit(self, runner: Runner, decision: Decision) -> OrderResult:
        """Sends a decision's order; after a lost answer, looks it up by client_order_id
        and sends it again only if the exchange never saw it (same id: never twice)."""
        try:
            return await self.exchange.submit_market(
                runner.venue, runner.symbol, decision.order_quantity, decision.client_order_id
            )
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
        found = await self.exchange.order(runner.venue, decision.client_order_id)
        if found is not None:
            return found
        return await self.exchange.submit_market(
            runner.venue, runner.symbol, decision.order_quantity, decision.client_order_id
        )

    async def _settle(self, runner: Runner, decision: Decision, result: OrderResult) -> Decision:
        """Waits until the order is final and its fills are applied to the runner."""
        deadline = asyncio.get_running_loop().time() + self.settings.settle_seconds
        while True:
            applied = await self._decision(runner.runner_id, decision.id) or decision
            final = result.status is not None and result.status.final
            if final and applied.filled_quantity >= result.filled_quantity:
                return _with(applied, order_status=result.status)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                if not final:
                    await self._call(self.exchange.cancel(result.order_id))
                return applied
            async with self._fills_applied:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._fills_applied.wait(), min(remaining, 0.25))
            refreshed = await self.exchange.order(runner.venue, decision.client_order_id)
            if refreshed is not None:
                result = refreshed

    async def _decision(self, runner_id: str, decision_id: int) -> Decision | None:
        return await self.repository.get_decision(runner_id, decision_id)

    async def _watch_stops(self, runner_id: str) -> None:
        """Stop-loss and take-profit inside the bar: a market order when the mark crosses."""
        runner = await self.get(runner_id)
        reconnect = Reconnect(f"exchange tickers {runner.venue} {runner.symbol}")

        async def attempt() -> None:
            async for mark in self.exchange.tickers(runner.venue, runner.symbol):
                reconnect.connected()
                await self._check_stops(runner_id, mark)

        await reconnect.forever(attempt)

    async def _check_stops(self, runner_id: str, mark: Decimal) -> None:
        # Each tick is checked against the runner as its last fill left it (in memory):
        # the database is read only when a level is crossed.
        cached = self._held.get(runner_id)
        if cached is None:
            cached = self._held[runner_id] = await self.get(runner_id)
        if not decide.crossed(cached, mark):
            return
        async with self._lock(runner_id):
            current = await self.get(runner_id)
            self._held[runner_id] = current
            if not decide.crossed(current, mark) or current.last_bar_time is None:
                return
            step = timeframes.FIXED_MS.get(current.timeframe, 0)
            bar_ms = int(current.last_bar_time.timestamp() * 1000) + step
            client_order_id = f"{current.prefix}{bar_ms}{decide.crossed(current, mark)[0]}"
            if client_order_id in self._stops_sent:
                return  # sent once for this bar (refused, say, by risk): not on every tick
            self._stops_sent.add(client_order_id)
            now = datetime.now(UTC)
            await self._order(
                current,
                Decision(
                    runner_id=runner_id,
                    bar_time=datetime.fromtimestamp(bar_ms / 1000, UTC),
                    signal=None,
                    target=current.target,
                    position_before=current.position,
                    order_quantity=-current.position,
                    expected_price=mark,
                    reason=decide.crossed(current, mark),
                    decide_time=now,
                    client_order_id=client_order_id,
                ),
                target=current.target,
            )

    # -- fills ----------------------------------------------------------------------------

    async def _follow_fills(self) -> None:
        reconnect = Reconnect("exchange executions")

        async def attempt() -> None:
            after_seq = await self.repository.last_execution_sequence()
            saved_at = time.monotonic()
            async for item in self.exchange.fills(after_seq):
                reconnect.connected()
                if isinstance(item, int):  # another order's execution: not ours
                    if time.monotonic() - saved_at >= FOREIGN_SEQUENCE_SAVE_SECONDS:
                        await self.repository.skip_execution(item)
                        saved_at = time.monotonic()
                    continue
                await self._apply(item)

        await reconnect.forever(attempt)

    async def _apply(self, fill: Fill) -> None:
        def apply(runner: Runner) -> Runner:
            base = runner.symbol.split("/")[0]
            rules = self._markets.get(runner.runner_id) or MarketRules(
                base=base,
                quote="",
                quantity_increment=ZERO,
                min_quantity=ZERO,
                min_notional=ZERO,
                taker_fee=ZERO,
            )
            return decide.apply_fill(
                runner,
                fill.quantity,
                price=fill.price,
                fee=fill.fee,
                fee_currency=fill.fee_currency,
                market=rules,
            )

        applied = await self.repository.apply_fill(fill, apply)
        async with self._fills_applied:
            self._fills_applied.notify_all()
        if applied is not None:
            runner, decision = applied
            self._held[runner.runner_id] = runner
            expected = decision.expected_price if decision else None
            self._publish(
                runner,
                EventKind.FILL,
                f"{fill.quantity} at {fill.price}"
                + (f" (expected {expected})" if expected else ""),
            )

    # -- helpers --------------------------------------------------------------------------

    async def _market(self, runner: Runner) -> MarketRules:
        market = await self._call(self.exchange.market(runner.venue, runner.symbol))
        if market is None:
            raise PermanentError(f"{runner.venue} no longer lists {runner.symbol}")
        self._markets[runner.runner_id] = market
        return market

    def _lock(self, runner_id: str) -> asyncio.Lock:
        return self._locks.setdefault(runner_id, asyncio.Lock())

    async def _set(self, runner: Runner, **changes: object) -> Runner:
        await self.repository.set_fields(runner.runner_id, **changes)
        return runner.but(**changes)

    def _publish(
        self, runner: Runner, kind: EventKind, message: str = "", decision: Decision | None = None
    ) -> None:
        event = RunnerEvent(runner, kind, datetime.now(UTC), message=message, decision=decision)
        self.events.publish(event)
        _log(event)

    async def _call(self, call: Awaitable[T]) -> T:
        """A peer's answer; the exchange down is UNAVAILABLE, said as such."""
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise Unavailable(
                f"the exchange did not answer: {error.code().name}: {error.details()}",
                reason=Reason.EXCHANGE_UNAVAILABLE,
            ) from None


def _signals(definition: StrategyDefinition, runner: Runner, bars: Sequence[Bar]) -> FloatArray:
    """The strategy's output over `bars` (numpy, the catalog's own code)."""
    import numpy as np  # noqa: PLC0415 - only where a runner runs

    from strategies.candles import Candles  # noqa: PLC0415

    candles = Candles(
        time=np.array([bar.open_time_ms for bar in bars], dtype=np.int64),
        open=np.array([bar.open for bar in bars]),
        high=np.array([bar.high for bar in bars]),
        low=np.array([bar.low for bar in bars]),
        close=np.array([bar.close for bar in bars]),
        volume=np.array([bar.volume for bar in bars]),
    )
    values, _problems = definition.resolve(runner.parameters)
    return definition.run(candles, values)


def _stable(full: FloatArray, trailing: FloatArray, bars: int) -> bool:
    """Whether the strategy says the same on the last `bars` bars from the whole history
    and from its trailing part: equal outputs where both give one, and the same wanted
    position (the last output so far) wherever the trailing part has one."""
    import numpy as np  # noqa: PLC0415 - only where a runner runs

    first, second = full[-bars:], trailing[-bars:]
    both = ~np.isnan(first) & ~np.isnan(second)
    if not np.array_equal(first[both], second[both]):
        return False
    held, trailing_held = _held(full)[-bars:], _held(trailing)[-bars:]
    defined = ~np.isnan(trailing_held)
    return bool(np.array_equal(held[defined], trailing_held[defined]))


def _held(signals: FloatArray) -> FloatArray:
    """Each bar's last non-NaN output so far (NaN before the first)."""
    import numpy as np  # noqa: PLC0415 - only where a runner runs

    index = np.where(np.isnan(signals), 0, np.arange(len(signals)))
    np.maximum.accumulate(index, out=index)
    # Bars before the first output point at bar 0, itself NaN then.
    held: FloatArray = signals[index]
    return held


def _with(decision: Decision, **changes: object) -> Decision:
    return replace(decision, **changes)  # type: ignore[arg-type]


def _log(event: RunnerEvent) -> None:
    """The operator's trace of a runner in its service's log: states, errors, orders and
    fills (a decision that orders nothing is in ListDecisions and the event stream)."""
    decision = event.decision
    if event.kind is EventKind.DECISION and (decision is None or not decision.order_quantity):
        return
    extra: dict[str, object] = {"runner_id": event.runner.runner_id, "event": event.kind.value}
    if decision is not None:
        extra |= {
            "client_order_id": decision.client_order_id,
            "order_quantity": str(decision.order_quantity),
            "filled_quantity": str(decision.filled_quantity),
            "order_status": decision.order_status.name if decision.order_status else "",
        }
    level = logging.WARNING if event.kind is EventKind.ERROR else logging.INFO
    log.log(level, event.message or f"runner {event.kind.value}", extra=extra)
