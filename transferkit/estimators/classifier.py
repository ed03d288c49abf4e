""":class:`TransferClassifier`: a classifier built on a pretrained backbone by any registered strategy."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.metaestimators import available_if

from ._base import StrategyEstimator, check_fitted, store_params


def _head_is_probabilistic(est: TransferClassifier) -> bool:
    if hasattr(est, "head_"):
        return bool(est.head_.probabilistic)
    return est.head != "svm"


class TransferClassifier(StrategyEstimator, ClassifierMixin, BaseEstimator):
    """A classifier built on a pretrained backbone.

    ``strategy`` names a registered strategy (:mod:`transferkit.strategies`; ``transferkit fit --help``
    lists them). The built-in ones:

    ``"feature-extraction"``: the frozen backbone turns each item into an embedding (cached on disk) and a
    light head (``logreg``, ``svm`` or ``mlp``) is trained on them, its regularisation chosen by internal
    cross-validation unless given in ``head_params``.

    ``"fine-tune"``: two-stage fine-tuning (:mod:`transferkit.strategies.fine_tuning`): a new head
    (dropout + linear) trains on the frozen base, then the top ``unfreeze`` blocks train with it at a 10×
    lower learning rate, BatchNorm layers in inference mode, with ``augment`` (images), early stopping on a
    stratified validation split, and ``fine_tune_params`` for the rest (``dropout``, ``weight_decay``,
    ``l2sp``, ``label_smoothing``, ``patience``, ``validation_fraction``, ``layer_decay``, ``gradual``,
    ``train_bn``, ``lr_ratio``, ``warmup``, ``contrastive``, ``refit_head``, ``ema``). ``epochs``/``head_epochs``
    (stage 2/stage 1; ``None``: from the data size), ``lr`` (stage 1; ``None``: 3e-3 images, 2e-3 text) and
    ``batch_size`` set the schedule; ``image_size`` defaults to the backbone's own capped at 112 px.
    ``checkpoint_dir`` saves the training state every epoch and ``resume=True`` continues from it. The
    ``head`` must stay ``"logreg"``.

    ``"from-scratch"`` (a baseline): a small CNN trained from random initialisation through the same loop
    (images; ``epochs``, ``lr``, ``augment``; ``strategy_params``: ``widths``, ``patience``).

    Parameters a strategy does not read are ignored by it (the CLI refuses them); ``strategy_params`` holds
    the options of strategies registered outside transferkit.

    ``multilabel=True``: each item has any number of tags (``y``: strings ``"red;cotton"``, lists of tags, or
    a 0/1 indicator matrix); a sigmoid per tag, thresholds tuned per tag by cross-validation; ``predict``
    returns a 0/1 matrix whose columns are ``classes_`` (the tag names), ``score`` the subset accuracy.
    Feature extraction (logistic regression per tag) and fine-tuning (binary cross-entropy) support it.

    ``tta="hflip"`` (images) averages the embedding of every image with that of its mirror image, for the
    head's training items and for prediction alike (fine-tuning: at prediction only); it doubles the
    extraction time and suits data whose class does not depend on left/right (not digits or text).

    ``precision="int8"`` (feature extraction) runs an int8 quantization of the backbone on ONNX Runtime (or
    OpenVINO when installed), calibrated on up to 256 training items, about 2-3× faster to extract; the fit
    keeps it only if the head loses at most 0.5 point of validation accuracy against fp32 features on
    held-out training items, else falls back to fp32 and says so (``precision_`` is what the model uses).

    X can be a list of image paths, a uint8 image array ``(N, H, W)``/``(N, H, W, C)``, a list of arrays or
    PIL images, or a list of strings for text backbones.

    Fitted attributes: ``classes_``, ``strategy_`` (the fitted :class:`~transferkit.strategies.Strategy`),
    ``backbone_`` (name), ``layer_``, ``weights_id_`` (sha256 of the weights), ``head_``
    (:class:`~transferkit.heads.HeadArrays`), ``n_features_`` (embedding size), ``engine_`` (``onnx`` or
    ``torch``); feature extraction adds ``head_estimator_`` (the fitted scikit-learn model), fine-tuning
    ``network_`` (the fine-tuned copy of the backbone), ``history_`` (per-epoch losses and accuracies) and
    ``image_size_``.
    """

    task = "classification"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        layer: str | None = "last",
        head: str = "logreg",
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
        multilabel: bool = False,
    ) -> None:
        store_params(self, locals())

    def _task(self) -> str:
        return "multilabel" if self.multilabel else "classification"

    def _objective_attributes(self, objective: Any) -> dict[str, Any]:
        # classes_: the class values, or the tag names of a multi-label model (columns of predict's matrix)
        return {"classes_": objective.classes if objective.name == "classification" else np.asarray(objective.tags)}

    @available_if(_head_is_probabilistic)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` (multi-label: each tag's probability, ``(N, n_tags)``)."""
        check_fitted(self, "strategy_")
        return self.head_.probabilities(self.strategy_.logits(self.features(X)))
