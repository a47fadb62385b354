"""Every RPC of every service, fed random bytes, broken protobuf and boundary values,
over real gRPC to the stack as `make run` starts it (real processes, real SQLite).

Each answer must be a valid response or an error status the caller can act on, never
INTERNAL, UNKNOWN or DATA_LOSS (a bug: an exception nobody mapped); afterwards every
process is still SERVING and supervisord never had to restart one.

The RPCs come from the services' descriptors (services.registry), so a new RPC is
fuzzed without touching this file. Deterministic under EDGEQUANT_FUZZ_SEED (default
0). `make test` samples the boundary cases of each RPC (EDGEQUANT_FUZZ_CASES per RPC,
default 40); `make fuzz` sends every one of them and more random and mixed requests.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.descriptor import MethodDescriptor

from common.testing import SERVING, Stack, health_status, isolated_config, running_stack
from services.registry import SPECS
from tests.fuzz.protofuzz import Case, boundary_cases, malformed_cases, mixed_case, random_case

SEED = int(os.environ.get("EDGEQUANT_FUZZ_SEED", "0"))
# Boundary cases per RPC; 0 means all of them (`make fuzz`).
BOUNDARY_PER_RPC = int(os.environ.get("EDGEQUANT_FUZZ_CASES", "40"))
RANDOM_PER_RPC = 6 if BOUNDARY_PER_RPC else 60
MIXED_PER_RPC = 4 if BOUNDARY_PER_RPC else 40
CONCURRENCY = 8
UNARY_DEADLINE = 20.0
# A stream that answers nothing this long is waiting for events: that is valid.
STREAM_WAIT = 1.0
# Codes that mean an exception escaped our code (or the wire was corrupted).
BUG_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


@dataclass(frozen=True)
class Target:
    address: str
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"


def cases_for(method: MethodDescriptor) -> list[Case]:
    """The requests one RPC gets; its own seed, so adding an RPC changes no other's."""
    rng = random.Random(f"{SEED}:{method.full_name}")
    boundary = boundary_cases(method.input_type)
    if BOUNDARY_PER_RPC and len(boundary) > BOUNDARY_PER_RPC:
        boundary = rng.sample(boundary, BOUNDARY_PER_RPC)
    cases = [Case("empty request", b""), *boundary, *malformed_cases(method.input_type, rng)]
    cases += [random_case(rng, i) for i in range(RANDOM_PER_RPC)]
    if boundary:
        cases += [mixed_case(method.input_type, rng, i) for i in range(MIXED_PER_RPC)]
    return cases


def _raw(payload: bytes) -> bytes:
    """The identity serializer: the case's bytes go out as they are."""
    return payload


async def call(channel: grpc.aio.Channel, target: Target, case: Case) -> str | None:
    """Sends one case; returns a description of a bug, or None for an acceptable answer."""
    try:
        if target.method.server_streaming:
            await _first_message_or_status(channel, target, case)
        else:
            rpc = channel.unary_unary(target.path, _raw, _raw)
            await rpc(case.payload, timeout=UNARY_DEADLINE)
    except grpc.aio.AioRpcError as error:
        if error.code() in BUG_CODES:
            return f"{target.path} <- {case.label}: {error.code().name} {error.details()!r}"
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not target.method.server_streaming:
            return f"{target.path} <- {case.label}: no answer within {UNARY_DEADLINE} s"
    return None


async def _first_message_or_status(channel: grpc.aio.Channel, target: Target, case: Case) -> None:
    stream = channel.unary_stream(target.path, _raw, _raw)(case.payload)
    try:
        await asyncio.wait_for(stream.read(), STREAM_WAIT)
    except TimeoutError:
        pass  # open and waiting for events: a valid answer
    finally:
        stream.cancel()


async def fuzz(targets: list[Target]) -> list[str]:
    limit = asyncio.Semaphore(CONCURRENCY)
    channels = {
        address: grpc.aio.insecure_channel(address) for address in {t.address for t in targets}
    }

    async def one(target: Target, case: Case) -> str | None:
        async with limit:
            return await call(channels[target.address], target, case)

    try:
        jobs = [one(target, case) for target in targets for case in cases_for(target.method)]
        return [bug for bug in await asyncio.gather(*jobs) if bug]
    finally:
        for channel in channels.values():
            await channel.close()


async def test_every_rpc_survives_malformed_and_boundary_input(tmp_path: Path) -> None:
    environment = isolated_config(tmp_path)
    async with running_stack(environment) as stack:
        before = stack.programs()
        targets = [
            Target(stack.config.service(spec.name).address, method)
            for spec in SPECS
            for method in spec.descriptor.methods
        ]
        bugs = await fuzz(targets)
        assert bugs == [], "\n".join(bugs[:40])
        await _all_still_serving(stack)
        assert stack.programs() == before, "supervisord restarted a process"


async def _all_still_serving(stack: Stack) -> None:
    for spec in SPECS:
        address = stack.config.service(spec.name).address
        assert await health_status(address, deadline=5) == SERVING, spec.name
