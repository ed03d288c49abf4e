"""scikit-learn estimators: :class:`TransferClassifier` and :class:`FeatureExtractor`.

Both follow the scikit-learn contract: ``__init__`` only stores parameters, ``fit`` validates, learns,
sets trailing-underscore attributes and returns ``self``; ``predict``/``transform`` check that the
estimator is fitted. ``clone``, ``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` work, and thanks to
the embedding cache a grid over heads or folds extracts each item's features once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.metaestimators import available_if

from ._validation import Rule, instance_of, int_range, one_of, validate_params
from .backbones import BACKBONES, get_config
from .data.cache import EmbeddingCache
from .data.datasets import check_labels
from .data.items import as_items
from .exceptions import ConfigError, DataError, NotFittedError
from .extraction import ENGINES, Extractor, check_tta
from .heads import HEAD_KINDS, HeadArrays, check_head_params, fit_head

STRATEGIES = ("feature-extraction", "fine-tune")


def _backbone_rule() -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in BACKBONES, "a registered backbone name",
                tuple(BACKBONES.names(include_aliases=True)))


_COMMON_RULES: dict[str, Rule] = {
    "layer": instance_of(str, allow_none=True),
    "image_size": int_range(16, 1024, allow_none=True),
    "batch_size": int_range(1, None, allow_none=True),
    "engine": one_of(*ENGINES),
    "cache": instance_of(bool),
    "cache_dir": instance_of(str, os.PathLike, allow_none=True),
    "weights": instance_of(str, os.PathLike, allow_none=True),
    "pretrained": instance_of(bool),
    "random_state": int_range(0, None, allow_none=True),
    "progress": instance_of(bool),
}


def _check_fitted(est: BaseEstimator, attr: str) -> None:
    if not hasattr(est, attr):
        raise NotFittedError(
            f"this {type(est).__name__} is not fitted yet; call fit(X, y) first (or load a saved model)"
        )


class _ExtractorMixin:
    """Shared parameter handling for estimators that extract features from a backbone."""

    backbone: str
    layer: str | None
    image_size: int | None
    weights: Any
    pretrained: bool
    batch_size: int | None
    engine: str
    cache: bool
    cache_dir: Any
    random_state: int | None
    progress: bool
    tta: str

    def _validate_common(self) -> None:
        params = self.get_params(deep=False)  # type: ignore[attr-defined]
        rules = dict(_COMMON_RULES, backbone=_backbone_rule())
        validate_params(type(self).__name__, params, rules)
        config = get_config(self.backbone)
        config.resolve_layer(self.layer)
        if self.image_size is not None and config.modality != "image":
            raise ConfigError(
                f"{type(self).__name__}: image_size={self.image_size} was given but {config.name!r} is a text backbone"
            )
        check_tta(self.tta, config, type(self).__name__)

    def _extractor(self) -> Extractor:
        cache: EmbeddingCache | bool = False
        if self.cache:
            cache = EmbeddingCache(Path(self.cache_dir)) if self.cache_dir is not None else EmbeddingCache()
        return Extractor(
            self.backbone,
            self.layer,
            weights=self.weights,
            pretrained=self.pretrained,
            image_size=self.image_size,
            seed=self.random_state or 0,
            batch_size=self.batch_size,
            engine=self.engine,
            cache=cache,
            show_progress=self.progress,
            tta=self.tta,
        )


class FeatureExtractor(_ExtractorMixin, TransformerMixin, BaseEstimator):
    """Frozen pretrained backbone as a scikit-learn transformer: items → ``(N, D)`` embeddings.

    Args:
        backbone: registered backbone name (see ``transferkit backbones``).
        layer: feature layer (``"last"`` or a name from the backbone's ``layers``).
        image_size: square input side for image backbones (default: the backbone's own).
        weights: local weights file/directory instead of the registered weights.
        pretrained: ``False`` for a random-initialised copy (a negative control).
        batch_size, engine: see :class:`transferkit.extraction.Extractor`.
        cache, cache_dir: use the on-disk embedding cache (default location: ``$TRANSFERKIT_CACHE_DIR``).
        random_state: seed of the random-init control.
        progress: show a progress bar.
        tta: ``"hflip"`` averages each image's embedding with its mirror image's (twice the extraction
            time; not for data where left/right carries the class, such as digits or text in images).
    """

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        layer: str | None = "last",
        *,
        image_size: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        batch_size: int | None = None,
        engine: str = "auto",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        random_state: int | None = 0,
        progress: bool = True,
        tta: str = "none",
    ) -> None:
        self.backbone = backbone
        self.layer = layer
        self.image_size = image_size
        self.weights = weights
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.engine = engine
        self.cache = cache
        self.cache_dir = cache_dir
        self.random_state = random_state
        self.progress = progress
        self.tta = tta

    def fit(self, X: Any = None, y: Any = None) -> FeatureExtractor:
        self._validate_common()
        extractor = self._extractor()
        self.backbone_ = extractor.config.name
        self.layer_ = extractor.layer
        self.n_features_out_ = extractor.feature_dim
        self.identity_ = extractor.identity()
        return self

    def transform(self, X: Any) -> np.ndarray:
        _check_fitted(self, "n_features_out_")
        return self._extractor().extract(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        _check_fitted(self, "n_features_out_")
        prefix = f"{self.backbone_}_{self.layer_}".replace(".", "_")
        return np.asarray([f"{prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


def _head_is_probabilistic(est: TransferClassifier) -> bool:
    if hasattr(est, "head_"):
        return bool(est.head_.probabilistic)
    return est.head != "svm"


class TransferClassifier(_ExtractorMixin, ClassifierMixin, BaseEstimator):
    """A classifier built on a pretrained backbone.

    ``strategy="feature-extraction"``: the frozen backbone turns each item into an embedding (cached on
    disk) and a light head (``logreg``, ``svm`` or ``mlp``) is trained on them, its regularisation chosen by
    internal cross-validation unless given in ``head_params``.

    ``strategy="fine-tune"``: two-stage fine-tuning (:mod:`transferkit.strategies.fine_tuning`): a new head
    (dropout + linear) trains on the frozen base, then the top ``unfreeze`` blocks train with it at a 10×
    lower learning rate, BatchNorm layers in inference mode, with ``augment`` (images), early stopping on a
    stratified validation split, and ``fine_tune_params`` for the rest (``dropout``, ``weight_decay``,
    ``l2sp``, ``label_smoothing``, ``patience``, ``validation_fraction``, ``layer_decay``, ``gradual``,
    ``train_bn``, ``lr_ratio``, ``warmup``). ``epochs``/``head_epochs`` (stage 2/stage 1; ``None``: from the
    data size), ``lr`` (stage 1; ``None``: 3e-3 images, 2e-3 text) and ``batch_size`` set the schedule;
    ``image_size`` defaults to the backbone's own capped at 112 px. ``checkpoint_dir`` saves the training
    state every epoch and ``resume=True`` continues from it. The ``head`` must stay ``"logreg"`` (a softmax
    linear layer). These parameters are ignored by feature extraction.

    ``tta="hflip"`` (images) averages the embedding of every image with that of its mirror image, for the
    head's training items and for prediction alike (fine-tuning: at prediction only); it doubles the
    extraction time and suits data whose class does not depend on left/right (not digits or text).

    X can be a list of image paths, a uint8 image array ``(N, H, W)``/``(N, H, W, C)``, a list of arrays or
    PIL images, or a list of strings for text backbones.

    Fitted attributes: ``classes_``, ``backbone_`` (name), ``layer_``, ``weights_id_`` (sha256 of the
    weights), ``head_`` (:class:`~transferkit.heads.HeadArrays`), ``head_estimator_`` (the fitted
    scikit-learn model), ``n_features_`` (embedding size), ``engine_`` (``onnx`` or ``torch``). Fine-tuning
    also sets ``network_`` (the fine-tuned copy of the backbone), ``history_`` (per-epoch losses and
    accuracies, see ``results.json``) and ``image_size_``.
    """

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
    ) -> None:
        self.backbone = backbone
        self.layer = layer
        self.head = head
        self.head_params = head_params
        self.strategy = strategy
        self.epochs = epochs
        self.head_epochs = head_epochs
        self.lr = lr
        self.unfreeze = unfreeze
        self.augment = augment
        self.fine_tune_params = fine_tune_params
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.image_size = image_size
        self.weights = weights
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.engine = engine
        self.cache = cache
        self.cache_dir = cache_dir
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.progress = progress
        self.tta = tta

    # -- fitting ---------------------------------------------------------------------------------------
    def _validate(self) -> None:
        self._validate_common()
        validate_params(
            type(self).__name__,
            self.get_params(deep=False),
            {
                "head": one_of(*HEAD_KINDS),
                "strategy": one_of(*STRATEGIES),
                "head_params": instance_of(dict, allow_none=True),
                "n_jobs": Rule(lambda v: v is None or (isinstance(v, int) and v != 0), "a non-zero integer or None"),
            },
        )
        check_head_params(self.head, self.head_params)
        if self.strategy == "fine-tune":
            self._fine_tune_config()

    def _fine_tune_config(self) -> Any:
        """The validated :class:`~transferkit.strategies.fine_tuning.FineTuneConfig` of these parameters."""
        from .strategies.fine_tuning import fine_tune_config

        owner = type(self).__name__
        if self.head != "logreg" or self.head_params:
            raise ConfigError(f"{owner}: strategy='fine-tune' trains its own softmax head; head={self.head!r} and "
                              "head_params apply to feature extraction only: leave them at their defaults")
        validate_params(owner, self.get_params(deep=False), {
            "fine_tune_params": instance_of(dict, allow_none=True),
            "checkpoint_dir": instance_of(str, os.PathLike, allow_none=True),
            "resume": instance_of(bool),
        })
        if self.resume and self.checkpoint_dir is None:
            raise ConfigError(f"{owner}: resume=True needs checkpoint_dir (where the interrupted run saved its state)")
        return fine_tune_config(
            owner, get_config(self.backbone), self.fine_tune_params, epochs=self.epochs, head_epochs=self.head_epochs,
            lr=self.lr, unfreeze=self.unfreeze, augment=self.augment, batch_size=self.batch_size,
            seed=self.random_state or 0,
        )

    def _fit_fine_tune(self, X: Any, y_arr: np.ndarray) -> TransferClassifier:
        from .backbones import load_backbone
        from .strategies.fine_tuning import fine_tune, fine_tune_image_size

        config = self._fine_tune_config()
        bconfig = get_config(self.backbone)
        items = as_items(X, bconfig.modality)
        if len(items) != len(y_arr):
            raise DataError(f"X has {len(items)} items but y has {len(y_arr)} labels; they must match one to one")
        classes, y_index = np.unique(y_arr, return_inverse=True)
        size = fine_tune_image_size(bconfig, self.image_size)
        base = load_backbone(self.backbone, weights=self.weights, pretrained=self.pretrained, image_size=size,
                             seed=self.random_state or 0)
        t0 = time.perf_counter()
        result = fine_tune(base, items, y_index, len(classes), config, layer=self.layer,
                           checkpoint_dir=self.checkpoint_dir, resume=self.resume, progress=self.progress)
        self.fit_timings_ = {"finetune_s": time.perf_counter() - t0}
        self.extract_stats_ = {}
        self.classes_ = classes
        self.backbone_ = bconfig.name
        self.layer_ = bconfig.resolve_layer(self.layer)
        self.weights_id_ = base.weights_id
        self.n_features_ = bconfig.layers[self.layer_]
        self.engine_ = "torch"
        self.head_ = result.head
        self.head_estimator_ = None
        self.network_ = result.backbone
        self.history_ = result.history
        self.image_size_ = size
        return self

    def _extractor(self) -> Extractor:
        network = getattr(self, "network_", None)
        if network is None:
            return super()._extractor()
        cache: EmbeddingCache | bool = False
        if self.cache:
            cache = EmbeddingCache(Path(self.cache_dir)) if self.cache_dir is not None else EmbeddingCache()
        return Extractor(network, self.layer_, batch_size=self.batch_size, engine=self.engine, cache=cache,
                         show_progress=self.progress, tta=self.tta)

    def fit(self, X: Any, y: Any) -> TransferClassifier:
        """Extract (or read cached) features of ``X`` and train the head on labels ``y`` (feature
        extraction), or fine-tune the backbone with a new head (``strategy="fine-tune"``)."""
        self._validate()
        y_arr = check_labels(y)
        for attr in ("network_", "history_", "image_size_"):
            self.__dict__.pop(attr, None)
        if self.strategy == "fine-tune":
            return self._fit_fine_tune(X, y_arr)
        extractor = self._extractor()
        items = as_items(X, extractor.config.modality)
        if len(items) != len(y_arr):
            raise DataError(f"X has {len(items)} items but y has {len(y_arr)} labels; they must match one to one")
        classes, y_index = np.unique(y_arr, return_inverse=True)
        t0 = time.perf_counter()
        features = extractor.extract(items)
        t1 = time.perf_counter()
        head, estimator = fit_head(
            self.head, features, y_index, self.head_params, random_state=self.random_state, n_jobs=self.n_jobs
        )
        self.fit_timings_ = {"extract_s": t1 - t0, "head_s": time.perf_counter() - t1}
        self.extract_stats_ = dict(extractor.stats_)
        self.classes_ = classes
        self.backbone_ = extractor.config.name
        self.layer_ = extractor.layer
        self.weights_id_ = extractor.identity()["weights"]
        self.n_features_ = extractor.feature_dim
        self.engine_ = extractor.engine_used_ or "cache"
        self.head_ = head
        self.head_estimator_ = estimator
        return self

    # -- inference -------------------------------------------------------------------------------------
    def features(self, X: Any) -> np.ndarray:
        """The embeddings ``(N, D)`` the head sees (from the cache when available)."""
        _check_fitted(self, "head_")
        return self._extractor().extract(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (logits) ``(N, n_classes)``."""
        _check_fitted(self, "head_")
        return self.head_.logits(self.features(X))

    @available_if(_head_is_probabilistic)
    def predict_proba(self, X: Any) -> np.ndarray:
        _check_fitted(self, "head_")
        return self.head_.predict_proba(self.features(X))

    def predict(self, X: Any) -> np.ndarray:
        _check_fitted(self, "head_")
        return self.classes_[self.head_.predict_index(self.features(X))]

    def predict_from_features(self, features: np.ndarray) -> np.ndarray:
        _check_fitted(self, "head_")
        return self.classes_[self.head_.predict_index(features)]

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to a directory (``model.json`` + ``head.safetensors``; no pickle)."""
        from .io import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TransferClassifier:
        from .io import load_model

        return load_model(path)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


__all__ = ["FeatureExtractor", "TransferClassifier", "HeadArrays"]
