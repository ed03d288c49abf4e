"""The from-scratch baseline (a small CNN trained from random init through the shared loop): it learns, and it is
not handicapped by its own set-up — the baseline of every fine-tuning verdict has to be a fair one."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_images
from transferkit.estimators import SmallCNNClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: see tests/conftest.py


def test_from_scratch_cnn_baseline_learns() -> None:
    X, y = make_images(20)
    clf = SmallCNNClassifier(widths=(8, 16), epochs=12, random_state=0).fit(X, y)
    Xt, yt = make_images(10, seed=4)
    assert clf.score(Xt, yt) >= 0.8
    assert "trained from random init on 32×32" in clf.description_
    assert clf.history_["stages"][0]["name"] == "scratch"


def test_random_init_cnn_is_not_standardised_by_its_untrained_statistics() -> None:
    # the untrained CNN's eval-mode features barely vary (std ~1e-2 after two blocks, ~1e-3 after six); dividing
    # by that scaled the logits up as soon as BatchNorm learnt — first-epoch loss in the hundreds on real images
    X, y = make_images(20)
    clf = SmallCNNClassifier(widths=(8, 16), epochs=4, patience=None, random_state=0).fit(X, y)
    assert np.allclose(clf.head_.mean, 0.0) and np.allclose(clf.head_.scale, 1.0)
    losses = [e["train_loss"] for e in clf.history_["epochs"]]
    assert all(np.isfinite(losses)) and losses[0] < 2 * np.log(3), losses  # chance-level loss is ln 3
