"""StreamExecutions: replays the outbox after any sequence, follows live, and resumes
across a restart of the exchange with no gap and no duplicate; one execution per
message, or batches of them (`max_batch`)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from edgequant.common.v1 import common_pb2
from edgequant.exchange.v1 import exchange_pb2
from services.exchange import outbox
from tests.services.exchange.exchange_testing import (
    SELL,
    Exchange,
    StartExchange,
    field_violations,
    order,
)


async def _read(exchange: Exchange, after_seq: int, count: int) -> list[common_pb2.Execution]:
    stream = exchange.stub.StreamExecutions(
        exchange_pb2.StreamExecutionsRequest(after_seq=after_seq)
    )
    received: list[common_pb2.Execution] = []
    try:
        while len(received) < count:
            message = await asyncio.wait_for(stream.read(), timeout=10)
            assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
            received.append(message.execution)
    finally:
        stream.cancel()
    return received


async def test_executions_resume_after_a_restart_without_gap_or_duplicate(
    start_exchange: StartExchange,
) -> None:
    async with start_exchange() as exchange:
        for number in range(3):
            await exchange.stub.SubmitOrder(order(client_order_id=f"a{number}", quantity="0.5"))
        first_run = exchange.servicer.outbox.last_sequence
        consumed = await _read(exchange, 0, first_run)
    # A consumer applied up to the middle of the first run, then both sides restarted.
    cursor = consumed[first_run // 2].sequence

    async with start_exchange() as exchange:
        live = asyncio.create_task(_read(exchange, cursor, first_run - cursor + 2))
        await asyncio.sleep(0.1)
        await exchange.stub.SubmitOrder(order(client_order_id="b0", side=SELL, quantity="0.001"))
        await exchange.stub.SubmitOrder(order(client_order_id="b1", side=SELL, quantity="0.001"))
        resumed = await live

    sequences = [e.sequence for e in resumed]
    assert sequences == list(range(cursor + 1, first_run + 3))
    assert resumed[: first_run - cursor] == consumed[cursor:]
    assert [e.client_order_id for e in resumed[-2:]] == ["b0", "b1"]
    trade_ids = [e.trade_id for e in consumed[:cursor] + resumed]
    assert len(set(trade_ids)) == len(trade_ids)


async def test_executions_carry_the_fill_exactly(exchange: Exchange) -> None:
    response = await exchange.stub.SubmitOrder(order(client_order_id="x", quantity="0.02"))

    executions = await _read(exchange, 0, exchange.servicer.outbox.last_sequence)

    assert sum(float(e.quantity) for e in executions) == float(response.order.filled_quantity)
    assert all(e.order_id == response.order.order_id for e in executions)
    assert all(e.liquidity == common_pb2.LIQUIDITY_TAKER for e in executions)
    assert all(e.fee_currency == "USDT" for e in executions)


async def _read_batches(
    exchange: Exchange, after_seq: int, count: int, max_batch: int
) -> list[list[common_pb2.Execution]]:
    """The messages of a batched stream, until they hold `count` executions."""
    stream = exchange.stub.StreamExecutions(
        exchange_pb2.StreamExecutionsRequest(after_seq=after_seq, max_batch=max_batch)
    )
    messages: list[list[common_pb2.Execution]] = []
    try:
        while sum(map(len, messages)) < count:
            message = await asyncio.wait_for(stream.read(), timeout=10)
            assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
            assert not message.HasField("execution")
            messages.append(list(message.executions))
    finally:
        stream.cancel()
    return messages


async def test_batches_replay_from_any_sequence_without_gap_or_duplicate(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 3 rows and batches of 2: batch and page boundaries fall everywhere.
    monkeypatch.setattr(outbox, "PAGE", 3)
    for number in range(8):
        await exchange.stub.SubmitOrder(order(client_order_id=f"a{number}", quantity="0.05"))
    last = exchange.servicer.outbox.last_sequence
    assert last >= 8, "too few executions to cross pages"
    one_by_one = await _read(exchange, 0, last)

    for after in range(last):
        messages = await _read_batches(exchange, after, last - after, max_batch=2)
        assert all(1 <= len(batch) <= 2 for batch in messages)
        flat = [execution for batch in messages for execution in batch]
        assert [e.sequence for e in flat] == list(range(after + 1, last + 1))
        assert flat == one_by_one[after:]


async def test_batches_follow_live_executions(exchange: Exchange) -> None:
    await exchange.stub.SubmitOrder(order(client_order_id="before", quantity="0.5"))
    before = exchange.servicer.outbox.last_sequence
    live = asyncio.create_task(_read_batches(exchange, before, 1, max_batch=1000))
    await asyncio.sleep(0.1)
    await exchange.stub.SubmitOrder(order(client_order_id="after", side=SELL, quantity="0.001"))

    messages = await live

    # Sent once committed: the stream does not wait to fill a batch of 1000.
    assert messages[0][0].sequence == before + 1
    assert messages[0][0].client_order_id == "after"


async def test_a_batched_stream_gathers_what_commits_after_its_first_execution(
    exchange: Exchange,
) -> None:
    # Long enough for three orders to commit while the first one's execution waits.
    exchange.servicer.outbox.gather_seconds = 1.0
    before = exchange.servicer.outbox.last_sequence
    stream = exchange.stub.StreamExecutions(
        exchange_pb2.StreamExecutionsRequest(after_seq=before, max_batch=1000)
    )
    try:
        await asyncio.sleep(0.1)  # the stream is caught up and waiting
        for number in range(3):
            await exchange.stub.SubmitOrder(
                order(client_order_id=f"next{number}", quantity="0.001")
            )
        message = await asyncio.wait_for(stream.read(), timeout=10)
    finally:
        stream.cancel()

    assert isinstance(message, exchange_pb2.StreamExecutionsResponse)
    # Three commits, one message, nothing lost or reordered.
    assert [e.client_order_id for e in message.executions] == ["next0", "next1", "next2"]
    assert [e.sequence for e in message.executions] == [before + 1, before + 2, before + 3]


async def test_negative_max_batch_is_invalid(exchange: Exchange) -> None:
    stream = exchange.stub.StreamExecutions(
        exchange_pb2.StreamExecutionsRequest(after_seq=0, max_batch=-1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream.read()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_batch" in field_violations(raised.value)
