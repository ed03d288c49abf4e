""":class:`SmallCNNClassifier`: the ``from-scratch`` strategy's small CNN as a scikit-learn estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..data.items import as_items
from ..exceptions import NotFittedError
from ..strategies import Context
from ..strategies.from_scratch import FromScratch, ScratchConfig


class SmallCNNClassifier(ClassifierMixin, BaseEstimator):
    """The ``from-scratch`` strategy as a scikit-learn estimator of its own (see
    :mod:`transferkit.strategies.from_scratch`).

    Args:
        image_size: square input side (default: native size up to 64 px, else 64).
        widths: channels of the conv blocks.
        epochs: maximum epochs (cosine schedule; early stopping with ``patience`` on a validation split).
        lr: peak AdamW learning rate (after a 5 % warm-up).
        augment: ``none``, ``light`` or ``strong`` (as fine-tuning).
        patience: early-stopping patience in epochs (``None``: train all epochs).
        batch_size, random_state, progress: as usual.
    """

    name = FromScratch.display_name

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
        seed = self.random_state or 0
        context = Context(backbone="", image_size=self.image_size, engine="torch", cache=False, seed=seed,
                          progress=self.progress, owner=type(self).__name__)
        config = ScratchConfig(widths=tuple(self.widths), epochs=self.epochs, lr=self.lr, augment=self.augment,
                               patience=self.patience, batch_size=self.batch_size, seed=seed)
        self.strategy_ = FromScratch(config, context)
        self.strategy_.fit(as_items(X, "image"), y_index, len(self.classes_))
        self.network_, self.head_, self.history_ = self.strategy_.network, self.strategy_.head, self.strategy_.history
        self.input_size_ = self.strategy_.trunk.input_size if self.strategy_.trunk else None
        self.description_ = self.strategy_.description
        return self

    def _features(self, X: Any) -> np.ndarray:
        if not hasattr(self, "strategy_"):
            raise NotFittedError("this SmallCNNClassifier is not fitted yet; call fit(X, y) first")
        return self.strategy_.features(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.head_.predict_proba(self._features(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.head_.predict_index(self._features(X))]
