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


def _clip_length(name: str):  # noqa: ANN202
    from dataclasses import replace

    from transferkit.backbones import get_config

    config = get_config(name)
    return replace(config, extra={**config.extra, "clip_length": True})


def test_whisper_training_batches_alone_get_spec_augment_masks() -> None:
    """The training batches' log-mel carries SpecAugment masks on the clips' own frames; validation and the
    head's passes see the plain log-mel; ``augment="none"`` turns the masks off (random-init Whisper at clip
    length: the masks do not depend on the weights)."""
    from transferkit.backbones import load_backbone
    from transferkit.strategies.fine_tuning.config import FineTuneConfig
    from transferkit.strategies.fine_tuning.train import build_setup

    backbone = load_backbone(_clip_length("whisper-tiny-en"), pretrained=False)
    X, y = _tones(10, seed=0)  # 0.4-s clips: 40 valid log-mel frames; 10 a class: a validation split
    for level in ("light", "none"):
        s = build_setup(backbone, X, np.unique(y, return_inverse=True)[1], 3,
                        FineTuneConfig(unfreeze="top-1", augment=level, seed=0), layer=None)
        torch.manual_seed(0)
        (mel, key_mask, frames, owner), _ = next(s["train"].epoch(0))
        assert mel.shape[2] == 102  # 1 s (the clip rounded up) + 2 floor frames
        floor = mel[:, :, 80:]  # past the clip (40 frames + the time shift of the waveform augmentation)
        assert torch.equal(floor, floor[:, :1, :1].expand_as(floor))  # padding is untouched
        band_bins = _constant_bins(mel[:, :, :40])
        if level == "light":
            assert band_bins.sum() >= len(mel) // 2  # most windows have a masked band of bins
        else:
            assert not band_bins.any()
        for batches in (s["val"], s["every"]):
            (plain, *_), _ = next(batches.epoch(0))
            assert not _constant_bins(plain[:, :, :40]).any()


def _constant_bins(mel: torch.Tensor) -> torch.Tensor:
    """Per window: does some bin hold one value on every frame (a frequency mask)?"""
    return (mel.amax(dim=2) == mel.amin(dim=2)).any(dim=1)


def test_spec_augment_leaves_the_padding_of_a_30_s_window_alone() -> None:
    from transferkit.backbones import load_backbone
    from transferkit.strategies.fine_tuning.data import prepare_inputs, training_collate

    backbone = load_backbone("whisper-tiny-en", pretrained=False)  # padded to 30 s
    X, _ = _tones(4, seed=0)
    waves, collate = prepare_inputs(backbone, X)
    plain = collate(waves)
    torch.manual_seed(0)
    masked = training_collate(backbone, collate, "strong")(waves)
    assert plain[0].shape[2] == masked[0].shape[2] == 3000
    for a, b in zip(plain[1:], masked[1:], strict=True):
        assert torch.equal(a, b)  # attention mask, valid frames, owners
    assert torch.equal(masked[0][:, :, 40:], plain[0][:, :, 40:])  # 29.6 s of padding: never masked
    assert not torch.equal(masked[0][:, :, :40], plain[0][:, :, :40])
    assert _constant_bins(masked[0][:, :, :40]).sum() >= len(X) // 2
    assert training_collate(backbone, collate, "none") is collate


def _notes(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """0.4-s notes with 8 harmonics (a pitch spread over many mel bins, as in speech: one frequency mask cannot
    hide it, while it can hide a pure tone)."""
    rng = np.random.default_rng(seed)
    t = np.arange(6400) / 16000
    X, y = [], []
    for i in range(n):
        for label, f in {"low": 220.0, "mid": 330.0, "high": 495.0}.items():
            f0 = f * (1 + 0.02 * (i - n / 2))
            wave = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
            X.append((0.2 * wave + 0.02 * rng.standard_normal(t.size)).astype(np.float32))
            y.append(label)
    return X, np.asarray(y)


@pytest.mark.slow
def test_whisper_fine_tuning_with_spec_augment_learns() -> None:
    """Stage 2 trains the top block on masked, noisy log-mels: its loss falls from where the augmentation
    lifts it, and the network's own head (not refitted) classifies clean held-out notes."""
    need("whisper-tiny-en")
    from transferkit.backbones import load_backbone
    from transferkit.extraction import Extractor
    from transferkit.strategies.fine_tuning.config import FineTuneConfig
    from transferkit.strategies.fine_tuning.train import fine_tune

    torch.set_num_threads(2)
    X, y = _notes(12, seed=0)
    classes, yi = np.unique(y, return_inverse=True)
    backbone = load_backbone(_clip_length("whisper-tiny-en"))
    result = fine_tune(backbone, X, yi, 3, FineTuneConfig(unfreeze="top-1", epochs=8, head_epochs=4, augment="light",
                                                          refit_head=False, seed=0), progress=False)
    assert result.history["unfrozen_blocks"] == ["layers.3"]
    losses = [e["train_loss"] for e in result.history["epochs"] if e.get("stage") == 2]
    assert len(losses) >= 4 and losses[-1] < 0.5 * max(losses)
    Xt, yt = _notes(4, seed=1)
    features = Extractor(result.backbone, cache=False, show_progress=False, engine="torch").extract(Xt)
    assert np.mean(classes[result.head.predict_index(features)] == yt) >= 0.9  # chance is 1/3
