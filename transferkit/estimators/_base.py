"""What the estimators share: the backbone parameters and their rules, the strategy context, fitted-state
checks, and the model folder (save / load through :mod:`transferkit.io` and the strategy registry)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Self

from .._validation import Rule, instance_of, int_range, one_of, validate_params
from ..backbones import BACKBONES, BackboneConfig, get_config
from ..exceptions import ConfigError, DataError, ModelFileError, NotFittedError
from ..extraction import ENGINES, PRECISIONS, check_tta
from ..saved import NOT_SAVED as _NOT_SAVED  # machine-specific parameters, not saved
from ..strategies import STRATEGIES, Context, Strategy, get_strategy


def _backbone_rule() -> Rule:
    from ..backbones import is_known

    return Rule(is_known, "a registered backbone name, a torchvision/timm architecture or hf:PATH",
                tuple(BACKBONES.names(include_aliases=True)))


COMMON_RULES: dict[str, Rule] = {
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
    "n_jobs": Rule(lambda v: v is None or (isinstance(v, int) and v != 0), "a non-zero integer or None"),
    "checkpoint_dir": instance_of(str, os.PathLike, allow_none=True),
    "resume": instance_of(bool),
    "strategy_params": instance_of(dict, allow_none=True),
    "multilabel": instance_of(bool),
    "precision": one_of(*PRECISIONS),
}



def store_params(est: Any, values: dict[str, Any]) -> None:
    """``__init__``'s body: keep every parameter as given (the scikit-learn contract)."""
    for name, value in values.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


def check_fitted(est: Any, attr: str) -> None:
    if not hasattr(est, attr):
        raise NotFittedError(
            f"this {type(est).__name__} is not fitted yet; call fit(X, y) first (or load a saved model)"
        )


class BackboneParams:
    """Parameter handling of estimators built on a backbone (mixed into scikit-learn estimators)."""

    backbone: str
    layer: str | None
    image_size: int | None
    tta: str

    def _validate_common(self) -> BackboneConfig:
        params = self.get_params(deep=False)  # type: ignore[attr-defined]
        validate_params(type(self).__name__, params, dict(COMMON_RULES, backbone=_backbone_rule()))
        config = get_config(self.backbone)
        config.resolve_layer(self.layer)
        if self.image_size is not None and config.modality != "image":
            raise ConfigError(f"{type(self).__name__}: image_size={self.image_size} was given but {config.name!r} is a "
                              f"{config.modality} backbone")
        check_tta(self.tta, config, type(self).__name__)
        return config

    def _context(self) -> Context:
        from ..saved import context_from_params

        return context_from_params(self.get_params(deep=False), type(self).__name__)  # type: ignore[attr-defined]


