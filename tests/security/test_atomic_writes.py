"""Every file transferkit writes goes to a temporary sibling first and is renamed into place in one step, so a
killed or failed write leaves the old output or nothing (issue 14). Behaviour is shown elsewhere (the kill
matrix, tests/security/test_outputs.py); this test keeps it true for writers added later: every call that
writes a file, anywhere in the package, must write to a path bound by ``with atomic_path(...) as NAME`` in the
same function, to an in-memory buffer, or be one of the few functions that fill the temporary folder
``io.write_folder`` swaps in whole."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "transferkit"

#: calls that write a file, and which argument is the path (method calls on a path: the receiver, -1)
WRITERS = {"write_text": -1, "write_bytes": -1, "save_file": 1, "savefig": 0, "export": 2, "write_table": 1,
           "ParquetWriter": 0, "open_memmap": 0, "write_parquet": 0, "to_csv": 0, "to_parquet": 0, "save": 0}
#: functions whose writes land in a temporary folder created and swapped by their caller
INSIDE_TEMPORARY_FOLDER = {("io.py", "_save_tensors"), ("io.py", "_write_into")}


def _root(node: ast.AST) -> str | None:
    """The variable a path expression starts from: ``str(tmp / "x")`` → ``tmp``."""
    while True:
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Name) and node.func.id in (
                "str", "Path", "os.fspath"):
            node = node.args[0]
        elif isinstance(node, ast.BinOp):
            node = node.left
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _safe_names(fn: ast.AST) -> set[str]:
    """Names bound in ``fn`` by ``with atomic_path(...) as NAME``, ``NAME = io.BytesIO()`` and ``NAME =
    Path(tempfile.mkdtemp(...))`` (a fresh temporary folder, moved into place whole)."""
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) ==
                        "atomic_path" and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if (getattr(func, "attr", getattr(func, "id", "")) in ("BytesIO", "StringIO")
                    or "mkdtemp(" in ast.unparse(node.value)):  # a buffer, or a fresh temporary folder
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _file_writes(fn: ast.AST) -> list[tuple[int, str, ast.AST | None]]:
    found = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", None))
        if name == "open" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and any(
                c in str(node.args[1].value) for c in "wax+"):
            found.append((node.lineno, "open", node.args[0]))
        elif name in WRITERS:
            if name == "save" and getattr(node.func, "value", None) is not None and getattr(
                    node.func.value, "id", "") not in ("np", "numpy", "torch"):
                continue  # Image.save / model.save are checked where they are defined
            if name == "export" and "onnx" not in ast.unparse(node.func):
                continue
            if name == "write_table" and getattr(node.func, "value", None) is not None and getattr(
                    node.func.value, "id", "") not in ("pq", "parquet"):
                continue  # ParquetWriter.write_table(table): the file is the writer's, checked where it opens
            i = WRITERS[name]
            target = node.func.value if i == -1 and isinstance(node.func, ast.Attribute) else (
                node.args[i] if 0 <= i < len(node.args) else None)
            found.append((node.lineno, name, target))
    return found


def test_every_file_write_in_the_package_is_atomic() -> None:
    raw = []
    checked = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            inner = {id(n) for child in fn.body for n in ast.walk(child)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n is not fn}
            safe = _safe_names(fn)
            for lineno, name, target in _file_writes(fn):
                if any(lineno in range(n.lineno, n.end_lineno + 1) for n in ast.walk(fn)
                       if id(n) in inner):
                    continue  # counted in the nested function itself
                checked += 1
                if (path.name, fn.name) in INSIDE_TEMPORARY_FOLDER or path.name == "_utils.py" and fn.name.startswith(
                        "atomic_"):
                    continue
                if _root(target) not in safe:
                    raw.append(f"{path.relative_to(PACKAGE.parent)}:{lineno} {fn.name}: {name}"
                               f"({ast.unparse(target) if target is not None else '?'})")
    assert checked >= 15, f"the scan found only {checked} file writes; it no longer recognises them"
    assert not raw, "writes not through atomic_path (write to a temporary sibling, then rename):\n" + "\n".join(raw)


def test_the_scan_catches_a_plain_write() -> None:
    """The check itself: a direct ``path.write_text`` is flagged, the same write under ``atomic_path`` is not."""
    plain = ast.parse("def f(path):\n    path.write_text('x')\n").body[0]
    wrapped = ast.parse("def f(path):\n    with atomic_path(path) as tmp:\n        tmp.write_text('x')\n").body[0]
    assert [_root(t) for _, _, t in _file_writes(plain)] == ["path"] and "path" not in _safe_names(plain)
    assert [_root(t) for _, _, t in _file_writes(wrapped)] == ["tmp"] and "tmp" in _safe_names(wrapped)
