"""Layering rules of the package, checked on its source: no import cycle between transferkit modules
(imports inside functions count; ``if TYPE_CHECKING:`` blocks do not run and do not), no module over 450
lines, and no comparison with a strategy's name outside ``transferkit/strategies/`` (the registry decides)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "transferkit"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """transferkit modules ``name`` imports at run time (anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from . import x` may name a module
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first: those edges are real too
    for name, deps in graph.items():
        for dep in list(deps):
            parts = dep.split(".")
            deps.update(p for p in (".".join(parts[:i]) for i in range(2, len(parts))) if p in graph and p != name)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle that does not go through a package's own __init__ re-exporting its submodules."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):  # a submodule importing its own package: the package runs first anyway
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := dfs(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_450_lines(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines; split it by concern"


def _strategy_name_comparisons(path: Path, names: set[str]) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
            consts = [v for v in values if isinstance(v, ast.Constant)]
            consts += [e for v in values if isinstance(v, (ast.Tuple, ast.List, ast.Set)) for e in v.elts
                       if isinstance(e, ast.Constant)]
            if any(c.value in names for c in consts):
                lines.append(node.lineno)
    return lines


def test_no_strategy_name_is_compared_outside_the_strategies_package() -> None:
    from transferkit.strategies import strategy_names

    names = set(strategy_names(task=None, role=None))
    offenders = {str(p.relative_to(PACKAGE.parent)): lines for p in sorted(PACKAGE.rglob("*.py"))
                 if "strategies" not in p.relative_to(PACKAGE).parts
                 and (lines := _strategy_name_comparisons(p, names))}
    assert not offenders, f"strategy names compared outside transferkit/strategies/: {offenders}"
