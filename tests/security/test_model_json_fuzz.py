"""Property: random JSON mutations of a valid model.json (re-signed in the manifest, as an attacker would)
never execute code, never write outside the model folder and the cache, and never escape as a traceback —
loading and predicting either work or raise one of transferkit's one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from transferkit import load_model  # noqa: E402
from transferkit.exceptions import TransferKitError  # noqa: E402

from ..conftest import make_images  # noqa: E402
from .conftest import rewrite, tree  # noqa: E402

#: more examples for a longer hunt: TK_FUZZ_EXAMPLES=2000 python -m pytest tests/security
EXAMPLES = int(os.environ.get("TK_FUZZ_EXAMPLES", "60"))

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) |
    st.sampled_from(["../../x", "/etc/passwd", "tiny-cnn", "fine-tune", "feature-extraction", "hf-hub:a/b",
                     "file:///etc/passwd", "http://127.0.0.1:9/x", "logreg", "", "features.0", "last"]) |
    st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a JSON document (dict keys and list indices)."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if not path:
            doc = data.draw(JSON, label="root") if action == "replace" else doc
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        if action == "replace":
            parent[key] = data.draw(JSON, label="value")
        elif action == "delete":
            del parent[key]
        elif isinstance(parent[key], dict):
            parent[key][data.draw(st.text(max_size=8), label="new key")] = data.draw(JSON, label="new value")
        else:
            parent[key] = [parent[key], data.draw(JSON)]
    return doc


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_model_json_is_refused_cleanly_or_works(saved_model: Path, data: st.DataObject,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")  # so an install, if anything could trigger one, would run
    root = Path(tempfile.mkdtemp(prefix="tk-fuzz-"))
    try:
        folder = root / "m"
        shutil.copytree(saved_model, folder)
        doc = _mutate(json.loads((folder / "model.json").read_text()), data)
        rewrite(folder, doc)
        before = tree(root)
        try:
            model = load_model(folder)
            model.predict(make_images(1)[0])
        except TransferKitError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip(), repr(exc)
        assert tree(root) == before  # nothing written next to or into the folder
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                     JSON.map(json.dumps)))
def test_garbage_model_json_and_manifest_are_one_line_errors(saved_model: Path, raw: str) -> None:
    from transferkit.exceptions import ModelFileError

    root = Path(tempfile.mkdtemp(prefix="tk-fuzz-"))
    try:
        for target in ("model.json", "manifest.json"):
            folder = root / target
            shutil.copytree(saved_model, folder)
            if target == "model.json":
                rewrite(folder, None, raw=raw)
            else:
                (folder / "manifest.json").write_text(raw, encoding="utf-8")
            with pytest.raises(ModelFileError) as info:
                load_model(folder)
            assert "\n" not in str(info.value)
    finally:
        shutil.rmtree(root, ignore_errors=True)
