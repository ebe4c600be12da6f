"""The shape of the code, checked: small modules, short functions, no private name crossing a file.

The layering itself is import-linter's job (``lint-imports``, contracts in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "service" / "chatstream"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
OUR_PACKAGES = {"chatstream", "tests", "bench"}


def _python_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_no_module_over_the_limit():
    long = {
        str(p.relative_to(REPO)): n
        for p in _python_files(PACKAGE)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_the_limit():
    long = {}
    for path in _python_files(PACKAGE):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = size
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("root", ["service", "tests", "bench", "migrations"])
def test_no_underscore_name_imported_from_another_module(root):
    crossing = []
    for path in _python_files(REPO / root):
        for node in ast.walk(_tree(path)):
            ours = (
                node.level > 0 or (node.module or "").split(".")[0] in OUR_PACKAGES
                if isinstance(node, ast.ImportFrom)
                else False
            )
            if ours:
                private = [
                    a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    crossing.append(f"{path.relative_to(REPO)}:{node.lineno} {node.module} {private}")
    assert not crossing, "private names imported across modules:\n" + "\n".join(crossing)


def _private_names_defined(tree: ast.Module) -> set[str]:
    """Underscore names a module defines itself (functions, classes, attributes it assigns)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if n.startswith("_")}


@pytest.mark.parametrize("root", ["service", "bench"])
def test_no_private_attribute_defined_elsewhere(root):
    """``obj._name`` only where this module defines ``_name``: another module's internals get a
    public name (``_ensure_scheduler()`` or ``._started`` read from other files, say)."""
    crossing = []
    for path in _python_files(REPO / root):
        tree = _tree(path)
        own = _private_names_defined(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                if node.attr not in own:
                    crossing.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
    assert not crossing, "private attributes of other modules' objects:\n" + "\n".join(crossing)
