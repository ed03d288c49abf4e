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


def _blob_side_dataset(n_per_class: int = 40, size: int = 32, seed: int = 0) -> Dataset:
    """A bright spot left of centre or right of centre, at a random height: the class is *where* it is."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for _ in range(n_per_class):
        for label, (lo, hi) in (("left", (9, 12)), ("right", (20, 23))):
            cy, cx = rng.uniform(10, 22), rng.uniform(lo, hi)
            spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 2.5 ** 2))
            images.append(np.clip(60 + 150 * spot + rng.normal(0, 8, (size, size)), 0, 255).astype(np.uint8))
            labels.append(label)
    return Dataset(X=np.stack(images), y=np.asarray(labels), modality="image", name="blob-side")


def test_transfer_that_clearly_loses_is_called_negative(tiny_backbone: str, tmp_path: Path) -> None:
    """The tiny CNN (seeded random weights) average-pools its feature maps, which throws away where the spot is;
    a logistic regression on the raw pixels reads it directly."""
    results = run_fit(_blob_side_dataset(), tmp_path / "m", backbone=tiny_backbone, report=False, progress=False)
    verdict = results["verdict"]
    assert results["baseline"]["metrics"]["accuracy"] >= 0.95 and results["metrics"]["accuracy"] <= 0.8
    assert verdict["verdict"] == "negative transfer", verdict
    assert verdict["ci_low"] <= verdict["gain"] <= verdict["ci_high"] < 0
    assert "negative transfer" in verdict["explanation"]


def test_transfer_that_clearly_wins_is_called_positive(tiny_backbone: str, tmp_path: Path) -> None:
    """Horizontal or vertical stripes at random phase and period: the orientation survives the CNN's pooling,
    but no fixed pixel carries it."""
    X, y = make_images(40, n_classes=2)
    stripes = Dataset(X=X, y=np.asarray(["h", "v"])[y], modality="image", name="stripes")
    results = run_fit(stripes, tmp_path / "m", backbone=tiny_backbone, report=False, progress=False)
    verdict = results["verdict"]
    assert verdict["verdict"] == "positive transfer", verdict
    assert results["metrics"]["accuracy"] >= 0.9 and results["baseline"]["metrics"]["accuracy"] <= 0.7
    assert 0 < verdict["ci_low"] <= verdict["gain"] <= verdict["ci_high"]
    assert verdict["gain"] == pytest.approx(results["metrics"]["accuracy"] - results["baseline"]["metrics"]["accuracy"])


def test_fitting_twice_gives_identical_results_and_verdict(tiny_backbone: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs, the second with an empty embedding cache (features computed again): every number, the
    verdict, the projection and the saved head are identical; only the clock and cache counters differ."""
    import json

    def stable(d: Path) -> dict:
        results = json.loads((d / "results.json").read_text())
        for volatile in ("created", "timings", "extraction"):
            results.pop(volatile)
        for row in results["comparison"]:
            row.pop("time_s")
        return results

    first = run_fit(_dataset(), tmp_path / "a", backbone=tiny_backbone, report=False, progress=False)
    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(tmp_path / "fresh-cache"))
    second = run_fit(_dataset(), tmp_path / "b", backbone=tiny_backbone, report=False, progress=False)
    assert second["extraction"]["cached"] == 0 and second["extraction"]["computed"] > 0
    assert first["verdict"] == second["verdict"]
    assert stable(tmp_path / "a") == stable(tmp_path / "b")
    assert (tmp_path / "a" / "head.safetensors").read_bytes() == (tmp_path / "b" / "head.safetensors").read_bytes()
    assert (tmp_path / "a" / "model.json").read_bytes() == (tmp_path / "b" / "model.json").read_bytes()
