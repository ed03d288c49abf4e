""":class:`TransferRegressor`: a number per item from a pretrained backbone, by any strategy that solves
regression (feature extraction with a ridge or MLP head, fine-tuning with a squared-error loss)."""

from __future__ import annotations

import os
from typing import Any

from sklearn.base import BaseEstimator, RegressorMixin

from ._base import StrategyEstimator, store_params


class TransferRegressor(StrategyEstimator, RegressorMixin, BaseEstimator):
    """A regressor built on a pretrained backbone (``score`` is R², as for every scikit-learn regressor).

    ``strategy="feature-extraction"``: a ``ridge`` (default; ``alpha`` by leave-one-out CV) or ``mlp`` head
    on the frozen, cached embeddings. ``strategy="fine-tune"``: two-stage fine-tuning as for
    :class:`~transferkit.TransferClassifier`, with a linear output trained on the standardised target
    (mean squared error) and, by default, the ridge head refitted on the fine-tuned features. The target is
    standardised inside; predictions, saved models and the ONNX graph give values in its own units.

    The other parameters are :class:`~transferkit.TransferClassifier`'s. ``y`` must be numbers (a column of
    text raises a one-line error naming the first non-number).
    """

    task = "regression"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        layer: str | None = "last",
        head: str = "ridge",
        head_params: dict[str, Any] | None = None,
        *,
        strategy: str = "feature-extraction",
        image_size: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        batch_size: int | None = None,
        engine: str = "auto",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
        random_state: int | None = 0,
        progress: bool = True,
        epochs: int | None = None,
        head_epochs: int | None = None,
        lr: float | None = None,
        unfreeze: str = "all",
        augment: str = "light",
        fine_tune_params: dict[str, Any] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        tta: str = "none",
        precision: str = "fp32",
        strategy_params: dict[str, Any] | None = None,
    ) -> None:
        store_params(self, locals())
