"""Fixtures shared by every test: an isolated config (temp dir, free ports), services, and
a real PostgreSQL server for the tests that run on it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from common.config import Config, load_config
from common.server import RunningService, running
from common.testing import (
    PostgresServer,
    isolated_config,
    postgres_bin_dir,
    postgres_unavailable_reason,
    wait_until_serving,
)
from services.registry import SPECS


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """EDGEQUANT_* environment of a stack in tmp_path on free ports."""
    return isolated_config(tmp_path)


@pytest.fixture
def config(environment: dict[str, str]) -> Config:
    return load_config(environment)


@pytest.fixture
async def services(config: Config) -> AsyncIterator[list[RunningService]]:
    """The four services, serving in this process on free ports (risk reports SERVING
    once its accounts have synced with the other three)."""
    async with AsyncExitStack() as stack:
        started = [await stack.enter_async_context(running(spec, config)) for spec in SPECS]
        for service in started:
            await wait_until_serving(service.address)
        yield started


# `slow` (make test-fast leaves them out; make test runs them): tests under these folders,
# with these markers, or using these fixtures.
SLOW_FOLDERS = ("stack", "bench", "fuzz", "deploy")
# Modules whose tests start real services (migrations in a child process, then a server),
# worker processes or subprocesses, or compile the tick engine: seconds each.
SLOW_MODULES = (
    "common/test_channels.py",  # SIGSTOPs real peers, holds channels past ping windows
    "common/test_config.py::test_bad_value_stops_the_start_with_one_line",  # 3 processes
    "common/test_copydb.py",
    "common/test_database.py",
    "common/test_memory.py",  # measures a child process
    "common/test_metrics.py::test_a_services_metrics_count_its_rpcs_by_method_and_code",
    "common/test_metrics.py::test_only_get_metrics_is_answered",
    "common/test_server.py",
    "common/test_stack.py",
    "contract/test_buf.py",
    "contract/test_codegen.py",  # regenerates every _pb2 with grpcio-tools
    "gateway/test_gateway_main.py",
    "gateway/test_keepalive.py",
    "security/test_stack_exposure.py",
    "security/test_sql_parameters.py",
    "services/test_account_truth.py",
    "services/backtest/test_edges_api.py",
    "services/backtest/test_jobs.py",
    "services/backtest/test_servicer.py",
    "services/backtest/tick/test_runner.py",  # numba compiles the tick engine
    "services/exchange/paper/test_paper_settings.py",
    "services/exchange/paper/test_paper_stack.py",
    "services/exchange/paper/test_paper_time.py",
    "services/exchange/paper/test_replay_invariants.py",
    "services/exchange/paper/test_restart.py",
    "services/exchange/test_account_opening.py",
    "services/exchange/test_ccxt_venue.py",
    "services/exchange/test_halts.py",
    "services/exchange/test_main.py",
    "services/exchange/test_orderflow.py",
    "services/exchange/test_outbox.py",
    "services/exchange/test_venue_transfers.py",
    "services/portfolio/test_ingestion.py",
    "services/portfolio/test_ledger.py",
    "services/portfolio/test_servicer.py",
    "services/portfolio/test_transfers.py",
    "services/risk/test_accounts.py",
    "services/risk/test_servicer.py",
    "services/risk/test_order_checks.py",
    "services/risk/test_var.py::test_monte_carlo_memory_does_not_grow_with_the_paths",
    "services/exchange/paper/test_markets.py",  # a month of history, the replay's loop seam
    "services/exchange/paper/test_live.py::test_offline_the_exchange_keeps_the_replay",
    "services/backtest/bars/test_engine.py::test_sma_cross_matches_backtesting_py",
    # Debian's chromium renders the page.
    "gateway/test_docs.py::test_the_documentation_page_renders_every_operation_offline",
    "gateway/test_streaming.py::test_an_event_source_in_chromium_receives_streamed_tickers",
    # Property sweeps over every message type of the contract (the plain cases stay fast).
    "gateway/test_protojson.py::test_a_message_prints_as_json_format_prints_it",
    "gateway/test_protojson.py::test_a_plain_document_parses_as_json_format_parses_it",
    "services/backtest/test_cluster.py",  # a Dask scheduler and workers on loopback
    "services/backtest/test_dataset_candles.py",  # a backtest service, as test_servicer
    "services/strategy/test_parity.py",  # service processes, one killed with -9
    "services/strategy/test_runners.py",  # a strategy service and its exchange, per test
    "services/strategy/test_stops.py",  # runners beside the bar engine over the dataset
)
SLOW_MARKERS = ("stack", "bench", "postgres")
SLOW_FIXTURES = (
    "services",  # the four services in this process, risk synced with the others
    "postgres_server",
    "start_exchange",  # a real exchange service (tests/services/exchange/conftest.py)
    "portfolio",  # a real portfolio service (tests/services/portfolio/conftest.py)
)
# Whole-stack and bench tests run for minutes by design; the rest get the default timeout.
LONG_TIMEOUT_SECONDS = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        # A test on the PostgreSQL server is marked so (`-m postgres` selects them all).
        if "postgres_server" in fixtures:
            item.add_marker(pytest.mark.postgres)
        relative = item.nodeid.removeprefix("tests/")
        folder = relative.split("/")[0]
        if (
            folder in SLOW_FOLDERS
            or any(relative.startswith(module) for module in SLOW_MODULES)
            or any(item.get_closest_marker(name) for name in SLOW_MARKERS)
            or any(name in fixtures for name in SLOW_FIXTURES)
        ):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("stack") or item.get_closest_marker("bench")
        ):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (initdb + pg_ctl in a temp dir, on a free
    port); skips, naming why, where its binaries are absent (CI installs them)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # .ci/run installs it: a test that cannot run fails
        pytest.skip(reason)
    bin_dir = postgres_bin_dir()
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty database of its own on the session's server."""
    return postgres_server.create_database()
