"""The layout's rules, checked on the source: no module uses another module's private names.

Import cycles and the layers are import-linter contracts in pyproject.toml (`make lint`); this covers what
import-linter cannot see: attribute access. ``obj._name`` is allowed only where ``_name`` is defined in the
same module (a class reaching its own instances) or is part of a public protocol (namedtuple's
``_replace``/``_asdict``/``_fields``); ``mlscope._promclient`` alone may use prometheus-client's private API,
and ``mlscope.otel.export`` alone the OpenTelemetry SDK batch processor's (its queue and its drop reports,
which no public API exposes; tests/unit/test_otel_export.py fails if an SDK release moves them).
"""
from __future__ import annotations

import ast
from pathlib import Path

import mlscope

PACKAGE = Path(mlscope.__file__).resolve().parent
PUBLIC_PROTOCOLS = {"_replace", "_asdict", "_fields", "_make", "_exit", "_getframe"}
OWNS_PRIVATE_API = {"_promclient.py", "otel/export.py"}


def private_names_defined(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, attributes assigned, class-level names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if n.startswith("_")}


def foreign_private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    own = private_names_defined(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if (name.startswith("_") and not name.startswith("__") and name not in own
                    and name not in PUBLIC_PROTOCOLS):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: from {node.module} import "
                                 f"{alias.name}")
    return found


def test_no_module_uses_another_modules_private_names() -> None:
    violations = [use for path in sorted(PACKAGE.rglob("*.py"))
                  if path.relative_to(PACKAGE).as_posix() not in OWNS_PRIVATE_API
                  for use in foreign_private_uses(path)]
    assert violations == [], "\n".join(violations)


def test_the_checker_sees_a_foreign_private_use(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class A:\n    def __init__(self):\n        self._own = 1\n\n"
                      "def f(a, b):\n    return a._own + b._theirs\n")
    assert [u.split(": ")[1] for u in foreign_private_uses_at(module)] == ["b._theirs"]


def foreign_private_uses_at(path: Path) -> list[str]:
    global PACKAGE
    saved, PACKAGE = PACKAGE, path.parent
    try:
        return foreign_private_uses(path)
    finally:
        PACKAGE = saved
