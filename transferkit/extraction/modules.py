"""The PyTorch modules extraction runs or exports: a backbone's feature module for one layer, optionally
wrapped for test-time augmentation (flip averaging) or followed by a head."""

from __future__ import annotations

import torch

from ..backbones import Backbone
from .spec import TTA_MODES, check_tta

__all__ = ["TTA_MODES", "FlipAveraged", "TextWithHead", "check_tta", "feature_module"]

class FlipAveraged(torch.nn.Module):
    """An image feature module whose output is the mean of its features of the images ``(N, H, W, 3)`` and of
    their left-right mirrors: flip-invariant embeddings (one more forward pass per image)."""

    def __init__(self, features: torch.nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.features(pixels) + self.features(pixels.flip(2)))


def feature_module(backbone: Backbone, layer: str | None, tta: str = "none") -> torch.nn.Module:
    """``backbone``'s feature module for ``layer``, wrapped for test-time augmentation ``tta``."""
    module = backbone.feature_module(layer)
    return FlipAveraged(module).eval() if tta == "hflip" else module


class TextWithHead(torch.nn.Module):
    """A text feature module (several token inputs) followed by a head."""

    def __init__(self, features: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(*inputs))
