"""Regression: the ridge head recovers a linear target, fine-tuning learns one, the verdict is on the error,
save/load and ONNX keep the target's units, and text targets give a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import r2_score

from tests.conftest import make_images
from transferkit import FeatureExtractor, TransferRegressor
from transferkit.estimators import load_model
from transferkit.exceptions import DataError
from transferkit.objectives import Regression


def test_ridge_head_recovers_a_linear_target_of_the_embeddings(tiny_backbone: str) -> None:
    X, _ = make_images(30)
    Xt, _ = make_images(10, seed=4)
    E, Et = (FeatureExtractor(tiny_backbone).fit(X).transform(A) for A in (X, Xt))
    w = np.random.default_rng(0).normal(size=E.shape[1])
    y, yt = 1000.0 + 50.0 * E @ w, 1000.0 + 50.0 * Et @ w  # far from zero, far from unit scale
    model = TransferRegressor(tiny_backbone, head_params={"power": 1.0}).fit(X, y)
    assert r2_score(yt, model.predict(Xt)) > 0.99
    assert model.score(Xt, yt) == pytest.approx(r2_score(yt, model.predict(Xt)))
    assert abs(float(np.mean(model.predict(Xt) - yt))) < 0.05 * float(np.std(yt))


def test_fine_tuned_regressor_learns_and_round_trips(tiny_backbone: str, tmp_path: Path) -> None:
    X, labels = make_images(20)
    y = labels * 10.0 + 5.0  # a number per shape
    Xt, lt = make_images(8, seed=2)
    model = TransferRegressor(tiny_backbone, strategy="fine-tune", epochs=2, head_epochs=4).fit(X, y)
    assert model.score(Xt, lt * 10.0 + 5.0) > 0.5
    model.save(tmp_path / "r")
    np.testing.assert_array_equal(load_model(tmp_path / "r").predict(Xt), model.predict(Xt))
    assert clone(model).get_params() == model.get_params()


def test_regression_verdict_is_on_the_error() -> None:
    objective = Regression()
    y = np.linspace(0, 10, 200)
    objective.fit_encode(y)
    good, bad = y + 0.1, y + np.random.default_rng(0).normal(0, 3, 200)
    v = objective.verdict(y, good, bad, baseline_name="ridge on raw pixels", modality="image", seed=0)
    assert v["verdict"] == "positive transfer" and v["metric"] == "mae" and v["ci_low"] > 0
    v = objective.verdict(y, bad, good, baseline_name="ridge on raw pixels", modality="image", seed=0)
    assert v["verdict"] == "negative transfer" and "negative transfer" in v["explanation"]
    assert set(objective.metrics(y, good)) >= {"mae", "rmse", "r2"}


def test_text_in_a_regression_target_is_a_one_line_error() -> None:
    with pytest.raises(DataError, match="'cheap'") as info:
        Regression().fit_encode(["1.5", "2", "cheap"])
    assert "\n" not in str(info.value)


def test_regressor_follows_the_scikit_learn_contract(tiny_backbone: str) -> None:
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, labels = make_images(12)
    y = labels * 2.0 + 1.0
    search = GridSearchCV(TransferRegressor(tiny_backbone), {"head_params": [{"alpha": 1e-3}, {"alpha": 1e6}]}, cv=2).fit(X, y)
    assert search.best_params_ == {"head_params": {"alpha": 1e-3}}  # a huge penalty flattens every prediction
    scores = cross_val_score(TransferRegressor(tiny_backbone), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.5


def test_regression_onnx_gives_values_in_the_targets_units(tiny_backbone: str, tmp_path: Path) -> None:
    import onnxruntime as ort

    from transferkit.export import export_onnx, probe_inputs

    X, labels = make_images(10)
    model = TransferRegressor(tiny_backbone).fit(X, 100.0 + 7.0 * labels)
    export_onnx(model, tmp_path / "r.onnx")
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    images, feeds = probe_inputs(model.strategy_.extractor().backbone, 3)
    got = session.run(None, {i.name: np.asarray(feeds[i.name]) for i in session.get_inputs()})[0]
    np.testing.assert_allclose(got.ravel(), model.predict(images), rtol=1e-5)
    assert 90 < float(got.mean()) < 125
