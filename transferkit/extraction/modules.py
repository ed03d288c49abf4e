"""The PyTorch modules extraction runs or exports: a backbone's feature module for one layer, optionally
wrapped for test-time augmentation (flip averaging) or followed by a head."""

from __future__ import annotations

import torch

from ..backbones import Backbone, BackboneConfig
from ..exceptions import ConfigError

#: test-time augmentation of image features: ``"hflip"`` averages the features of each image and its mirror
TTA_MODES = ("none", "hflip")


class FlipAveraged(torch.nn.Module):
    """An image feature module whose output is the mean of its features of the images ``(N, H, W, 3)`` and of
    their left-right mirrors: flip-invariant embeddings (one more forward pass per image)."""

    def __init__(self, features: torch.nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.features(pixels) + self.features(pixels.flip(2)))


def check_tta(tta: str, config: BackboneConfig, owner: str = "Extractor") -> str:
    """Validate a ``tta`` mode for ``config`` (flips exist only for images)."""
    if tta not in TTA_MODES:
        from .._registry import did_you_mean

        raise ConfigError(f"{owner}: tta={tta!r} is not allowed{did_you_mean(str(tta), list(TTA_MODES))}; "
                          f"expected one of {', '.join(TTA_MODES)}")
    if tta != "none" and config.modality != "image":
        raise ConfigError(f"{owner}: tta={tta!r} flips images but {config.name!r} is a {config.modality} backbone; "
                          "use tta='none'")
    return tta


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
