"""NCE: negative conditional entropy of the target labels given the source model's hard predictions.

Tran, Nguyen, Hassner. "Transferability and Hardness of Supervised Classification Tasks", ICCV 2019.

The source classifier's hard label of each target item is ``z_i = argmax_z theta_iz``. With the empirical
joint distribution of (y, z) over the N items::

    NCE = -H(Y | Z) = sum_{y, z} P(y, z) log P(y | z)

It is <= 0 and 0 when the source prediction determines the target label; higher is better. Features are
not used; only the source head's outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_probabilities, encode_labels


def nce_score(source_probs: Any, labels: Any) -> float:
    """NCE of the source classifier's ``source_probs`` (N, Z) (rows sum to 1) for the target ``labels`` (N,).

    The source hard labels are ``argmax`` of each row (ties go to the lowest source class). Labels can be
    any hashable values. Returns ``-H(Y | Z)`` in nats (<= 0); higher means the source predictions tell
    more about the target labels.
    """
    theta = check_probabilities(source_probs)
    codes, classes = encode_labels(labels, theta.shape[0], other="source_probs")
    return _negative_conditional_entropy(np.argmax(theta, axis=1), codes, len(classes))


def _negative_conditional_entropy(source_labels: np.ndarray, codes: np.ndarray, n_classes: int) -> float:
    """``-H(Y | Z)`` from integer source labels (N,) and target codes (N,) in [0, n_classes)."""
    _, z = np.unique(source_labels, return_inverse=True)  # only the source classes that occur
    n_source = int(z.max()) + 1
    counts = np.bincount(codes * n_source + z.reshape(-1), minlength=n_classes * n_source)
    counts = counts.reshape(n_classes, n_source).astype(np.float64)  # n(y, z)
    n_z = counts.sum(axis=0)
    y_idx, z_idx = np.nonzero(counts)
    n_yz = counts[y_idx, z_idx]
    # sum_{y,z} P(y, z) log P(y | z) over the non-empty cells (0 log 0 = 0)
    return float(np.sum(n_yz * np.log(n_yz / n_z[z_idx])) / len(codes))
