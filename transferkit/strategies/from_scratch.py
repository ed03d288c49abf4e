"""The from-scratch image baseline of fine-tuning: a small CNN trained from random initialisation.

:class:`SmallCNNClassifier` trains :class:`~transferkit.backbones.vision.SmallCNN` (three conv-BN-ReLU ×2 +
max-pool blocks, 32-64-128 channels, global average pooling, dropout, linear) on the same split, through
the same training loop, with the same augmentation and early stopping as fine-tuning; every layer trains
from the start and BatchNorm learns its statistics. It answers "how much did the pretrained weights buy?"
for a fine-tuned model, as the raw-pixel logistic regression does for feature extraction.

Images keep their native size when they all share one square size of at most 64 pixels (e.g. 28×28
Fashion-MNIST), else they are resized to 64×64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..backbones import BackboneConfig, WeightsSource, load_backbone
from ..data.items import MAX_NATIVE_SIZE, native_square_size
from ..exceptions import NotFittedError
from ..training import Stage
from .fine_tuning import FineTuneConfig, build_setup, train_network


def smallcnn_config(widths: tuple[int, ...], size: int) -> BackboneConfig:
    """An unregistered config for a random-initialised SmallCNN (nothing to download)."""
    layers = {f"features.{i}": int(w) for i, w in enumerate(widths)}
    return BackboneConfig(
        name="smallcnn-scratch", family="smallcnn", architecture="smallcnn", modality="image",
        description="small CNN trained from random initialisation", weights=WeightsSource(sha256="", license="n/a"),
        layers=layers, blocks=tuple(layers), input_size=int(size), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        license="n/a", extra={"widths": list(widths)},
    )


class SmallCNNClassifier(ClassifierMixin, BaseEstimator):
    """From-scratch small CNN for images (see the module docstring).

    Args:
        image_size: square input side (default: native size up to 64 px, else 64).
        widths: channels of the conv blocks.
        epochs: maximum epochs (cosine schedule; early stopping with ``patience`` on a validation split).
        lr: peak AdamW learning rate (after a 5 % warm-up).
        augment: ``none``, ``light`` or ``strong`` (as fine-tuning).
        patience: early-stopping patience in epochs (``None``: train all epochs).
        batch_size, random_state, progress: as usual.
    """

    name = "from-scratch small CNN"

    def __init__(self, image_size: int | None = None, widths: tuple[int, ...] = (32, 64, 128), epochs: int = 40,
                 lr: float = 3e-3, augment: str = "light", patience: int | None = 8, batch_size: int = 32,
                 random_state: int | None = 0, progress: bool = False) -> None:
        self.image_size = image_size
        self.widths = widths
        self.epochs = epochs
        self.lr = lr
        self.augment = augment
        self.patience = patience
        self.batch_size = batch_size
        self.random_state = random_state
        self.progress = progress

    def fit(self, X: Any, y: Any) -> SmallCNNClassifier:
        from ..data.datasets import check_labels

        y_arr = check_labels(y)
        self.classes_, y_index = np.unique(y_arr, return_inverse=True)
        size = int(self.image_size or native_square_size(X) or MAX_NATIVE_SIZE)
        seed = self.random_state or 0
        config = FineTuneConfig(epochs=self.epochs, lr=self.lr, augment=self.augment, dropout=0.2, l2sp=0.0,
                                weight_decay=0.01, patience=self.patience, batch_size=self.batch_size, seed=seed,
                                train_bn=True, unfreeze="all")
        base = load_backbone(smallcnn_config(tuple(self.widths), size), pretrained=False, image_size=size, seed=seed)
        setup = build_setup(base, X, y_index, len(self.classes_), config, layer=None)
        setup["task"].base_weight_decay = config.weight_decay  # nothing pretrained to protect
        stages = [Stage("scratch", self.epochs, self.lr, warmup=0.05, end_factor=0.01)]
        result = train_network(setup, stages, config, len(self.classes_), [], fingerprint={}, progress=self.progress)
        self.network_, self.head_, self.history_ = result.backbone, result.head, result.history
        self.input_size_ = size
        self.description_ = (f"small CNN ({'-'.join(map(str, self.widths))} channels) trained from random init on "
                             f"{size}×{size} images, {result.history['stages'][0]['epochs_run']} epochs, "
                             f"augmentation {self.augment}")
        return self

    def _features(self, X: Any) -> np.ndarray:
        from ..extraction import Extractor

        if not hasattr(self, "network_"):
            raise NotFittedError("this SmallCNNClassifier is not fitted yet; call fit(X, y) first")
        return Extractor(self.network_, None, engine="torch", cache=False, show_progress=False).extract(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.head_.predict_proba(self._features(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.head_.predict_index(self._features(X))]
