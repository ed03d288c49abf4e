"""Metrics, the bootstrap verdict and the baselines."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_images
from transferkit.evaluation.baselines import RawPixelClassifier, TfidfClassifier
from transferkit.evaluation.metrics import classification_metrics
from transferkit.evaluation.verdict import (
    NEGATIVE,
    NONE,
    POSITIVE,
    bootstrap_gain,
    strongest_baseline,
    transfer_verdict,
    verdict_from_seed_gains,
    verdict_metric,
)


def test_metrics_match_sklearn() -> None:
    from sklearn.metrics import f1_score

    y = np.array(["a", "b", "c", "a", "b", "c", "a"])
    p = np.array(["a", "b", "b", "a", "c", "c", "b"])
    m = classification_metrics(y, p, labels=["a", "b", "c"], names=["A", "B", "C"])
    assert m["accuracy"] == pytest.approx(4 / 7)
    assert m["f1_macro"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 1, 1]]
    assert m["per_class"]["A"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8), "support": 3}


def _preds(n: int, acc_t: float, acc_b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    t = np.where(rng.random(n) < acc_t, y, (y + 1) % 5)
    b = np.where(rng.random(n) < acc_b, y, (y + 2) % 5)
    return y, t, b


def test_verdicts() -> None:
    assert transfer_verdict(*_preds(2000, 0.9, 0.7))["verdict"] == POSITIVE
    assert transfer_verdict(*_preds(2000, 0.6, 0.8))["verdict"] == NEGATIVE
    assert transfer_verdict(*_preds(200, 0.80, 0.80, seed=3))["verdict"] == NONE
    v = transfer_verdict(*_preds(2000, 0.6, 0.8), baseline_name="raw-pixel logistic regression")
    assert "negative transfer" in v["explanation"] and any("layer" in s for s in v["next_steps"])
    assert v["ci_low"] <= v["gain"] <= v["ci_high"] < 0


def test_verdict_baseline_is_the_strongest_from_scratch_model() -> None:
    y, good, weak = _preds(500, 0.9, 0.3)
    assert strongest_baseline(y, [weak, good]) == 1 and strongest_baseline(y, [good, weak]) == 0
    assert strongest_baseline(y, [good, good.copy()]) == 0  # a tie keeps the first
    y = np.array([0] * 90 + [1] * 10)
    majority, balanced = np.zeros(100, int), np.r_[np.zeros(80, int), np.ones(20, int)]  # acc 0.9 vs 0.9, bal 0.5 vs 0.94
    assert strongest_baseline(y, [majority, balanced]) == 1 and strongest_baseline(y, [majority, balanced], "accuracy") == 0
    with pytest.raises(ValueError, match="no baseline"):
        strongest_baseline(y, [])


def test_imbalanced_test_set_gets_a_balanced_accuracy_verdict() -> None:
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    y = np.array(["a"] * 300 + ["b"] * 30 + ["c"] * 20)
    labels = np.array(["a", "b", "c"])
    finds_rare = np.where(rng.random(y.size) < 0.8, y, labels[(np.searchsorted(labels, y) + 1) % 3])
    majority = np.full(y.size, "a")
    gain, lo, hi = bootstrap_gain(finds_rare == y, majority == y, classes=y, n_resamples=500)
    assert gain == pytest.approx(balanced_accuracy_score(y, finds_rare) - balanced_accuracy_score(y, majority))
    assert 0 < lo < gain < hi
    # accuracy rewards always answering the majority class; balanced accuracy does not
    assert transfer_verdict(y, finds_rare, majority, metric="accuracy")["verdict"] == NEGATIVE
    v = transfer_verdict(y, finds_rare, majority)
    assert v["metric"] == "recall_macro" and v["verdict"] == POSITIVE and "balanced accuracy" in v["explanation"]
    assert verdict_metric(y) == "recall_macro" and verdict_metric(y[:330], "accuracy") == "accuracy"
    assert verdict_metric(np.array([0] * 30 + [1] * 16)) == "accuracy"  # below 2:1 plain accuracy stays
    with pytest.raises(ValueError, match="verdict metric 'f1' is not one of auto, accuracy, recall_macro"):
        verdict_metric(y, "f1")


def test_bootstrap_interval_covers_the_truth() -> None:
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(40):
        a = rng.random(400) < 0.8
        b = rng.random(400) < 0.75
        _, lo, hi = bootstrap_gain(a, b, n_resamples=500, seed=trial)
        covered += lo <= 0.05 <= hi
    assert covered >= 34  # nominal 95 %: 38 of 40 expected


def test_seed_level_verdict() -> None:
    assert verdict_from_seed_gains([0.05, 0.06, 0.04])["verdict"] == POSITIVE
    assert verdict_from_seed_gains([0.05, -0.06, 0.01])["verdict"] == NONE
    with pytest.raises(ValueError):
        verdict_from_seed_gains([0.1])


def test_raw_pixel_baseline_learns_and_uses_native_size() -> None:
    X, y = make_images(15, size=24)
    Xt, yt = make_images(10, size=24, seed=1)
    clf = RawPixelClassifier().fit(X, y)
    assert clf.input_size_ == 24 and clf.grey_
    assert clf.score(Xt, yt) > 0.6
    assert "24×24 grey pixels" in clf.description_


def test_tfidf_baseline_learns() -> None:
    pos = ["a wonderful film", "great acting and a great story", "wonderful and moving", "a great film"] * 3
    neg = ["a terrible film", "awful acting and a dull story", "terrible and boring", "a dull film"] * 3
    clf = TfidfClassifier().fit(pos + neg, ["pos"] * 12 + ["neg"] * 12)
    assert clf.predict(["what a great story", "so dull and terrible"]).tolist() == ["pos", "neg"]
