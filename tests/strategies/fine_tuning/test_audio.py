"""Fine-tuning an audio backbone (CREPE tiny) with the shared loop and waveform augmentation: it learns,
the frozen blocks stay bit-identical, and save → load gives identical predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from tests.backbones.test_audio import need  # noqa: E402
from tests.data.test_audio import tone  # noqa: E402
from transferkit import TransferClassifier, load_model  # noqa: E402


def _tones(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    freqs = {"low": 220.0, "mid": 440.0, "high": 880.0}
    X, y = [], []
    for i in range(n):
        for label, f in freqs.items():
            X.append(tone(f * (1 + 0.02 * (i - n / 2)), seconds=0.4, seed=seed * 100 + i))
            y.append(label)
    return X, np.asarray(y)


def test_crepe_fine_tuning_learns_keeps_frozen_blocks_and_round_trips(tmp_path: Path) -> None:
    need("crepe-tiny")
    torch.set_num_threads(2)
    X, y = _tones(8, seed=0)
    clf = TransferClassifier("crepe-tiny", strategy="fine-tune", unfreeze="top-1", epochs=3, head_epochs=4,
                             augment="light", progress=False, random_state=0).fit(X, y)
    epochs = clf.history_["epochs"]
    assert clf.history_["unfrozen_blocks"] == ["conv5"]
    assert epochs[-1]["train_loss"] < 0.7 * epochs[0]["train_loss"]  # it learnt
    Xt, yt = _tones(4, seed=1)
    assert clf.score(Xt, yt) >= 0.9  # chance is 1/3
    from transferkit.backbones import load_backbone

    before = load_backbone("crepe-tiny").model.state_dict()
    after = clf.network_.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("conv5") for k in moved)  # only the unfrozen block trained
    clf.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(Xt), clf.predict_proba(Xt))
