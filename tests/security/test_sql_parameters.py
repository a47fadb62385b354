"""SQL is built only from SQLAlchemy constructs and literals: values travel as bound
parameters, never inside the SQL text. An AST check over every module of the project's
own code (services, migrations, common, gateway, bench, scripts).

The rule:
1. Raw SQL entry points (`text`, `literal_column`, `exec_driver_sql`, `executescript`)
   take a string literal, or a name bound at module level to string literals (or a loop
   variable over such a tuple: common.database's PRAGMAs).
2. No `.execute*()` call, nor any raw entry point, is given SQL built from strings at
   run time: an f-string, `%` or `+` on strings, or `.format()`, directly or through a
   local variable assigned one.
Values go in as `:name` bind parameters or through select()/insert()/update() columns.
"""

from __future__ import annotations

import ast
from pathlib import Path

from common.config import PROJECT_ROOT

SCANNED = ("common", "services", "gateway", "bench", "scripts")
RAW_SQL = {"text", "literal_column", "exec_driver_sql", "executescript"}
EXECUTE = {"execute", "executemany", "exec_driver_sql", "executescript"}


def _modules() -> list[Path]:
    return [path for top in SCANNED for path in sorted((PROJECT_ROOT / top).rglob("*.py"))]


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _builds_a_string(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    return isinstance(node, ast.Call) and _called_name(node) == "format"


def _literal_strings(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Tuple | ast.List):
        return all(_literal_strings(item) for item in node.elts)
    return False


def _constant_names(tree: ast.Module) -> set[str]:
    """Names bound to string literals at module level, and loop variables over them."""
    names = set()
    for statement in tree.body:
        value = statement.value if isinstance(statement, ast.Assign | ast.AnnAssign) else None
        targets = (
            statement.targets
            if isinstance(statement, ast.Assign)
            else [getattr(statement, "target", None)]
        )
        if value is not None and _literal_strings(value):
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.For)
            and isinstance(node.iter, ast.Name)
            and node.iter.id in names
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
    return names


def _built_names(tree: ast.Module) -> set[str]:
    """Names assigned a string built at run time anywhere in the module."""
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _builds_a_string(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def violations_in(source: str, label: str) -> list[str]:
    tree = ast.parse(source)
    constants, built = _constant_names(tree), _built_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name, sql = _called_name(node), node.args[0]
        where = f"{label}:{node.lineno} {name}()"
        if name in RAW_SQL and not (
            _literal_strings(sql) or (isinstance(sql, ast.Name) and sql.id in constants)
        ):
            found.append(f"{where}: raw SQL must be a string literal")
        elif name in EXECUTE and (
            _builds_a_string(sql) or (isinstance(sql, ast.Name) and sql.id in built)
        ):
            found.append(f"{where}: SQL built from strings; bind the values as parameters")
    return found


def test_the_projects_sql_takes_values_only_as_bound_parameters() -> None:
    modules = _modules()
    assert len(modules) > 50  # the whole code base, migrations included
    found = []
    for path in modules:
        found += violations_in(path.read_text(), str(path.relative_to(PROJECT_ROOT)))
    assert found == []


def test_the_check_catches_sql_built_from_strings() -> None:
    """The rule above, on code it must refuse and code it must let through."""
    refused = {
        "session.execute(text(f'SELECT * FROM orders WHERE id = {order_id}'))": "raw SQL",
        "connection.exec_driver_sql('DELETE FROM fills WHERE id = %s' % fill_id)": "raw SQL",
        "query = 'SELECT ' + column\nsession.execute(query)": "built from strings",
        "cursor.execute('SELECT {}'.format(name))": "built from strings",
        "op.execute(text(sql))": "raw SQL",
    }
    for source, problem in refused.items():
        assert any(problem in found for found in violations_in(source, "x")), source
    allowed = [
        "session.execute(text('SELECT * FROM orders WHERE id = :id'), {'id': order_id})",
        "session.execute(select(OrderRow).where(OrderRow.id == order_id))",
        "PRAGMAS = ('PRAGMA foreign_keys=ON',)\nfor pragma in PRAGMAS:\n    cursor.execute(pragma)",
        "log.info(f'order {order_id}')",
    ]
    for source in allowed:
        assert violations_in(source, "x") == [], source
