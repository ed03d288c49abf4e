"""H-score and its shrinkage-regularised version.

H-score: Bao, Li, Huang, Zheng, Wang, Tian. "An Information-Theoretic Approach to Transferability in Task
Transfer Learning", ICIP 2019::

    H(f) = tr( cov(f)^+ cov(E[f | y]) )

the between-class covariance of the features measured in the metric of their total covariance (a
Fisher-discriminant ratio; at most C - 1). ``cov(f)^+`` is a pseudo-inverse, so with N <= D, or any
rank-deficient features, the raw H-score saturates at C - 1: every labelling is perfectly separable
in the span of the features.

Shrinkage H-score: Ibrahim, Ponomareva, Mazumder. "Newer is not always better: Rethinking transferability
metrics, their peculiarities, stability and performance", ECML PKDD 2022 (arXiv:2110.06893)::

    H_alpha(f) = tr( cov_alpha(f)^-1 (1 - alpha) cov(E[f | y]) )
    cov_alpha(f) = (1 - alpha) S + alpha mu I,  S = X_c^T X_c / N,  mu = tr(S) / D

with the Ledoit-Wolf shrinkage ``alpha`` (``sklearn.covariance.ledoit_wolf_shrinkage``) computed on the
centred features ``X_c``. This is well defined for N < D and is the default ``"hscore"``.

Both follow the Transfer-Learning-Library reference (``tllib/ranking/hscore.py``: ``h_score`` and
``regularized_h_score``), including its normalisations: ``cov(E[f | y])`` uses ``1 / (N - 1)`` while the
Ledoit-Wolf ``S`` uses ``1 / N``, so when ``alpha = 0`` the shrinkage score is ``N / (N - 1)`` times the raw
one. The constant factor does not change rankings on one dataset.

Both scores are invariant to translating and to globally rescaling the features. Higher is better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

from ..exceptions import DataError
from ._checks import check_features, encode_labels
from ._spectral import label_spectrum


def h_score(features: Any, labels: Any) -> float:
    """Shrinkage-regularised H-score (Ibrahim et al. 2022) of ``features`` (N, D) for ``labels`` (N,).

    Use this rather than :func:`h_score_raw` when N is not much larger than D. Cost: one eigen- or
    singular-value decomposition of the centred features plus the O(N D^2) Ledoit-Wolf estimate.
    Returns a float >= 0; higher is better.
    """
    Xc, codes, counts = _centred(features, labels)
    N, D = Xc.shape
    sigma, P = _centred_spectrum(Xc, codes, counts)
    alpha = float(ledoit_wolf_shrinkage(Xc, assume_centered=True))
    mu = float(sigma.sum()) / (N * D)  # tr(S) / D
    # Eigenvalues of cov_alpha on the span of X_c; the class-mean deviations lie in that span, so the
    # remaining D - k eigenvalues (alpha * mu) never meet them.
    cov_alpha = (1.0 - alpha) * sigma / N + alpha * mu
    # In the eigenbasis, the deviation of class c's mean has coordinates sqrt(sigma) * P[:, c] / n_c and
    # cov(E[f | y]) = sum_c n_c d_c d_c^T / (N - 1).
    quad = (sigma / cov_alpha) @ (P**2 / counts)  # sum over eigen-directions, for every class
    return float((1.0 - alpha) * quad.sum() / (N - 1))


def h_score_raw(features: Any, labels: Any) -> float:
    """Raw H-score (Bao et al. 2019) of ``features`` (N, D) for ``labels`` (N,), without shrinkage.

    In the eigenbasis it reduces to ``sum_c ||U^T 1_c||^2 / n_c``: the squared norms of the class
    indicators projected onto the span of the centred features, so it lies in [0, C - 1]. It equals C - 1
    whenever the centred features have rank N - 1, as they generically do when N <= D + 1; it then carries
    no information (use :func:`h_score`). The pseudo-inverse ignores directions at rounding level (see
    ``_spectral``). Returns a float; higher is better.
    """
    Xc, codes, counts = _centred(features, labels)
    sigma, P = _centred_spectrum(Xc, codes, counts)
    return float(np.sum(P**2 / counts))


def _centred(features: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = check_features(features)
    codes, classes = encode_labels(labels, X.shape[0])
    counts = np.bincount(codes, minlength=len(classes)).astype(np.float64)
    return X - X.mean(axis=0), codes, counts


def _centred_spectrum(Xc: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``label_spectrum`` of the centred features, with the class indicators centred too.

    The left singular vectors of ``X_c`` are orthogonal to the all-ones vector, so ``U^T 1_c`` equals
    ``U^T (1_c - n_c / N)`` in exact arithmetic. In floating point, centring features with a large offset
    leaves a rounding-level direction along the all-ones vector; when the features' spread is tiny
    compared to their offset, that direction can pass the rank cut-off, and an uncentred indicator would
    project onto it with weight n_c. Centring the indicators removes it.
    """
    sigma, P = label_spectrum(Xc, codes, len(counts))
    if sigma.size == 0:
        raise DataError("every feature is constant; the H-score needs features that vary across items")
    P = P - np.outer(P.sum(axis=1), counts / counts.sum())  # U^T 1 = sum_c U^T 1_c
    return sigma, P
