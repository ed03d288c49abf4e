"""One spectral decomposition of the features, shared by LogME and the H-scores.

Both scores only need the non-zero eigenvalues ``sigma`` of ``X^T X`` and the coordinates ``P = U^T Y`` of
the one-hot class indicators ``Y`` (N, C) on the left singular vectors ``U`` of ``X`` (N, D). As in the
LogME reference code (You et al. 2021, JMLR 2022), these come from

- the Gram matrix ``X^T X`` (D, D) when N > D: an ``O(N D^2)`` product and a D x D eigendecomposition,
  with ``U^T Y = V^T X^T Y / sqrt(sigma)``; cheaper and lighter than an SVD of a tall X;
- a thin SVD of ``X`` when N <= D.

Directions whose eigenvalue is at rounding level are dropped (``X`` has rank ``k = len(sigma)``). The
cut-off is relative, so rescaling ``X`` never changes the rank: ``s_i > s_max * max(N, D) * eps`` for the
SVD (the ``numpy.linalg.matrix_rank`` rule) and ``sigma_i > sigma_max * max(N, D) * eps`` for the Gram
matrix, whose eigenvalues carry an absolute error of about ``eps * sigma_max``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def class_sums(A: np.ndarray, codes: np.ndarray, n_classes: int) -> np.ndarray:
    """``Y^T A`` for the one-hot matrix ``Y`` of ``codes``: row ``c`` is the sum of the rows of ``A`` in class c.

    Shapes: A (N, M), codes (N,) in [0, n_classes) -> (n_classes, M).
    """
    n = len(codes)
    indicator = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_classes, n))
    return np.asarray(indicator @ A)


def label_spectrum(X: np.ndarray, codes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(sigma, P)``: the k non-zero eigenvalues of ``X^T X`` (k,) and ``U_k^T Y`` (k, C).

    ``X`` is a float64 (N, D) array, ``codes`` the class index of each row. ``sum(P[:, c] ** 2)`` is the
    squared norm of the projection of class c's indicator onto the column space of ``X``.
    """
    N, D = X.shape
    eps = np.finfo(np.float64).eps
    if N > D:
        sigma, V = np.linalg.eigh(X.T @ X)
        keep = sigma > sigma[-1] * max(N, D) * eps if sigma[-1] > 0 else np.zeros(D, dtype=bool)
        sigma, V = sigma[keep], V[:, keep]
        XtY = class_sums(X, codes, n_classes).T  # (D, C)
        P = (V.T @ XtY) / np.sqrt(sigma)[:, None]
    else:
        U, s, _ = np.linalg.svd(X, full_matrices=False)
        keep = s > s[0] * max(N, D) * eps if s[0] > 0 else np.zeros(len(s), dtype=bool)
        U, s = U[:, keep], s[keep]
        sigma = s**2
        P = class_sums(U, codes, n_classes).T  # (k, C)
    return sigma, P
