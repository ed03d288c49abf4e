"""Heads: they learn, their array form predicts exactly like scikit-learn, bad parameters are explained."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.exceptions import ConfigError, UnknownNameError
from transferkit.heads import HeadArrays, fit_head, signed_power


def _blobs(n_classes: int = 3, n: int = 40, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(n_classes, d))
    y = np.repeat(np.arange(n_classes), n)
    return centers[y] + rng.normal(size=(len(y), d)) * 2.0 + 5.0, y


def _train_test(n_classes: int = 3, n: int = 40, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``n`` training and ``n`` held-out items per class, drawn around the same class centres."""
    X, y = _blobs(n_classes, 2 * n, seed=seed)
    return X[0::2], y[0::2], X[1::2], y[1::2]


@pytest.mark.parametrize("kind", ["logreg", "svm", "mlp"])
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("non_negative", [False, True])
def test_head_learns_and_arrays_match_sklearn(kind: str, n_classes: int, non_negative: bool) -> None:
    X, y, Xt, yt = _train_test(n_classes)
    if non_negative:  # like pooled post-ReLU activations: "auto" power normalisation applies
        X, Xt = np.maximum(X, 0.0), np.maximum(Xt, 0.0)
    arrays, est = fit_head(kind, X, y, random_state=0)
    assert arrays.power == (0.5 if non_negative else 1.0) == arrays.params["power"]
    Z = (signed_power(X, arrays.power) - arrays.mean) / arrays.scale
    assert np.array_equal(arrays.predict_index(X), est.predict(Z))
    assert (arrays.predict_index(Xt) == yt).mean() > 0.8  # held-out items: well above chance (≤ 0.5)
    if kind != "svm":
        p = arrays.predict_proba(X)
        assert np.allclose(p.sum(axis=1), 1.0)
        assert np.allclose(p, est.predict_proba(Z), atol=1e-8)
    else:
        with pytest.raises(AttributeError, match="no probabilities"):
            arrays.predict_proba(X)
    assert arrays.params.get("selected_by", "").startswith("5-fold CV")


def test_shuffled_labels_do_not_generalise() -> None:
    X, y, Xt, yt = _train_test(3, n=60)  # the same class centres for training and held-out items
    real, _ = fit_head("logreg", X, y)
    assert (real.predict_index(Xt) == yt).mean() > 0.8
    shuffled, _ = fit_head("logreg", X, np.random.default_rng(1).permutation(y))
    assert (shuffled.predict_index(Xt) == yt).mean() < 0.6


def test_user_parameters_skip_cv_and_tiny_classes_fall_back() -> None:
    X, y = _blobs(2)
    arrays, _ = fit_head("logreg", X, y, {"C": 0.5, "power": 1})
    assert arrays.params == {"C": 0.5, "selected_by": "user", "power": 1.0}
    X1 = np.vstack([X[:5], X[-1:]])
    y1 = np.array([0, 0, 0, 0, 0, 1])
    arrays, _ = fit_head("logreg", X1, y1)
    assert "too few items per class" in arrays.params["selected_by"]


def test_bad_head_and_parameters() -> None:
    X, y = _blobs(2)
    with pytest.raises(UnknownNameError, match="did you mean 'logreg'"):
        fit_head("logref", X, y)
    with pytest.raises(ConfigError, match=r"no parameter 'c'.*did you mean 'C'"):
        fit_head("logreg", X, y, {"c": 1.0})
    with pytest.raises(ConfigError, match="positive"):
        fit_head("svm", X, y, {"C": -1})
    for bad in (0, 1.5, "sqrt", True):
        with pytest.raises(ConfigError, match=r"power=.* must be 'auto' or a number in \(0, 1\]"):
            fit_head("logreg", X, y, {"power": bad})
    X[0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        fit_head("logreg", X, y)


def test_power_normalisation_auto_rule_and_choice() -> None:
    X, y = _blobs(3)
    assert X.min() < 0
    signed, _ = fit_head("logreg", X, y, {"C": 1.0})
    assert signed.power == 1.0 and "negative" in signed.params["power_selected_by"]
    P = np.abs(X)
    auto, _ = fit_head("logreg", P, y, {"C": 1.0})
    assert auto.power == 0.5 and "non-negative" in auto.params["power_selected_by"]
    # the head standardises the square roots: its mean is theirs, not the raw features'
    assert np.allclose(auto.mean, np.sqrt(P).mean(axis=0))
    forced, _ = fit_head("logreg", P, y, {"C": 1.0, "power": 1.0})
    assert forced.power == 1.0 and "power_selected_by" not in forced.params
    assert not np.allclose(forced.logits(P), auto.logits(P))
    # signed: negative values keep their sign
    assert np.array_equal(signed_power(np.array([[-4.0, 9.0]]), 0.5), np.array([[-2.0, 3.0]]))


def test_arrays_round_trip_through_tensors() -> None:
    X, y = _blobs(3)
    for features in (X, np.abs(X)):  # power 1 and 0.5
        arrays, _ = fit_head("mlp", features, y, {"alpha": 0.1, "hidden": 16})
        again = HeadArrays.from_tensors(arrays.meta(), arrays.to_tensors())
        assert again.power == arrays.power
        assert np.array_equal(again.logits(features), arrays.logits(features))
    # a head saved before power normalisation existed (no "power" in its metadata) loads as power 1
    old_meta = {k: v for k, v in arrays.meta().items() if k != "power"}
    assert HeadArrays.from_tensors(old_meta, arrays.to_tensors()).power == 1.0


@pytest.mark.parametrize("non_negative", [False, True])
def test_torch_module_matches_arrays(non_negative: bool) -> None:
    import torch

    X, y = _blobs(3)
    if non_negative:
        X = np.abs(X)
    for kind in ("logreg", "mlp", "svm"):
        arrays, _ = fit_head(kind, X, y, {"C": 1.0} if kind != "mlp" else {"alpha": 0.1})
        assert arrays.power == (0.5 if non_negative else 1.0)
        with torch.no_grad():
            out = arrays.torch_module()(torch.tensor(X, dtype=torch.float32)).numpy()
        want = arrays.predict_proba(X) if arrays.probabilistic else arrays.logits(X)
        assert np.max(np.abs(out - want)) < 1e-4
