"""Cross-validated linear-probe accuracy: the costly ground-truth proxy the cheap scores try to predict.

Standardise the features, fit a multinomial logistic regression (scikit-learn, L2, ``C = 1``) and report
the mean accuracy over a seeded stratified k-fold split with ``k = min(max_folds, smallest class count)``
(at least 2). This is the "linear evaluation" protocol used to validate transferability metrics (e.g.
Kornblith, Shlens, Le. "Do Better ImageNet Models Transfer Better?", CVPR 2019), without its per-dataset
tuning of the regularisation strength.

The split must not depend on the order in which items are passed: before splitting, items are put in a
canonical order (sorted by a hash of their feature bytes), so shuffling the rows gives the same folds and
the same score. Only exact duplicate feature rows with different labels can still make the folds depend
on the input order or on the label names.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import float_range, int_range, validate_params
from ..exceptions import DataError
from ._checks import check_features, encode_labels


def linear_probe_accuracy(
    features: Any,
    labels: Any,
    *,
    max_folds: int = 5,
    C: float = 1.0,
    max_iter: int = 1000,
    random_state: int = 0,
) -> float:
    """Mean stratified k-fold accuracy of standardise + logistic regression on ``features`` (N, D).

    ``k = min(max_folds, smallest class count)``; every class needs at least 2 items. ``C`` is the inverse
    L2 strength of :class:`~sklearn.linear_model.LogisticRegression`, ``max_iter`` its L-BFGS budget (a
    probe that has not fully converged is still a fair proxy, so convergence warnings are silenced) and
    ``random_state`` seeds the fold shuffle. Returns the accuracy in [0, 1]; higher is better.
    """
    validate_params(
        "linear_probe_accuracy",
        {"max_folds": max_folds, "C": C, "max_iter": max_iter, "random_state": random_state},
        {
            "max_folds": int_range(2),
            "C": float_range(0, lo_open=True),
            "max_iter": int_range(1),
            "random_state": int_range(0),
        },
    )
    X = check_features(features)
    codes, classes = encode_labels(labels, X.shape[0])
    counts = np.bincount(codes, minlength=len(classes))
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))].item()
        raise DataError(
            f"class {rare!r} has {counts.min()} item; the linear probe needs at least 2 items per class "
            "to cross-validate: add items or drop the class"
        )
    order = canonical_order(X)
    X, codes = X[order], codes[order]
    folds = StratifiedKFold(n_splits=min(max_folds, int(counts.min())), shuffle=True, random_state=random_state)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        accuracies = cross_val_score(probe, X, codes, cv=folds, scoring="accuracy")
    return float(np.mean(accuracies))


def canonical_order(X: np.ndarray) -> np.ndarray:
    """A permutation of the rows of ``X`` (N, D) that depends only on the set of rows, not on their order.

    Rows are sorted by a BLAKE2b digest of their float64 bytes (``-0.0`` is normalised to ``0.0``).
    """
    rows = np.ascontiguousarray(X, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    digests = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]
    return np.array(sorted(range(len(digests)), key=digests.__getitem__), dtype=np.intp)
