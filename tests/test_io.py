"""The model folder: written whole and atomically, verified by its manifest, older formats still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from transferkit import TransferClassifier, load_model
from transferkit._utils import sha256_file
from transferkit.exceptions import ModelFileError
from transferkit.io import check_output_folder, write_folder

from .conftest import make_images

FIXTURES = Path(__file__).parent / "fixtures" / "models_v1"


@pytest.mark.parametrize("kind", ["fe", "ft"])
def test_models_saved_before_the_strategy_registry_still_load(tiny_backbone: str, tiny_weights: Path,
                                                               tmp_path: Path, kind: str) -> None:
    """tests/fixtures/models_v1 was written by transferkit 829de71 (format 1: feature extraction and
    fine-tuning on tiny-cnn) with its predictions on fixed inputs; loading gives the same predictions."""
    expected = json.loads((FIXTURES / "expected.json").read_text())
    assert sha256_file(tiny_weights) == expected["weights_sha256"]  # the session's tiny-cnn is the same network
    folder = tmp_path / kind
    shutil.copytree(FIXTURES / kind, folder)
    model = load_model(folder)
    X = np.load(FIXTURES / "inputs.npy")
    assert model.predict(X).tolist() == expected[kind]["pred"]
    np.testing.assert_allclose(model.predict_proba(X), expected[kind]["proba"], rtol=0, atol=1e-6)
    assert model.strategy_.name == {"fe": "feature-extraction", "ft": "fine-tune"}[kind]
    # re-saving writes the current format, with a manifest, and keeps the predictions
    again = load_model(model.save(tmp_path / f"{kind}-v2"))
    assert json.loads((tmp_path / f"{kind}-v2" / "model.json").read_text())["format_version"] == 2
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))


def test_a_model_json_cannot_point_the_loader_at_weights_elsewhere(tiny_backbone: str, tmp_path: Path) -> None:
    """Loading resolves a registered backbone by name: the folder's own weights source is ignored, and an
    unregistered backbone gets no package, URL or path from the folder."""
    X, y = make_images(8)
    d = TransferClassifier(tiny_backbone, cache=False, progress=False).fit(X, y).save(tmp_path / "m")
    doc = json.loads((d / "model.json").read_text())
    doc["backbone"]["weights"].update(package="evil-package", url="http://127.0.0.1:9/x.pth", local_path="/etc/passwd")
    doc["backbone"]["name"] = "not-registered-here"
    (d / "model.json").write_text(json.dumps(doc))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"]["model.json"]["sha256"] = sha256_file(d / "model.json")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="no online source recorded.*pass a local weights file") as info:
        load_model(d)
    assert "evil-package" not in str(info.value) and "/etc/passwd" not in str(info.value)
    doc["backbone"]["name"] = "../../outside"
    (d / "model.json").write_text(json.dumps(doc))
    manifest["files"]["model.json"]["sha256"] = sha256_file(d / "model.json")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="not allowed"):
        load_model(d)


def test_write_folder_replaces_the_whole_folder_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m"
    doc = {"format": "transferkit-model", "format_version": 2}
    write_folder(out, doc, {"a.safetensors": {"x": np.arange(3.0)}}, {"results.json": "{}\n"})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"a.safetensors", "model.json", "manifest.json", "results.json"}

    import transferkit.io as io

    def broken(path: Path, tensors: dict) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io, "_save_tensors", broken)
    with pytest.raises(OSError, match="disk full"):
        write_folder(out, doc, {"b.safetensors": {"x": np.zeros(2)}})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old folder, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary sibling left behind
    monkeypatch.undo()
    write_folder(out, doc, {"b.safetensors": {"x": np.zeros(2)}})
    assert {p.name for p in out.iterdir()} == {"b.safetensors", "model.json", "manifest.json"}  # replaced whole


def test_output_folder_checks(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelFileError, match="is a file"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(ModelFileError, match="which is a file"):
        check_output_folder(tmp_path / "file" / "m")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ModelFileError, match=r"already holds files that transferkit did not write \(notes.txt\)"):
        check_output_folder(tmp_path / "mine")
    assert check_output_folder(tmp_path / "new" / "m") == tmp_path / "new" / "m"
