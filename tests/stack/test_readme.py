"""Every shell and Python block of README.md runs as written against a real stack.

The stack is the one `make run` starts (`python -m common.stack`), in a temp dir on free
ports; in each block the default addresses, the tokens file and the import directory
become the test stack's, nothing else. Blocks run in the README's order, as a reader
would run them: the shell variables a block sets (`TOKEN` from the quick start's token
block, `ORDER`, `DATASET`, `JOB`) reach the blocks after it. A block fails on a non-zero
exit and on an HTTP error: curl runs with `--fail-with-body`, except that a stream a
reader ends on purpose (`| head`, `--max-time`) counts as success.

A block that cannot run here is listed in NOT_RUN with the reason; the count run is
printed (`pytest -s` shows it).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from common.config import DEFAULT_CONFIG, PROJECT_ROOT, SERVICE_NAMES
from common.testing import Stack, isolated_config, running_stack
from edgequant.common.v1 import common_pb2
from edgequant.risk.v1 import risk_pb2, risk_pb2_grpc
from gateway.settings import settings_of

pytestmark = pytest.mark.stack

README = PROJECT_ROOT / "README.md"
RUN_LANGUAGES = {"sh": "shell", "shell": "shell", "bash": "shell", "python": "python"}

# Blocks this test does not run, each found by a line it holds, with the reason.
NOT_RUN = {
    "make run    # the whole stack": "starts the stack in the foreground until Ctrl-C (and "
    "`make test` is this suite): the test starts the same stack, python -m common.stack, "
    "on free ports instead",
    "sudo useradd --system": "installs onto the device as root (useradd, /opt, systemd)",
    "sudo -u edgequant .venv/bin/python -m gateway.tokens": "needs the systemd install "
    "under /opt/edgequant and its user",
    "sudo -u edgequant env EDGEQUANT_VAR_DIR": "needs the systemd install under "
    "/opt/edgequant and its user",
}
GRPCURL_ABSENT = (
    "grpcurl is not installed here (a Go binary from its GitHub releases; Debian packages "
    "it from trixie on, this machine is bookworm); with grpcurl on PATH these blocks run"
)

# What a block's output must show, beyond exiting 0: found by a line it holds.
EXPECTED = {
    "/v1/venues/paper/tickers/BTC/USDT": ['"symbol":"BTC/USDT"'],
    '"clientOrderId": "quickstart-1"}': ['"status":"ORDER_STATUS_FILLED"'],
    "/v1/accounts/paper/fills": ['"fills":[{"accountId":"paper"', '"symbol":"BTC/USDT"'],
    '"clientOrderId": "quickstart-2"}': ['"status":"ORDER_STATUS_CANCELED"'],
    "tickers:stream?symbols=BTC/USDT": ['{"result":{"ticker":{"venue":"paper"'],
    "http://127.0.0.1:8080/v1/datasets": ['"JOB_STATE_SUCCEEDED"', '"totalReturn":'],
    '"reason": "quick start"': ['"TRADING_STATE_HALTED"', '"TRADING_STATE_ACTIVE"'],
    "updateMask=maxOpenOrders": ['"maxOpenOrders":20'],
    "asyncio.run(main())": ["TRADING_STATE_ACTIVE"],
}

# Blocks that only read what an asynchronous step writes, as the README says: run again
# (they change nothing) until their output shows it, for up to RETRY_SECONDS.
RETRIED = {
    "/v1/accounts/paper/fills": "the portfolio applies fills from the executions stream",
}
RETRY_SECONDS = 30.0

# A reader's curl shows error bodies; here an HTTP error fails the block. `head` closing
# the pipe (23, or SIGPIPE) and a --max-time that ends a stream (28) are the examples'
# own way to stop.
SHELL_PRELUDE = """set -euo pipefail
set -a
curl() {
  local status=0
  command curl --fail-with-body "$@" || status=$?
  if [ "$status" -eq 23 ] || [ "$status" -eq 141 ]; then return 0; fi
  if [ "$status" -eq 28 ] && [[ " $* " == *" --max-time "* ]]; then return 0; fi
  return "$status"
}
"""


@dataclass(frozen=True)
class Block:
    language: str  # "shell" or "python"
    text: str
    line: int  # of the opening fence in README.md

    def holds(self, marker: str) -> bool:
        return marker in self.text


def readme_blocks() -> list[Block]:
    """The fenced blocks of README.md that are shell or Python, in order."""
    blocks = []
    lines = README.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^\s*```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        start = index
        index += 1
        body = []
        while not lines[index].strip().startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        language = RUN_LANGUAGES.get(fence.group(1))
        if language:
            blocks.append(Block(language, "\n".join(body) + "\n", start + 1))
    return blocks


def why_not_run(block: Block) -> str | None:
    for marker, reason in NOT_RUN.items():
        if block.holds(marker):
            return reason
    if block.holds("grpcurl ") and shutil.which("grpcurl") is None:
        return GRPCURL_ABSENT
    return None


def test_the_list_of_blocks_not_run_matches_the_readme() -> None:
    blocks = readme_blocks()
    for marker in NOT_RUN:
        holding = [block.line for block in blocks if block.holds(marker)]
        assert len(holding) == 1, f"NOT_RUN {marker!r} matches the blocks at lines {holding}"
    for marker in (*EXPECTED, *RETRIED):
        holding = [block.line for block in blocks if block.holds(marker)]
        assert len(holding) == 1, f"{marker!r} matches the blocks at lines {holding}"


def _substitutions(stack: Stack) -> dict[str, str]:
    with DEFAULT_CONFIG.open("rb") as file:
        defaults = tomllib.load(file)
    config = stack.config
    substitutions = {
        f"{defaults['gateway']['host']}:{defaults['gateway']['port']}": (
            f"{config.gateway.host}:{config.gateway.port}"
        ),
        "configs/tokens.toml": settings_of(config.gateway).auth.tokens_file,
        "var/backtest/import": str(config.var_dir / "backtest" / "import"),
        ".venv/bin/python": sys.executable,
    }
    for name in SERVICE_NAMES:
        substitutions[defaults[name]["address"]] = config.service(name).address
    return substitutions


def _substitute(text: str, substitutions: dict[str, str]) -> str:
    for default, actual in substitutions.items():
        text = text.replace(default, actual)
    return text


async def _risk_in_sync(address: str, within: float = 120.0) -> None:
    """Risk denies every order RISK_STATE_STALE until it has read its peers (the README
    says so); the quick start's first order comes after that, as a reader's would."""
    request = risk_pb2.CheckOrderRequest(
        venue="paper",
        symbol="BTC/USDT",
        side=common_pb2.SIDE_BUY,
        type=common_pb2.ORDER_TYPE_MARKET,
        quantity="0.001",
    )
    async with grpc.aio.insecure_channel(address) as channel:
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        for _ in range(int(within / 0.5)):
            try:
                answer = await risk.CheckOrder(request, timeout=5)
            except grpc.aio.AioRpcError:
                answer = None
            if answer is not None and all(
                violation.reason != "RISK_STATE_STALE" for violation in answer.violations
            ):
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"risk did not sync within {within} s")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        reason = f"the README's examples need {', '.join(missing)}: apt-get install curl jq"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # .ci/run installs them: a test that cannot run fails
        pytest.skip(reason)
    async with running_stack(isolated_config(tmp_path / "stack"), within=120) as running:
        await _risk_in_sync(running.config.risk.address)
        yield running


def _run_shell(block: Block, text: str, state: Path, environment: dict[str, str]) -> str:
    script = f"{SHELL_PRELUDE}source {state}\n{text}\nexport -p > {state}\n"
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, (
        f"README.md line {block.line} exited {result.returncode}:\n{text}\n"
        f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
    )
    return result.stdout


def _run_python(block: Block, text: str, directory: Path) -> str:
    path = directory / f"readme_line_{block.line}.py"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"README.md line {block.line} failed:\n{text}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


async def test_every_readme_block_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    substitutions = _substitutions(stack)
    state = tmp_path / "shell-state.sh"
    state.write_text("")
    environment = {
        key: value
        for key, value in stack.environment.items()
        if key in ("PATH", "HOME", "LANG", "EDGEQUANT_CONFIG")
    }
    ran: list[int] = []
    skipped: list[tuple[int, str]] = []
    for block in readme_blocks():
        reason = why_not_run(block)
        if reason is not None:
            skipped.append((block.line, reason))
            continue
        text = _substitute(block.text, substitutions)
        expected = [
            each for marker, shown in EXPECTED.items() if block.holds(marker) for each in shown
        ]
        attempts = int(RETRY_SECONDS / 0.5) if any(map(block.holds, RETRIED)) else 1
        for _ in range(attempts):
            if block.language == "shell":
                output = await asyncio.to_thread(_run_shell, block, text, state, environment)
            else:
                output = await asyncio.to_thread(_run_python, block, text, tmp_path)
            compact = re.sub(r'":\s+', '":', output)
            missing = [each for each in expected if each not in compact]
            if not missing:
                break
            await asyncio.sleep(0.5)
        assert not missing, f"README.md line {block.line}: no {missing} in\n{output}"
        ran.append(block.line)
        if block.holds("gateway.tokens me"):
            assert "TOKEN=" in state.read_text(), "the token block set no $TOKEN"
    print(f"\nREADME.md: ran {len(ran)} blocks (lines {ran}); not run {len(skipped)}:")
    for line, reason in skipped:
        print(f"  line {line}: {reason}")
    assert len(ran) >= 8, "the quick start's blocks must run"
