"""SpecAugment masks on log-mel windows: bands of bins and frames set to the window's mean, inside the valid
frames only, within the policy's widths; nothing in eval mode; the same seed gives the same masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.data.spec_augment import SPEC_AUGMENT, SpecAugment, make_spec_augment
from transferkit.exceptions import ConfigError


def _mel(n: int = 3, bins: int = 80, width: int = 300, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, bins, width, generator=torch.Generator().manual_seed(seed)) + 2.0


def _runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


@pytest.mark.parametrize("level", ["light", "strong"])
def test_masks_are_bands_of_bins_and_frames_inside_the_valid_frames(level: str) -> None:
    pol = SPEC_AUGMENT[level]
    mel, lengths = _mel(), torch.tensor([300, 100, 40])
    masks = make_spec_augment(level)
    seen_freq = seen_time = 0
    for seed in range(40):
        out = masks(mel, lengths, generator=torch.Generator().manual_seed(seed))
        for w, n in enumerate(lengths.tolist()):
            changed = (out[w] != mel[w]).numpy()
            assert not changed[:, n:].any()  # padding is never masked
            valid = mel[w, :, :n]
            mean = float(valid.mean())
            np.testing.assert_allclose(out[w].numpy()[changed], mean, rtol=1e-6)  # the window's mean
            # a masked bin is masked on every valid frame, or the frame belongs to a time mask
            full_bins = changed[:, :n].all(axis=1)
            full_frames = changed[:, :n].all(axis=0)
            assert (changed[:, :n] == (full_bins[:, None] | full_frames[None, :])).all()
            if full_frames.all():
                continue  # time masks covered the whole clip: the bins cannot be told apart
            freq_runs = _runs(full_bins)
            assert len(freq_runs) <= pol.n_freq_masks and sum(freq_runs) <= pol.n_freq_masks * (pol.freq_mask - 1)
            limit = min(pol.time_mask, int(n * pol.p))
            if not full_bins.all():
                time_runs = _runs(full_frames)
                assert len(time_runs) <= pol.n_time_masks and sum(time_runs) <= pol.n_time_masks * max(limit - 1, 0)
                seen_time += bool(time_runs)
            seen_freq += bool(freq_runs)
    assert seen_freq > 60 and seen_time > 60  # of 120 windows: masks are drawn, not just allowed


def test_eval_mode_and_none_level_leave_the_input_alone() -> None:
    mel = _mel()
    masks = make_spec_augment("strong")
    assert masks is not None and masks.training
    masks.eval()
    assert masks(mel, torch.tensor([300, 100, 40])) is mel
    assert make_spec_augment("none") is None
    with pytest.raises(ConfigError, match="augment='loud'"):
        make_spec_augment("loud")


def test_same_seed_same_masks() -> None:
    mel, lengths = _mel(n=8), torch.full((8,), 250)
    masks = SpecAugment(SPEC_AUGMENT["light"])
    torch.manual_seed(3)
    a = masks(mel, lengths)
    torch.manual_seed(3)
    b = masks(mel, lengths)  # the global generator, as the trainer seeds it
    c = masks(mel, lengths)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert not torch.equal(a, mel)
