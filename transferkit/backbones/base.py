"""The runtime side of a backbone: a loaded network plus preprocessing derived from its config.

A :class:`Backbone` turns a batch of loaded items (RGB PIL images or strings) into model inputs
(``prepare``) and builds, for a chosen layer, a feature module mapping those inputs to pooled features of
shape ``(N, D)`` (``feature_module``). Image feature modules take uint8 ``(N, H, W, 3)`` pixels and do
the normalisation themselves, so an exported ONNX graph needs nothing but pixels. Backbones know nothing
about heads, caches or files of data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .config import SOURCE_PROBS, BackboneConfig
from .inputs import Backbone, ImageInputs


class ImageBackbone(ImageInputs, Backbone):
    """An image CNN whose feature layers are the outputs of consecutive stages."""

    def __init__(
        self,
        config: BackboneConfig,
        stages: list[tuple[str, nn.Module]],
        model: nn.Module,
        weights_id: str,
        image_size: int | None = None,
    ) -> None:
        ImageInputs.__init__(self, config, image_size)
        self.stages = stages
        self.model = model.eval()
        self.weights_id = weights_id
        if [n for n, _ in stages] != list(config.layers):
            raise AssertionError(f"stages of {config.name} do not match its configured layers")

    def feature_module(self, layer: str | None = None, pool: bool = True) -> nn.Module:
        layer = self.config.resolve_layer(layer)
        if layer == SOURCE_PROBS:
            return SourceProbsNet(self.feature_module(self.config.default_layer), self.source_classifier()).eval()
        names = [n for n, _ in self.stages]
        upto = names.index(layer) + 1
        return ImageFeatureNet(
            nn.Sequential(*[m for _, m in self.stages[:upto]]),
            mean=self.config.mean or (0.0, 0.0, 0.0),
            std=self.config.std or (1.0, 1.0, 1.0),
            pool=pool,
        ).eval()

    def onnx_exportable(self) -> bool:
        return True

    def source_classifier(self) -> nn.Module:
        """The network's own (ImageNet) classifier, applied to the pooled last-layer features.

        torchvision and timm models and :class:`SmallCNN` all keep it in ``model.classifier`` (timm's
        global pooling is the same mean over space as the pooled features).
        """
        from ..exceptions import ConfigError

        head = getattr(self.model, "classifier", None)
        if not isinstance(head, nn.Module) or not self.config.has_source_classifier:
            raise ConfigError(f"backbone {self.config.name!r} has no source classifier to give {SOURCE_PROBS!r}")
        return head


class SourceProbsNet(nn.Module):
    """pixels → pooled last-layer features → source classifier → softmax probabilities (N, Z)."""

    def __init__(self, features: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(self.features(pixels)).float(), dim=1)


class Normalize(nn.Module):
    """uint8 NHWC pixels → float NCHW normalised with mean/std given on the 0..1 scale."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std", 1.0 / (torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).to(torch.float32)
        return (x - self.mean) * self.inv_std


class ImageFeatureNet(nn.Module):
    """Normalise → stages → global average pool → (N, D)."""

    def __init__(self, body: nn.Module, mean: Sequence[float], std: Sequence[float], pool: bool = True) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.body = body
        self.pool = pool

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.body(self.normalize(pixels))
        return x.mean(dim=(2, 3)) if self.pool else x
