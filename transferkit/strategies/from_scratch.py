"""The from-scratch image baseline of fine-tuning: a small CNN trained from random initialisation.

The ``from-scratch`` strategy trains :class:`~transferkit.backbones.vision.SmallCNN` (three conv-BN-ReLU ×2 +
max-pool blocks, 32-64-128 channels, global average pooling, dropout, linear) on the same split, through
the same training loop, with the same augmentation and early stopping as fine-tuning; every layer trains
from the start and BatchNorm learns its statistics. It answers "how much did the pretrained weights buy?"
for a fine-tuned model, as the raw-pixel logistic regression does for feature extraction.
:class:`~transferkit.estimators.SmallCNNClassifier` is the same model as a scikit-learn estimator of its own.

Images keep their native size when they all share one square size of at most 64 pixels (e.g. 28×28
Fashion-MNIST), else they are resized to 64×64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._registry import did_you_mean
from ..backbones.config import BackboneConfig, WeightsSource
from ..exceptions import ConfigError
from .base import Context, Option, Strategy, register_strategy

DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_BATCH_SIZE = 40, 3e-3, 32
_EXTRA = {"widths": (32, 64, 128), "patience": 8}


def smallcnn_config(widths: tuple[int, ...], size: int) -> BackboneConfig:
    """An unregistered config for a random-initialised SmallCNN (nothing to download)."""
    layers = {f"features.{i}": int(w) for i, w in enumerate(widths)}
    return BackboneConfig(
        name="smallcnn-scratch", family="smallcnn", architecture="smallcnn", modality="image",
        description="small CNN trained from random initialisation", weights=WeightsSource(sha256="", license="n/a"),
        layers=layers, blocks=tuple(layers), input_size=int(size), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        license="n/a", extra={"widths": list(widths)},
    )


@dataclass(frozen=True)
class ScratchConfig:
    widths: tuple[int, ...] = (32, 64, 128)
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    augment: str = "light"
    patience: int | None = 8
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0


@register_strategy
class FromScratch(Strategy):
    name = "from-scratch"
    role = "baseline"
    display_name = "from-scratch small CNN"
    summary = "a small CNN trained from random initialisation through the same loop (the baseline of fine-tuning)"
    modalities = ("image",)
    trains_network = True
    options = {"epochs": Option(None), "lr": Option(None), "augment": Option("light")}

    @classmethod
    def configure(cls, params: dict[str, Any], context: Context) -> ScratchConfig:
        extra = dict(params.get("strategy_params") or {})
        for key in extra:
            if key not in _EXTRA:
                raise ConfigError(f"{context.owner}: strategy 'from-scratch' has no parameter {key!r}"
                                  f"{did_you_mean(str(key), list(_EXTRA))}; allowed: {', '.join(_EXTRA)}")
        values = super().configure({**params, "strategy_params": None}, context)
        return ScratchConfig(widths=tuple(int(w) for w in extra.get("widths", _EXTRA["widths"])),
                             epochs=values["epochs"] if values["epochs"] is not None else DEFAULT_EPOCHS,
                             lr=values["lr"] or DEFAULT_LR, augment=values["augment"],
                             patience=extra.get("patience", _EXTRA["patience"]),
                             batch_size=context.batch_size or DEFAULT_BATCH_SIZE, seed=context.seed)

    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        from ..backbones import load_backbone
        from ..data.items import MAX_NATIVE_SIZE, native_square_size
        from ..training import Stage
        from .fine_tuning.config import validated_config
        from .fine_tuning.train import build_setup, train_network

        c = self.config
        size = int(self.context.image_size or native_square_size(X) or MAX_NATIVE_SIZE)
        ft = validated_config(self.context.owner, epochs=c.epochs, lr=c.lr, augment=c.augment, dropout=0.2, l2sp=0.0,
                              weight_decay=0.01, patience=c.patience, batch_size=c.batch_size, seed=c.seed,
                              train_bn=True, unfreeze="all")
        self.trunk = smallcnn_config(tuple(c.widths), size)
        self.layer = self.trunk.default_layer
        base = load_backbone(self.trunk, pretrained=False, image_size=size, seed=c.seed)
        setup = build_setup(base, X, y_index, n_classes, ft, layer=None, standardize=False)  # random init
        setup["task"].base_weight_decay = ft.weight_decay  # nothing pretrained to protect
        stages = [Stage("scratch", c.epochs, c.lr, warmup=0.05, end_factor=0.01)]
        result = train_network(setup, stages, ft, n_classes, [], fingerprint={}, progress=self.context.progress)
        self.network, self.head, self.history = result.backbone, result.head, result.history
        self.weights_id, self.n_features, self.engine = "random-init", self.trunk.feature_dim, "torch"
        self.description = (f"small CNN ({'-'.join(map(str, c.widths))} channels) trained from random init on "
                            f"{size}×{size} images, {result.history['stages'][0]['epochs_run']} epochs, "
                            f"augmentation {c.augment}")

    def describe(self) -> dict[str, Any]:
        return {"head": "linear", "description": getattr(self, "description", self.summary)}
