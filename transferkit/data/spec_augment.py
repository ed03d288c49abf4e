"""SpecAugment (Park et al., 2019): frequency and time masks on the log-mel input of audio fine-tuning.

Used next to the waveform augmentation of :func:`transferkit.data.augment.make_audio_augment`, on the
training batches only, by backbones whose input is a log-mel spectrogram (Whisper). The masks are drawn as
torchaudio's ``FrequencyMasking`` / ``TimeMasking`` with ``iid_masks=True`` draw them (width uniform in
``[0, F)``, start uniform over the remaining bins), with two differences that matter here:

- masks fall on each window's *valid* frames only: a 1-s clip in a padded 30-s Whisper window has 100 valid
  frames of 3000, and a mask in the padding would change nothing (torchaudio masks the whole axis);
- the masked value is the window's mean over its valid frames, as in the paper (which masks zero-mean
  normalised log-mels with 0); Whisper's log-mel is not zero-mean, so torchaudio's default 0 would be a
  value of its own.

Levels follow the paper's Table 1 policies for 80 mel bins and 10-ms frames: ``"light"`` = SM (two
frequency masks up to 15 bins, two time masks up to 70 frames), ``"strong"`` = SS (two up to 27 bins, two up
to 40 frames), each time mask at most ``p = 0.2`` of the clip's frames.

torchaudio itself is not used: its last release (2.11.1) requires torch>=2.11 and imports against this
project's torch, but its masks cover padding, and the whole package would be a new dependency for the
twenty lines below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .augment import AUGMENT_LEVELS


@dataclass(frozen=True)
class SpecAugmentPolicy:
    """Largest width of a frequency mask (bins) and of a time mask (frames), how many of each, and ``p``: the
    largest fraction of a window's valid frames one time mask may cover."""

    freq_mask: int
    n_freq_masks: int
    time_mask: int
    n_time_masks: int
    p: float


#: SpecAugment paper, Table 1: SM and SS
SPEC_AUGMENT = {"light": SpecAugmentPolicy(15, 2, 70, 2, 0.2), "strong": SpecAugmentPolicy(27, 2, 40, 2, 0.2)}


class SpecAugment(nn.Module):
    """``forward(mel (W, bins, T), lengths (W,))`` → ``mel`` with masks on each window's first ``lengths[w]``
    frames in training mode; in eval mode it returns ``mel`` unchanged. Random numbers come from ``generator``
    (default: PyTorch's global one, which the trainer seeds), so a seed fixes the masks."""

    def __init__(self, policy: SpecAugmentPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or mel.numel() == 0:
            return mel
        n, bins, width = mel.shape
        lengths = (torch.full((n,), width) if lengths is None else lengths.long().clamp(0, width))
        frame = torch.arange(width)
        valid = frame[None, :] < lengths[:, None]  # (W, T)
        mean = (mel * valid[:, None, :]).sum(dim=(1, 2)) / (bins * lengths).clamp(min=1)
        masked = torch.zeros(n, bins, width, dtype=torch.bool)
        pol = self.policy
        for _ in range(pol.n_freq_masks):
            masked |= _band(torch.arange(bins), torch.full((n,), bins), pol.freq_mask, generator)[:, :, None]
        limit = torch.minimum(torch.full((n,), pol.time_mask), (lengths * pol.p).floor().long())
        for _ in range(pol.n_time_masks):
            masked |= _band(frame, lengths, limit, generator)[:, None, :]
        masked &= valid[:, None, :]
        return torch.where(masked, mean[:, None, None].to(mel.dtype), mel)


def _band(index: torch.Tensor, size: torch.Tensor, max_width: torch.Tensor | int,
          generator: torch.Generator | None) -> torch.Tensor:
    """(W, len(index)) booleans: per row a band ``[start, start + width)`` with ``width`` uniform in
    ``[0, max_width)`` and ``start`` uniform in ``[0, size - width)`` (torchaudio's ``mask_along_axis_iid``)."""
    u = torch.rand(2, len(size), generator=generator)
    width = (u[0] * torch.as_tensor(max_width)).floor().long()
    start = (u[1] * (size - width)).floor().long()
    return (index[None, :] >= start[:, None]) & (index[None, :] < (start + width)[:, None])


def make_spec_augment(level: str) -> SpecAugment | None:
    """The SpecAugment masks of augmentation ``level`` (``None`` for ``"none"``), in training mode."""
    if level not in AUGMENT_LEVELS:
        from .augment import make_augment

        make_augment(level, 1)  # the one error message for a bad level
    return None if level == "none" else SpecAugment(SPEC_AUGMENT[level]).train()
