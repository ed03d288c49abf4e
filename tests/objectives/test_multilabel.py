"""Multi-label tagging: sigmoid outputs, per-tag thresholds, F1 metrics, save/load, and tag errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_images
from transferkit import TransferClassifier
from transferkit.estimators import load_model
from transferkit.exceptions import DataError
from transferkit.objectives import MultiLabel


def _tags(labels: np.ndarray) -> list[str]:
    """Tags of the synthetic images: the shape, and 'striped' for both stripe classes."""
    names = {0: "horizontal;striped", 1: "vertical;striped", 2: "blob"}
    return [names[int(v)] for v in labels]


@pytest.mark.parametrize("strategy", ["feature-extraction", "fine-tune"])
def test_multilabel_learns_and_round_trips(tiny_backbone: str, tmp_path: Path, strategy: str) -> None:
    X, y = make_images(16)
    Xt, yt = make_images(8, seed=3)
    model = TransferClassifier(tiny_backbone, multilabel=True, strategy=strategy, epochs=2, head_epochs=4).fit(X, _tags(y))
    assert list(model.classes_) == ["blob", "horizontal", "striped", "vertical"]
    pred = model.predict(Xt)
    assert pred.shape == (len(Xt), 4) and set(np.unique(pred)) <= {0, 1}
    metrics = model.objective_.metrics(_tags(yt), pred)
    assert metrics["f1_micro"] > 0.7 and set(metrics["per_label"]) == set(model.classes_)
    probs = model.predict_proba(Xt)
    assert probs.shape == pred.shape and ((probs >= 0) & (probs <= 1)).all()
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(load_model(tmp_path / "m").predict(Xt), pred)


def test_tag_errors() -> None:
    with pytest.raises(DataError, match="empty tag name in 'red;;cotton'"):
        MultiLabel().fit_encode(["red;;cotton", "red"])
    with pytest.raises(DataError, match="tag 'red' is on every item"):
        MultiLabel().fit_encode(["red;cotton", "red"])


def test_thresholds_are_tuned_per_tag() -> None:
    from transferkit.objectives.multilabel import best_threshold

    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.2
    probs = np.clip(0.25 * y + rng.normal(0.1, 0.05, 300), 0, 1)  # calibrated low: 0.5 would find no positive
    t = best_threshold(y, probs)
    assert 0.1 < t < 0.4
    assert ((probs >= t) == y).mean() > 0.9


def test_multilabel_onnx_gives_each_tags_sigmoid(tiny_backbone: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    from transferkit.export import export_onnx, probe_inputs

    X, y = make_images(10)
    model = TransferClassifier(tiny_backbone, multilabel=True).fit(X, _tags(y))
    export_onnx(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    images, feeds = probe_inputs(model.strategy_.extractor().backbone, 3)
    got = session.run(None, {i.name: np.asarray(feeds[i.name]) for i in session.get_inputs()})[0]
    np.testing.assert_allclose(got, model.predict_proba(images), atol=1e-5)
    assert not np.allclose(got.sum(1), 1.0)  # independent sigmoids, not one softmax
