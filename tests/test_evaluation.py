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
    with pytest.raises(ValueError, match="no baseline"):
        strongest_baseline(y, [])


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
