"""Outputs: bad output paths fail before any work with one line and exit 2; every output is replaced in
one step, so a failed write (a full disk, simulated) leaves the previous output intact and no debris."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferkit.cli import app

runner = CliRunner()


def run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()  # progress lines may come first; the error is the one last line
    assert lines[-1].startswith("error: ") and "Traceback" not in stderr and stderr.count("error: ") == 1, stderr
    for n in needles:
        assert n in stderr, stderr


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def fitted(tiny_backbone: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from PIL import Image

    from ..conftest import make_images

    root = tmp_path_factory.mktemp("fit")
    X, y = make_images(n_per_class=8)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        (root / "data" / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "data" / f"c{label}" / f"{i}.png")
    code, stderr = run("fit", root / "data", "--backbone", tiny_backbone, "--out", root / "model", "--no-progress")
    assert code == 0, stderr
    return root / "data", root / "model"


def test_fit_out_that_is_a_file_or_under_one_fails_before_reading_data(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    # the data does not exist: the --out error comes first, so nothing was read or trained
    one_line_error(*run("fit", tmp_path / "no-data", "--out", tmp_path / "file"), "is a file", "--out")
    one_line_error(*run("fit", tmp_path / "no-data", "--out", tmp_path / "file" / "m"), "which is a file")
    assert (tmp_path / "file").read_text() == "mine"


def test_predict_output_that_is_a_folder_or_under_a_file(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    data, model = fitted
    (tmp_path / "file").write_text("mine")
    one_line_error(*run("predict", model, data, "--output", tmp_path), "--output", "is a folder")
    one_line_error(*run("predict", model, data, "--output", tmp_path / "file" / "p.csv"), "which is a file")
    # checked before the model is even loaded
    one_line_error(*run("predict", tmp_path / "no-model", data, "--output", tmp_path), "--output")


def test_export_under_a_file_or_onto_a_folder(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    _, model = fitted
    (tmp_path / "file").write_text("mine")
    one_line_error(*run("export", model, "--onnx", tmp_path / "file" / "m.onnx"), "--onnx", "which is a file")
    one_line_error(*run("export", model, "--onnx", tmp_path), "--onnx", "is a folder")


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_the_old_model_folder_intact(fitted: tuple[Path, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch, tiny_backbone: str) -> None:
    import shutil

    data, model = fitted
    out = tmp_path / "model"
    shutil.copytree(model, out)
    before = snapshot(tmp_path)
    import transferkit.io as tkio

    monkeypatch.setattr(tkio, "_save_tensors", _disk_full)  # the disk fills while the new folder is written
    code, stderr = run("fit", data, "--backbone", tiny_backbone, "--out", out, "--no-progress", "--seed", "3")
    one_line_error(code, stderr, "No space left on device", "intact")
    assert snapshot(tmp_path) == before  # same files, same bytes, no temporary sibling left
    monkeypatch.undo()
    from transferkit import load_model

    load_model(out)  # and it still loads


def test_a_full_disk_leaves_the_old_predictions_intact(fitted: tuple[Path, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data, model = fitted
    preds = tmp_path / "preds.csv"
    assert run("predict", model, data, "--output", preds, "--no-progress")[0] == 0
    before = snapshot(tmp_path)
    monkeypatch.setattr(Path, "write_bytes", _disk_full)
    one_line_error(*run("predict", model, data, "--output", preds, "--proba", "--no-progress"),
                   "No space left on device", "unchanged")
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


def test_the_manifest_lists_every_file_and_load_names_a_changed_report(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    from transferkit import load_model
    from transferkit.exceptions import ModelFileError

    out = tmp_path / "m"
    shutil.copytree(fitted[1], out)
    listed = set(json.loads((out / "manifest.json").read_text())["files"])
    assert listed == {p.name for p in out.iterdir()} - {"manifest.json"}
    with (out / "report.html").open("a") as fh:
        fh.write("<script>alert(1)</script>")
    with pytest.raises(ModelFileError, match="report.html"):
        load_model(out)
