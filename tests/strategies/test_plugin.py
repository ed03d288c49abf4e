"""The plug-in point: a strategy registered from this file alone (no file of the package edited) works
through TransferClassifier, `transferkit fit --strategy`, save → load → predict, export and the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from transferkit import FeatureExtractor, TransferClassifier, load_model
from transferkit.cli import app
from transferkit.evaluation.page import Section, template
from transferkit.heads import HeadArrays
from transferkit.strategies import STRATEGIES, Strategy, register_strategy

from ..conftest import make_images


class NearestCentroid(Strategy):
    """Each class is the mean of its frozen embeddings; an item goes to the nearest one (squared
    Euclidean distance, as a linear head: logits ``2 x·c − ‖c‖²``)."""

    name = "nearest-centroid"
    summary = "the nearest class centroid of the frozen embeddings"

    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        extractor = self.extractor()
        features = extractor.extract(X)
        centroids = np.stack([features[y_index == c].mean(0) for c in range(n_classes)])
        dim = features.shape[1]
        self.head = HeadArrays("centroid", np.zeros(dim), np.ones(dim), [2 * centroids], [-(centroids**2).sum(1)])
        self.weights_id = extractor.identity()["weights"]
        self.n_features = dim
        self.engine = extractor.engine_used_ or "cache"

    def report_sections(self, results: dict[str, Any]) -> list[Section]:
        assert self.head is not None
        own = template("<p>{{ n }} centroids of {{ dim }} features; classes: {{ classes | join(', ') }}</p>")
        return [Section("centroids", "Class centroids", template=own, context={
            "n": len(self.head.biases[0]), "dim": self.n_features, "classes": results["metrics"]["labels"]})]


@pytest.fixture
def plugin() -> Iterator[str]:
    register_strategy(NearestCentroid)
    yield NearestCentroid.name
    STRATEGIES.unregister(NearestCentroid.name)


def _nearest_centroid(F_train: np.ndarray, y: np.ndarray, F_test: np.ndarray) -> np.ndarray:
    classes = np.unique(y)
    centroids = np.stack([F_train[y == c].mean(0) for c in classes])
    d = ((F_test[:, None, :] - centroids[None]) ** 2).sum(-1)
    return classes[d.argmin(1)]


def test_plugin_strategy_through_the_estimator_save_load_and_export(plugin: str, tiny_backbone: str,
                                                                     tmp_path: Path) -> None:
    X, y = make_images(15)
    Xt, yt = make_images(8, seed=5)
    clf = TransferClassifier(tiny_backbone, strategy=plugin, progress=False).fit(X, y)
    fe = FeatureExtractor(tiny_backbone, progress=False).fit()
    want = _nearest_centroid(fe.transform(X), y, fe.transform(Xt))  # computed independently of the strategy
    assert np.array_equal(clf.predict(Xt), want)
    assert clf.score(Xt, yt) > 0.6  # chance is 1/3
    loaded = load_model(clf.save(tmp_path / "m"))
    assert loaded.strategy_.name == plugin and np.array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))

    import onnxruntime as ort

    from transferkit.export import export_onnx

    export_onnx(loaded, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    pixels = np.repeat(Xt[..., None], 3, axis=-1)  # tiny-cnn's own size: no resize needed
    probs = session.run(None, {"pixels": pixels})[0]
    assert np.array_equal(clf.classes_[probs.argmax(1)], want)


def test_plugin_strategy_through_the_cli_and_the_report(plugin: str, tiny_backbone: str, image_folder: Path,
                                                       tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(app, ["fit", str(image_folder), "--backbone", tiny_backbone, "--strategy", plugin,
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["strategy"] == plugin and results["model"]["head"] == "centroid"
    assert results["comparison"][0]["strategy"] == plugin
    html = (out / "report.html").read_text()
    assert plugin in html
    # the strategy's own section, from its own template, between the plots and the comparison table
    assert '<section id="centroids">' in html and "<p>3 centroids of" in html
    assert html.index('id="plots"') < html.index('id="centroids"') < html.index('id="comparison"')
    pred = runner.invoke(app, ["predict", str(out), str(image_folder), "--no-progress"])
    assert pred.exit_code == 0 and pred.stdout.count("\n") == 31  # header + 30 images
    # another strategy's options are refused, naming the strategy that reads them
    bad = runner.invoke(app, ["fit", str(image_folder), "--backbone", tiny_backbone, "--strategy", plugin,
                              "--epochs", "3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--epochs only apply to --strategy fine-tune" in bad.stderr
    unknown = runner.invoke(app, ["fit", str(image_folder), "--strategy", "nearest-centroids"])
    assert unknown.exit_code == 2 and "did you mean 'nearest-centroid'" in unknown.stderr
