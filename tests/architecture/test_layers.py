"""The skeleton every service follows, checked from the source (AST and imports, no
imports of the code under test, well under a second).

Each rule names the module and line that breaks it. Exceptions are listed below with a
one-line reason each; a new exception belongs in these tables, reviewed, not in a
`noqa`. The layers (README, "Architecture"): entry point (main.py, __main__.py) ->
servicer (translates) -> convert (proto <-> domain) -> domain modules (decide) ->
storage (persists; the one place with SQL) and migrations; settings.py declares,
reasons.py registers the stable ErrorInfo reasons.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "gateway", "services")
SERVICES = ("exchange", "portfolio", "risk", "backtest", "strategy")


@dataclass(frozen=True)
class Module:
    path: Path  # relative to ROOT
    name: str  # dotted
    tree: ast.Module

    @property
    def parts(self) -> tuple[str, ...]:
        return self.path.with_suffix("").parts

    @property
    def service(self) -> str | None:
        """The service a module of services/<name>/ belongs to."""
        parts = self.parts
        if len(parts) > 2 and parts[0] == "services" and parts[1] in SERVICES:
            return parts[1]
        return None

    def at(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', 0)}"


@cache
def modules() -> tuple[Module, ...]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            found.append(Module(relative, name, ast.parse(path.read_text(), str(relative))))
    return tuple(found)


def imports(module: Module) -> Iterator[tuple[str, ast.AST]]:
    """Every module name `module` imports (absolute; relative ones resolved), with the node."""
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node
            for alias in node.names:  # `from services.x.storage import models`
                yield f"{base}.{alias.name}", node


def under(module: Module, *prefixes: str) -> bool:
    text = module.path.as_posix()
    return any(text == prefix or text.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


def report(problems: list[str], rule: str) -> None:
    assert not problems, f"{rule}:\n" + "\n".join(sorted(set(problems)))


# --- SQL lives in storage ---------------------------------------------------------------

# Outside services/<name>/storage/ and services/<name>/migrations/, these may import
# SQLAlchemy (or Alembic, which is SQLAlchemy's).
SQL_ALLOWED = {
    "common/database.py": "the engine, sessions and the migration runner every service shares",
    "common/migrations": "Alembic's environment, shared by every service's migrations",
    "common/migrate.py": "`python -m common.migrate`: runs each service's migrations",
    "common/copydb.py": "copies a database between engines (SQLite <-> PostgreSQL)",
    "common/testing.py": "test support: databases for tests",
    "common/service.py": "Runtime hands a service its engine and session factory",
    "common/columns.py": "the one decimal column type every service's storage models use",
    "common/writer.py": "the synchronous SQLite write path the storage packages share",
}


def test_no_sqlalchemy_outside_each_services_storage() -> None:
    problems = []
    for module in modules():
        service = module.service
        if service and under(
            module, f"services/{service}/storage", f"services/{service}/migrations"
        ):
            continue
        if under(module, *SQL_ALLOWED):
            continue
        for name, node in imports(module):
            if name.split(".")[0] in ("sqlalchemy", "alembic"):
                problems.append(f"{module.at(node)}: imports {name.split('.')[0]}")
    report(
        problems, "SQL belongs in the service's storage package (storage returns domain objects)"
    )


def test_servicers_import_no_storage_models() -> None:
    problems = []
    for module in modules():
        if module.service is None or module.path.name != "servicer.py":
            continue
        for name, node in imports(module):
            if re.fullmatch(rf"services\.{module.service}\.storage\.models(\..*)?", name):
                problems.append(f"{module.at(node)}: imports {name}")
    report(problems, "a servicer translates domain objects, never ORM rows")


# --- generated code stays at the edge ---------------------------------------------------

# Modules of a service that may import generated `_pb2` code, with why. Everything else
# under services/ is domain code: it speaks domain types.
TRANSPORT_MODULES = {
    "main.py": "the entry point registers the servicer with the server",
    "__main__.py": "the entry point",
    "servicer.py": "translates requests and responses",
    "convert.py": "proto <-> domain conversions",
    "testing.py": "scripted peers for tests, served over real gRPC",
}
# Per-service modules that are clients of another service (or read requests) and so
# speak its messages; each converts at its edge.
CLIENT_MODULES = {
    "services/exchange/risk_gate.py": "client of RiskService (CheckOrder, StreamRiskEvents)",
    "services/exchange/submission.py": "validates SubmitOrderRequest into an OrderIntent",
    "services/portfolio/ingestion.py": "client of ExchangeService.StreamExecutions",
    "services/portfolio/ticker_feed.py": "client of ExchangeService.StreamTickers",
    "services/portfolio/transfer_watch.py": "client of ExchangeService (GetBalances, ListOrders)",
    "services/risk/closes.py": "client of ExchangeService.GetCandles",
    "services/risk/feeds.py": "client of the portfolio's and the exchange's streams",
    "services/backtest/datasets/exchange.py": "client of ExchangeService.GetCandles (imports)",
    "services/strategy/venue.py": "client of ExchangeService (candles, orders, fills), GetResult",
}


def test_domain_modules_import_no_generated_code() -> None:
    problems = []
    for module in modules():
        if module.service is None or module.path.name in TRANSPORT_MODULES:
            continue
        if module.path.as_posix() in CLIENT_MODULES:
            continue
        for name, node in imports(module):
            if name.startswith("edgequant.") and "_pb2" in name:
                generated = name[: name.index("_pb2")] + "_pb2"
                problems.append(f"{module.at(node)}: imports {generated}")
    report(problems, "domain modules speak domain types; convert at the edge (convert.py)")


def test_client_and_transport_lists_name_real_modules() -> None:
    missing = [path for path in CLIENT_MODULES if not (ROOT / path).is_file()]
    assert not missing, f"listed as clients but absent (drop them from CLIENT_MODULES): {missing}"


# --- one helper for each shared problem -------------------------------------------------

PAGING_NAMES = re.compile(r"page_token|page_window|next_token|(en|de)code_(page_)?token|cursor")


def test_page_tokens_only_through_common_paging() -> None:
    problems = []
    for module in modules():
        if module.name == "common.paging":
            continue
        if module.path.name == "paging.py":
            problems.append(f"{module.path}:1: a paging module of its own")
        for name, node in imports(module):
            if name in ("base64", "binascii"):
                problems.append(f"{module.at(node)}: imports {name} (page tokens: common.paging)")
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and PAGING_NAMES.search(
                node.name
            ):
                problems.append(f"{module.at(node)}: defines {node.name}()")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id in (
                        "DEFAULT_PAGE_SIZE",
                        "MAX_PAGE_SIZE",
                    ):
                        problems.append(f"{module.at(node)}: defines {target.id}")
    report(problems, "one page-token format: common.paging (read_page, page_token, ...)")


# Every name the common table knows; read from its source, not imported.
def _timeframe_names() -> frozenset[str]:
    tree = ast.parse((ROOT / "common" / "timeframes.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Timeframe"
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.Name)
        ):
            first = node.args[0]
            names.add(str(first.value) if isinstance(first, ast.Constant) else "1M")
    return frozenset(names)


def test_timeframe_names_only_through_common_timeframes() -> None:
    known = _timeframe_names()
    assert {"1m", "1h", "1d"} <= known, "common/timeframes.py no longer reads as expected"
    problems = []
    for module in modules():
        if module.name == "common.timeframes":
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Attribute) and re.fullmatch(r"TIMEFRAME_\d\w*", node.attr):
                problems.append(f"{module.at(node)}: uses {node.attr} (common.timeframes.to_proto)")
            elements: list[ast.expr | None] = []
            if isinstance(node, ast.Dict):
                elements = [*node.keys, *node.values]
            elif isinstance(node, ast.List | ast.Tuple | ast.Set):
                elements = list(node.elts)
            literals = [
                element.value
                for element in elements
                if isinstance(element, ast.Constant) and element.value in known
            ]
            if len(literals) >= 2:
                problems.append(f"{module.at(node)}: a table of timeframe names {literals[:4]}")
    report(problems, "one timeframe table: common.timeframes (by_name, from_proto, of_step)")


# Modules that may pass a literal `reason=`, with why.
REASON_LITERALS_ALLOWED = {
    "gateway/testing.py": "a scripted ExchangeService imitating the exchange's answers",
    "services/portfolio/testing.py": "a scripted ExchangeService imitating the exchange's answers",
}


STABLE_REASON = re.compile(r"[A-Z][A-Z0-9_]+")


def test_reason_strings_only_from_a_registry() -> None:
    problems = []
    for module in modules():
        if module.path.as_posix() in REASON_LITERALS_ALLOWED:
            continue
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                value = keyword.value
                # A stable reason looks like one (UPPER_SNAKE); "initial state", the why of
                # a trading-state change, is prose for the audit trail, not an ErrorInfo.
                if keyword.arg == "reason" and (
                    isinstance(value, ast.JoinedStr)
                    or (
                        isinstance(value, ast.Constant)
                        and STABLE_REASON.fullmatch(str(value.value))
                    )
                ):
                    text = ast.unparse(keyword.value)
                    problems.append(f"{module.at(keyword.value)}: reason={text}")
    report(
        problems,
        "reasons come from services/<name>/reasons.py (Reason.X) or common/reasons.py,"
        " never literals",
    )


# Modules that may import every service, with why.
SERVICE_LISTS = {
    "services.registry": "the list of services the stack and the tests start",
}


def test_no_service_imports_another() -> None:
    problems = []
    for module in modules():
        own = module.service
        for name, node in imports(module):
            parts = name.split(".")
            if parts[0] != "services" or len(parts) < 2 or parts[1] not in SERVICES:
                continue
            if module.name in SERVICE_LISTS:
                continue
            if own is None or parts[1] != own:
                problems.append(f"{module.at(node)}: imports services.{parts[1]}")
    report(problems, "services talk over gRPC; shared code lives in common/ or a library package")


# --- settings declare their bounds ------------------------------------------------------

SETTINGS_MODULES = (
    "common/config.py",
    "gateway/settings.py",
    *(f"services/{service}/settings.py" for service in SERVICES),
)
# A bare numeric field with no bound, allowed, with why: (module, Class.field).
UNBOUNDED_ALLOWED: dict[tuple[str, str], str] = {}


def test_every_numeric_setting_declares_its_bounds() -> None:
    """`max_workers: int` lets 0 through (jobs queued for ever); `PositiveInt` does not."""
    problems = []
    for relative in SETTINGS_MODULES:
        path = ROOT / relative
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text())
        classes = (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
        for cls in (node for node in classes if node.name.endswith("Settings")):
            for statement in cls.body:
                if not (
                    isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)
                    and isinstance(statement.annotation, ast.Name)
                    and statement.annotation.id in ("int", "float")
                ):
                    continue
                field = f"{cls.name}.{statement.target.id}"
                if (relative, field) in UNBOUNDED_ALLOWED:
                    continue
                problems.append(
                    f"{relative}:{statement.lineno}: {field} is a bare {statement.annotation.id}"
                    " (declare it PositiveInt, NonNegativeFloat, Annotated[int, AtLeast(n)], ...)"
                )
    report(problems, "every numeric setting declares its bounds, which parse_settings enforces")


@pytest.mark.parametrize(
    ("module", "root", "prefix", "table"),
    [
        (
            "services.backtest.settings",
            "BacktestSettings",
            "backtest.",
            {"jobs": {"max_workers": 0}},
        ),
        (
            "services.backtest.settings",
            "BacktestSettings",
            "backtest.",
            {"jobs": {"worker_budget_mib": -1}},
        ),
        ("services.risk.settings", "RiskSettings", "risk.", {"feeds": {"retry_seconds": -1}}),
        (
            "services.strategy.settings",
            "StrategySettings",
            "strategy.",
            {"runners": {"max_runners": 0}},
        ),
        (
            "services.strategy.settings",
            "StrategySettings",
            "strategy.",
            {"runners": {"settle_seconds": -1}},
        ),
        ("services.risk.settings", "RiskSettings", "risk.", {"feeds": {"rpc_timeout_seconds": -1}}),
        (
            "services.portfolio.settings",
            "PortfolioSettings",
            "portfolio.",
            {"ingestion": {"batch_linger_seconds": -1}},
        ),
    ],
)
def test_settings_reject_no_workers_and_negative_budgets_and_delays(
    module: str, root: str, prefix: str, table: dict[str, dict[str, int]]
) -> None:
    import importlib  # noqa: PLC0415 - the one rule that runs the code it checks

    from common.config import ConfigError, parse_settings  # noqa: PLC0415

    settings = getattr(importlib.import_module(module), root)
    section, values = next(iter(table.items()))
    key = f"{prefix}{section}.{next(iter(values))}"
    try:
        parse_settings(settings, table, prefix)
    except ConfigError as error:
        rejected = error.key
    else:
        pytest.fail(f"{module}.{root}: {key} = {values[key.rpartition('.')[2]]} was accepted")
    assert rejected == key
