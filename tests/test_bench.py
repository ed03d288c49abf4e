"""The maintained benchmarks in ``bench/`` import only names the package still has: a refactor that moves a
name breaks a benchmark silently until someone runs it (``SmallCNNClassifier`` moved from
``transferkit.strategies`` to ``transferkit.estimators`` and the seed table's from-scratch arm failed)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _transferkit_imports(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "transferkit":
            out += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, "") for alias in node.names if alias.name.split(".")[0] == "transferkit"]
    return out


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_benchmark_imports_resolve(path: Path) -> None:
    missing = []
    for line, module, name in _transferkit_imports(path):
        mod = importlib.import_module(module)
        if name and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{path.name}:{line}: from {module} import {name}")
    assert not missing, missing
