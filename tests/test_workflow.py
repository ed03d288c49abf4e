"""run_fit: splits, outputs, and never leaving a half-updated model directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_images
from transferkit.data import Dataset
from transferkit.exceptions import DataError
from transferkit.workflow import run_fit, split_dataset


def _dataset(n: int = 12) -> Dataset:
    X, y = make_images(n)
    return Dataset(X=X, y=np.asarray(["h", "v", "b"])[y], modality="image", name="synthetic")


def test_split_is_stratified_and_keeps_every_class() -> None:
    train, test = split_dataset(_dataset(10), 0.2, seed=0)
    assert len(train) + len(test) == 30
    assert sorted(set(test.y)) == sorted(set(train.y)) == ["b", "h", "v"]
    with pytest.raises(DataError, match="class 'h' has only 1 item"):
        split_dataset(Dataset(X=np.zeros((3, 8, 8), np.uint8), y=np.array(["h", "v", "v"]), modality="image"), 0.2, 0)


def test_run_fit_outputs(tiny_backbone: str, tmp_path: Path) -> None:
    results = run_fit(_dataset(), tmp_path / "m", backbone=tiny_backbone, progress=False)
    assert results["dataset"]["n_train"] + results["dataset"]["n_test"] == 36
    assert results["metrics"]["accuracy"] > 0.6
    assert results["model"]["backbone"] == tiny_backbone
    assert {p.name for p in (tmp_path / "m").iterdir()} == {"model.json", "manifest.json", "head.safetensors", "results.json",
                                                            "report.html"}


def test_a_failing_run_leaves_the_previous_outputs_intact(tiny_backbone: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "m"
    run_fit(_dataset(), out, backbone=tiny_backbone, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(results: dict, sections: object = ()) -> str:
        raise RuntimeError("plotting failed")

    import transferkit.evaluation.report as report

    monkeypatch.setattr(report, "report_html", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        run_fit(_dataset(), out, backbone=tiny_backbone, head="svm", progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