class StrategyEstimator(BackboneParams):
    """An estimator whose fitted state is a :class:`~transferkit.strategies.Strategy` (``strategy_``)."""

    #: the task of the strategies this estimator offers (the registry's ``Strategy.solves``)
    task: ClassVar[str] = "classification"
    strategy: str

    def _make_objective(self) -> Any:
        """A fresh objective of this estimator's task (:mod:`transferkit.objectives`)."""
        from ..objectives import OBJECTIVES

        return OBJECTIVES.get(self._task())()

    def _task(self) -> str:
        return self.task

    def _strategy_class(self) -> type[Strategy]:
        task = self._task()
        rule = one_of(*[n for n in STRATEGIES if STRATEGIES.get(n).solves(task)])
        validate_params(type(self).__name__, {"strategy": self.strategy}, {"strategy": rule})
        return get_strategy(self.strategy, task=task)

    def _configure(self) -> tuple[type[Strategy], Context, Any]:
        """Validate every parameter once: the common ones, then the strategy's own options."""
        self._validate_common()
        cls = self._strategy_class()
        context = self._context().replace(objective=self._make_objective())
        cls.check_precision(context.precision, type(self).__name__)
        return cls, context, cls.configure(self.get_params(deep=False), context)  # type: ignore[attr-defined]

    def fit(self, X: Any, y: Any) -> Any:
        """Validate the parameters (once), then train the strategy on items ``X`` and targets ``y``."""
        return self._fit_configured(self._configure(), X, y)

    def _fit_configured(self, configured: tuple[Any, Any, Any], X: Any, y: Any) -> Any:
        """:meth:`fit` with the parameters already validated by :meth:`_configure` (the workflow validates
        before it announces the fit, and does not validate twice)."""
        from ..data.items import as_items

        cls, context, config = configured
        objective = context.objective
        Y = objective.fit_encode(y)
        modality = context.config.modality
        cls.check_modality(modality, type(self).__name__)
        items = as_items(X, modality)
        if len(items) != len(Y):
            raise DataError(f"X has {len(items)} items but y has {len(Y)} labels; they must match one to one")
        strategy = cls(config, context)
        strategy.fit_targets(items, Y)
        self._adopt(strategy)
        return self

    # -- inference -------------------------------------------------------------------------------------
    def features(self, X: Any) -> Any:
        """The embeddings ``(N, D)`` the head sees (from the cache when available)."""
        check_fitted(self, "strategy_")
        self.strategy_.context = self.strategy_.context.replace(progress=self.progress)  # type: ignore[attr-defined]
        out = self.strategy_.features(X)
        self.engine_ = self.strategy_.engine
        return out

    def use_precision(self, precision: str) -> Any:
        """Predict with ``precision`` (``fp32``/``int8``) instead of the precision the model was fitted
        with; returns the estimator. fp32 always works; int8 needs an int8 model or a text model."""
        check_fitted(self, "strategy_")
        self.strategy_.use_precision(precision)
        self.precision_ = self.strategy_.context.precision
        return self

    def decision_function(self, X: Any) -> Any:
        """The head's outputs ``(N, n_outputs)``: class scores (logits), or values for regression."""
        return self.strategy_.logits(self.features(X))

    def predict(self, X: Any) -> Any:
        return self.predict_from_features(self.features(X))

    def predict_from_features(self, features: Any) -> Any:
        """Predictions in the user's terms from embeddings the head reads (see :meth:`features`)."""
        check_fitted(self, "strategy_")
        return self.objective_.decode(self.head_, self.strategy_.logits(features))

    def _adopt(self, strategy: Strategy) -> None:
        """Expose a fitted strategy through the estimator's trailing-underscore attributes."""
        for attr in ("network_", "history_", "image_size_", "head_estimator_"):
            self.__dict__.pop(attr, None)
        self.strategy_ = strategy
        self.objective_ = strategy.context.objective
        for name, value in self._objective_attributes(self.objective_).items():
            setattr(self, name, value)
        assert strategy.trunk is not None
        self.backbone_ = strategy.trunk.name
        self.layer_ = strategy.layer
        self.weights_id_ = strategy.weights_id
        self.n_features_ = strategy.n_features
        self.engine_ = strategy.engine
        self.precision_ = strategy.context.precision
        self.head_ = strategy.head
        self.fit_timings_ = dict(strategy.info.get("timings", {}))
        self.extract_stats_ = dict(strategy.info.get("extraction", {}))
        for name, value in strategy.fitted_attributes().items():
            setattr(self, name, value)

    def _objective_attributes(self, objective: Any) -> dict[str, Any]:
        """Fitted attributes the objective's state gives (e.g. ``classes_``)."""
        return {}

    # -- the model folder ------------------------------------------------------------------------------
    def _model_doc(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """``(model.json, tensor files)`` of the fitted estimator (see :mod:`transferkit.io`)."""
        from .. import __version__
        from ..io import FORMAT, FORMAT_VERSION

        check_fitted(self, "strategy_")
        strategy: Strategy = self.strategy_
        meta, files = strategy.state()
        params = self.get_params(deep=False)  # type: ignore[attr-defined]
        assert strategy.trunk is not None
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "transferkit_version": __version__,
            "estimator": type(self).__name__,
            "params": {k: v for k, v in params.items() if k not in _NOT_SAVED},
            "weights_path": str(params["weights"]) if params.get("weights") is not None else None,
            "backbone": strategy.trunk.to_dict(),
            "objective": {"name": self.objective_.name, "state": self.objective_.state()},
            "strategy": {"name": strategy.name, "state": meta},
        }
        return doc, files

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to folder ``path`` as one step (``model.json``, safetensors, manifest;
        no pickle). An earlier model there is replaced whole, or stays intact if the write fails."""
        from ..io import write_folder

        doc, files = self._model_doc()
        return write_folder(path, doc, files)

    @classmethod
    def load(cls, path: str | os.PathLike[str], weights: str | os.PathLike[str] | None = None) -> Self:
        """The model saved in folder ``path`` (by :meth:`save` or ``transferkit fit``), which must be one of
        this class; ``weights``: the backbone's weights file, when it is not installed here."""
        from . import load_model

        model = load_model(path, weights=weights)
        if not isinstance(model, cls):
            raise TypeError(f"{str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.input_tags.two_d_array = False  # items are paths, texts, images or waveforms
        return tags

    @classmethod
    def _from_saved(cls, doc: dict[str, Any], files: dict[str, dict[str, Any]],
                    weights: str | os.PathLike[str] | None = None) -> Any:
        from ..saved import restore, saved_params

        try:
            est = cls(**saved_params(doc), weights=weights)
        except TypeError as exc:
            raise ModelFileError(f"model.json names parameters this transferkit does not know ({exc}); re-save the "
                                 "model with this version") from exc
        strategy, _ = restore(doc, files, weights, owner=cls.__name__, params=est.get_params(deep=False))
        est._adopt(strategy)
        est.engine_ = None
        return est
