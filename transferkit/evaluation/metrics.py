"""Classification metrics from scikit-learn, in one JSON-able dictionary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1, per-class scores and the confusion matrix.

    Args:
        y_true, y_pred: label arrays of equal length.
        labels: the label values, in the order used for the per-class scores and the confusion matrix
            (default: the sorted union of ``y_true`` and ``y_pred``).
        names: display names for ``labels`` (default: ``str(label)``).

    Returns a dict with ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``, ``n``,
    ``per_class`` (name → precision, recall, f1, support), ``labels`` (names) and ``confusion_matrix``
    (rows = true class, columns = predicted class).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {len(y_true)} labels and y_pred {len(y_pred)}; they must match")
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    labels = np.asarray(labels)
    names = [str(x) for x in (names if names is not None else labels)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_macro": float(pm),
        "recall_macro": float(rm),
        "f1_macro": float(fm),
        "n": int(len(y_true)),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(names)
        },
        "labels": names,
        "confusion_matrix": cm.astype(int).tolist(),
    }
