"""LEEP: log expected empirical prediction of a source classifier on the target labels.

Nguyen, Hassner, Seeger, Archambeau. "LEEP: A New Measure to Evaluate Transferability of Learned
Representations", ICML 2020.

Given the source model's probabilities ``theta`` (N, Z) over its Z source classes on the target items and
the target labels y, LEEP builds the empirical joint ``P(y, z) = 1/N sum_{i: y_i = y} theta_iz`` and the
conditional ``P(y | z) = P(y, z) / P(z)``, then scores the "expected empirical predictor" that re-labels
source predictions through ``P(y | z)``::

    LEEP = 1/N sum_i log( sum_z P(y_i | z) theta_iz )

It is the average log-likelihood of that predictor, so it is <= 0 and higher is better. Features are not
used; only the source head's outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_probabilities, encode_labels


def leep_score(source_probs: Any, labels: Any) -> float:
    """LEEP of the source classifier's ``source_probs`` (N, Z) (rows sum to 1) for the target ``labels`` (N,).

    Labels can be any hashable values; they are mapped to 0..C-1. Returns the mean log-likelihood in
    nats (<= 0); higher means the source predictions transfer better.
    """
    theta = check_probabilities(source_probs)
    codes, classes = encode_labels(labels, theta.shape[0], other="source_probs")
    n_items = theta.shape[0]

    joint = np.zeros((len(classes), theta.shape[1]))  # P(y, z), (C, Z)
    np.add.at(joint, codes, theta / n_items)
    p_z = joint.sum(axis=0)
    # A source class that no item gives any probability has theta_iz = 0 everywhere, so its P(y | z) is
    # never used; set it to 0 instead of 0/0.
    p_y_given_z = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # (C, Z)

    # sum_z theta_iz P(y_i | z): a sum of non-negative terms, no cancellation. It cannot underflow either:
    # some z has theta_iz >= 1/Z, and item i alone puts theta_iz / N into P(y_i, z) <= P(z) <= 1, so the
    # sum is at least 1 / (Z^2 N). Plain float64 products are therefore exact enough; no log-sum-exp needed.
    expected = np.einsum("iz,iz->i", theta, p_y_given_z[codes])
    return float(np.mean(np.log(expected)))
