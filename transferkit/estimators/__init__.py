"""scikit-learn estimators: :class:`TransferClassifier` and :class:`FeatureExtractor`, and
:func:`load_model`.

They follow the scikit-learn contract: ``__init__`` only stores parameters, ``fit`` validates, learns,
sets trailing-underscore attributes and returns ``self``; ``predict``/``transform`` check that the
estimator is fitted. ``clone``, ``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` work, and thanks to
the embedding cache a grid over heads or folds extracts each item's features once. How a
:class:`TransferClassifier` trains is its strategy's business (:mod:`transferkit.strategies`).
"""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import ModelFileError
from ..heads import HeadArrays
from ._base import StrategyEstimator, check_fitted
from .adapter import DomainAdapter
from .classifier import TransferClassifier
from .extractor import FeatureExtractor
from .multitask import MultiTaskClassifier, single_task_comparison
from .regressor import TransferRegressor
from .scratch import SmallCNNClassifier

#: the estimators a model folder can hold, by the name ``model.json`` records
MODEL_CLASSES: dict[str, type[StrategyEstimator]] = {"TransferClassifier": TransferClassifier,
                                                     "TransferRegressor": TransferRegressor,
                                                     "MultiTaskClassifier": MultiTaskClassifier,
                                                     "DomainAdapter": DomainAdapter}


def load_model(path: str | os.PathLike[str], *, weights: str | os.PathLike[str] | None = None) -> Any:
    """Load a model folder written by ``save`` / ``transferkit fit``.

    The folder's manifest is verified first; only JSON and safetensors are read. The backbone is resolved
    by name against this machine's registry (never from the folder's own description of where weights come
    from); ``weights`` names a local weights file for a backbone that is not registered here, or that was
    trained with its own weights file.
    """
    from ..saved import read_checked

    def build(doc: dict[str, Any], files: dict[str, dict[str, Any]]) -> Any:
        cls = MODEL_CLASSES.get(str(doc.get("estimator")))
        if cls is None:
            raise ModelFileError(f"{str(path)!r} holds a {doc.get('estimator')!r}, which this transferkit cannot load "
                                 f"(it knows {', '.join(MODEL_CLASSES)})")
        return cls._from_saved(doc, files, weights)

    return read_checked(path, build)


def save_model(model: Any, path: str | os.PathLike[str]) -> Any:
    """Save a fitted estimator to folder ``path`` (same as ``model.save(path)``)."""
    return model.save(path)


__all__ = ["DomainAdapter", "FeatureExtractor", "HeadArrays", "MultiTaskClassifier", "SmallCNNClassifier", "TransferClassifier", "TransferRegressor", "check_fitted", "load_model", "save_model", "single_task_comparison"]
