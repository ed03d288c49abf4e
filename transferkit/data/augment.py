"""Training-time image augmentation from ``torchvision.transforms.v2``, on uint8 tensors, on the fly.

:func:`make_augment` returns a per-item function for the training batches only (validation, test and
prediction never see it). It takes and returns a uint8 ``(H, W, 3)`` tensor — the layout the image feature
modules read — so the output size always equals the input size.

Levels:

- ``"none"``: identity (returns ``None``: no transform at all);
- ``"light"`` (default): random resized crop (80–100 % of the area, aspect 3:4–4:3) and horizontal flip;
- ``"strong"``: random resized crop (50–100 %), horizontal flip, rotation up to 15°, colour jitter
  (brightness, contrast, saturation 0.3; hue 0.05).

Flips and crops suit most photos and objects; for data where left/right or position carries the label
(digits, text in images), choose ``"none"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError

if TYPE_CHECKING:
    import torch

AUGMENT_LEVELS = ("none", "light", "strong")


def make_augment(level: str, size: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The augmentation of ``level`` for square ``size``×``size`` images (``None`` for ``"none"``)."""
    from torchvision.transforms import v2

    if level not in AUGMENT_LEVELS:
        from .._registry import did_you_mean

        raise ConfigError(f"augment={level!r} is not allowed{did_you_mean(str(level), list(AUGMENT_LEVELS))}; "
                          f"expected one of {', '.join(AUGMENT_LEVELS)}")
    if level == "none":
        return None
    if level == "light":
        ops = [v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
               v2.RandomHorizontalFlip()]
    else:
        ops = [v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
               v2.RandomHorizontalFlip(),
               v2.RandomRotation(15),
               v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)]
    pipeline = v2.Compose(ops)

    def augment(pixels: torch.Tensor) -> torch.Tensor:
        return pipeline(pixels.permute(2, 0, 1)).permute(1, 2, 0).contiguous()

    augment.level = level  # type: ignore[attr-defined]
    return augment


def make_affine_augment(degrees: float = 10.0, translate: float = 0.1,
                        scale: tuple[float, float] = (0.9, 1.1)) -> Callable[[torch.Tensor], torch.Tensor]:
    """A small random affine warp (rotation up to ``degrees``, shift up to ``translate`` of the side, zoom in
    ``scale``; no flip, no crop) of a uint8 ``(H, W, C)`` tensor — for digits and characters, where flips and
    crops change the label (domain adaptation's ``source_augment="affine"``)."""
    from torchvision.transforms import v2

    warp = v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale)

    def augment(pixels: torch.Tensor) -> torch.Tensor:
        return warp(pixels.permute(2, 0, 1)).permute(1, 2, 0).contiguous()

    augment.level = "affine"  # type: ignore[attr-defined]
    return augment


#: per level: (gain range in dB, largest time shift in seconds, SNR range in dB of the added noise)
AUDIO_AUGMENT = {"light": ((-6.0, 6.0), 0.1, (20.0, 40.0)), "strong": ((-10.0, 10.0), 0.2, (5.0, 30.0))}


def make_audio_augment(level: str, rate: int = 16000) -> Callable[[Any], Any] | None:
    """Waveform augmentation of ``level`` for audio fine-tuning (``None`` for ``"none"``): a random gain,
    a random time shift (the clip moves, zeros fill in, nothing wraps round) and white noise at a random SNR below
    the clip's own power. Random numbers come from PyTorch's generator, which the trainer seeds. Backbones with a
    log-mel input add SpecAugment masks of the same level on the training batches
    (:mod:`transferkit.data.spec_augment`)."""
    if level not in AUGMENT_LEVELS:
        make_augment(level, 1)  # the one error message for a bad level
    if level == "none":
        return None
    (g_lo, g_hi), max_shift, (snr_lo, snr_hi) = AUDIO_AUGMENT[level]

    def augment(wave: Any) -> Any:
        import numpy as np
        import torch

        w = np.asarray(wave, dtype=np.float32)
        u = torch.rand(3).tolist()
        gain = 10 ** ((g_lo + (g_hi - g_lo) * u[0]) / 20)
        shift = int(round((2 * u[1] - 1) * max_shift * rate))
        shift = max(-(len(w) // 2), min(len(w) // 2, shift))  # a short one-shot keeps at least half of itself
        out = np.zeros_like(w)
        if shift >= 0:
            out[shift:] = w[: len(w) - shift]
        else:
            out[:shift] = w[-shift:]
        power = float(np.mean(out**2)) + 1e-12
        snr = snr_lo + (snr_hi - snr_lo) * u[2]
        noise = torch.randn(len(out)).numpy() * np.sqrt(power / 10 ** (snr / 10))
        return ((out + noise) * gain).astype(np.float32)

    return augment
