"""The torch-free part of a backbone: :class:`Backbone`'s interface and :class:`ImageInputs` (an image
backbone's preprocessing). A saved model whose verified ONNX graph is cached predicts with these alone, so
``predict``, ``evaluate`` and the server never import torch (:mod:`.base` adds the PyTorch modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..data.items import resize_center_crop
from .config import BackboneConfig

if TYPE_CHECKING:
    from torch import nn

_PIL_FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


class Backbone:
    """Base class; subclasses set ``self.model`` and implement ``feature_module`` and ``prepare``."""

    config: BackboneConfig
    weights_id: str  # sha256 of the weights, or "random-init:<seed>" for a negative control
    model: nn.Module

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def modality(self) -> str:
        return self.config.modality

    @property
    def pretrained(self) -> bool:
        return not self.weights_id.startswith("random-init")

    def prepare(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        """Turn loaded items into the feature module's named inputs (NumPy arrays)."""
        raise NotImplementedError

    def prepare_item(self, item: Any) -> Any:
        """Per-item part of ``prepare`` (resize for images); may run in worker threads."""
        return item

    def collate(self, prepared: Sequence[Any]) -> dict[str, np.ndarray]:
        return self.prepare(prepared)

    def feature_module(self, layer: str | None = None) -> nn.Module:
        """Module mapping ``prepare`` outputs (as tensors, same names, same order) to ``(N, D)`` features."""
        raise NotImplementedError

    def feature_dim(self, layer: str | None = None) -> int:
        return self.config.layer_dim(layer)

    def onnx_exportable(self) -> bool:
        return False

    def probe_items(self) -> list[Any]:
        """Loaded items of different sizes that an exported graph is traced on and checked with against the
        library (texts here; audio backbones give waveforms; images are probed as random pixels, see
        :func:`transferkit.extraction.onnx_graph.probe_inputs`)."""
        return ["a first example sentence", "another, somewhat longer example sentence for the check", "short",
                "the fourth and final sentence"]


class ImageInputs:
    """An image backbone's preprocessing, without its network: each image resized and center-cropped to
    ``image_size``, stacked into the uint8 NHWC ``pixels`` input. :class:`ImageBackbone` inherits it; an
    already verified ONNX graph needs nothing else, so extraction can skip building the PyTorch network."""

    def __init__(self, config: BackboneConfig, image_size: int | None = None) -> None:
        self.config = config
        self.image_size = int(image_size or config.input_size or 224)

    def prepare_item(self, item: Image.Image) -> np.ndarray:
        """Resize the shorter side to ``image_size`` and center-crop to a square; uint8 (S, S, 3), with
        torchvision's ``Resize`` + ``CenterCrop`` arithmetic (:func:`~transferkit.data.items.resize_center_crop`)."""
        return resize_center_crop(item, self.image_size, _PIL_FILTERS[self.config.interpolation])

    def prepare(self, items: Sequence[Any]) -> dict[str, np.ndarray]:
        arrays = [x if isinstance(x, np.ndarray) else self.prepare_item(x) for x in items]
        return {"pixels": np.stack(arrays, axis=0)}

    def collate(self, prepared: Sequence[Any]) -> dict[str, np.ndarray]:
        return self.prepare(prepared)
