"""Input validation shared by the transferability scores.

Each check converts its input to the array the scores compute with (float64 features and probabilities,
integer class codes) and raises :class:`~transferkit.exceptions.DataError` with a one-line message that
names the bad value and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import DataError

#: Rows of ``source_probs`` must sum to 1 within this absolute tolerance (float32 softmax outputs over
#: thousands of classes are off by ~1e-5; logits or unnormalised scores are off by far more).
PROB_SUM_ATOL = 1e-3


def check_features(features: Any, what: str = "features") -> np.ndarray:
    """Return ``features`` as a finite float64 array of shape (N, D) with N >= 2 and D >= 1."""
    X = _as_numeric(features, what)
    if X.ndim != 2:
        hint = " (reshape a single feature with .reshape(-1, 1))" if X.ndim == 1 else ""
        raise DataError(f"{what} has shape {X.shape}; expected a 2-D (n_items, n_features) array{hint}")
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise DataError(f"{what} has shape {X.shape}; expected at least 2 items and 1 feature")
    _check_finite(X, what)
    return X


def check_probabilities(probs: Any, what: str = "source_probs") -> np.ndarray:
    """Return ``probs`` as a float64 (N, Z) array of rows summing to 1 (renormalised to remove float drift)."""
    P = _as_numeric(probs, what)
    if P.ndim != 2:
        raise DataError(
            f"{what} has shape {P.shape}; expected a 2-D (n_items, n_source_classes) array of the source "
            "classifier's probabilities"
        )
    if P.shape[0] < 2 or P.shape[1] < 1:
        raise DataError(f"{what} has shape {P.shape}; expected at least 2 items and 1 source class")
    _check_finite(P, what)
    if (P < 0).any():
        i, j = np.argwhere(P < 0)[0]
        raise DataError(
            f"{what}[{i}, {j}] is {P[i, j]:.4g}; probabilities must be >= 0: pass softmax probabilities, "
            "not logits (scipy.special.softmax(logits, axis=1))"
        )
    sums = P.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_ATOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise DataError(
            f"{what} row {i} sums to {sums[i]:.6g}, not 1 ({int(off.sum())} such rows); pass softmax "
            "probabilities, not logits or scores (scipy.special.softmax(logits, axis=1))"
        )
    return P / sums[:, None]


def encode_labels(
    labels: Any, n_items: int, other: str = "features", what: str = "labels"
) -> tuple[np.ndarray, np.ndarray]:
    """Map arbitrary labels (ints, strings, ...) to codes 0..C-1; return ``(codes, classes)``.

    ``classes`` holds the distinct labels in sorted order and ``codes[i]`` is the index of ``labels[i]``
    in it. Requires one label per row of ``other`` (``n_items`` rows) and at least 2 classes.
    """
    try:
        y = np.asarray(labels)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} cannot be read as an array ({err}); pass one label per item") from None
    if y.ndim != 1:
        hint = " (for one-hot labels pass labels.argmax(axis=1))" if y.ndim == 2 else ""
        raise DataError(f"{what} has shape {y.shape}; expected one label per item (a 1-D array){hint}")
    if len(y) != n_items:
        raise DataError(f"{what} has {len(y)} items but {other} has {n_items} rows; pass one label per row")
    if y.dtype.kind == "f" and np.isnan(y).any():
        bad = int(np.flatnonzero(np.isnan(y))[0])
        raise DataError(f"{what}[{bad}] is NaN; every item needs a label (drop unlabelled rows)")
    if y.dtype.kind == "O":
        for i, v in enumerate(y):
            if v is None or v == "" or (isinstance(v, float) and np.isnan(v)):
                raise DataError(f"{what}[{i}] is missing ({v!r}); every item needs a label (drop unlabelled rows)")
        y = y.astype(str)  # mixed types cannot be sorted; compare them by their text
    elif y.dtype.kind in "US" and (y == y.dtype.type()).any():
        bad = int(np.flatnonzero(y == y.dtype.type())[0])
        raise DataError(f"{what}[{bad}] is an empty string; every item needs a label (drop unlabelled rows)")
    elif y.dtype.kind not in "biufUS":
        raise DataError(f"{what} has dtype {y.dtype}; expected integer or string class labels")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"{what} has {len(classes)} class ({classes[0].item()!r}); a transferability score needs at least 2: "
            "add items of another class"
        )
    return codes.reshape(-1).astype(np.intp), classes


def _as_numeric(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise DataError(f"{what} cannot be read as an array ({err}); pass a rectangular numeric array") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {arr.dtype}; expected a numeric array (convert with np.asarray(..., dtype=float))")
    return arr.astype(np.float64, copy=False)


def _check_finite(arr: np.ndarray, what: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        idx = tuple(int(i) for i in np.argwhere(~finite)[0])
        n_bad = int(arr.size - np.count_nonzero(finite))
        raise DataError(
            f"{what}[{', '.join(map(str, idx))}] is {arr[idx]} ({n_bad} non-finite values); "
            "drop or repair those rows before scoring"
        )

