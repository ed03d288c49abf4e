"""Shallow domain adaptation on frozen embeddings (any modality), as linear maps.

Each method turns the labelled source embeddings into the space a linear classifier trains in, and gives
the *linear* map that takes a target embedding into the same space — so the classifier and the map fold
into one :class:`~transferkit.heads.HeadArrays` (signed power → standardise → one dense layer) that is saved,
predicted and exported to ONNX like any feature-extraction head. Methods (as skada names them):

- ``source-only``: no adaptation (source standardisation for both domains) — the baseline.
- ``coral`` (Sun, Feng & Saenko 2016): each domain standardised by its own statistics, then the source
  whitened by ``(C_s + reg·I)^{-1/2}`` and re-coloured by ``(C_t + reg·I)^{1/2}``.
- ``subspace`` (subspace alignment, Fernando et al. 2013): source PCA basis ``P_s`` aligned to the target's
  ``P_t`` by ``M = P_sᵀ P_t``; the source is projected by ``P_s M``, the target by ``P_t``.
- ``tca`` (transfer component analysis, Pan et al. 2011) with a linear kernel, solved in the primal: the
  directions ``W`` maximising the pooled variance ``Xᵀ H X`` against the mean discrepancy ``Xᵀ L X + μ I``.
- ``reweight`` (importance weighting, Shimodaira 2000): source samples weighted by the density ratio
  ``p_t(x) / p_s(x)`` a logistic domain classifier estimates (clipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from ...heads import HeadArrays, auto_power, signed_power
from .methods import SHALLOW_METHODS  # noqa: F401  (re-exported: the one list of names)


@dataclass
class Alignment:
    """Source features ready for the classifier, and the target side as ``standardise → @ target_map``."""

    source: np.ndarray
    target_map: np.ndarray  # (D, k)
    mean: np.ndarray
    scale: np.ndarray
    power: float
    sample_weight: np.ndarray | None = None


def _stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, scale = X.mean(0), X.std(0)
    return mean, np.where(scale > 1e-8, scale, 1.0)


def _sym_power(C: np.ndarray, p: float) -> np.ndarray:
    vals, vecs = np.linalg.eigh((C + C.T) / 2)
    vals = np.clip(vals, 1e-10, None)
    return (vecs * vals**p) @ vecs.T


def _pca(X: np.ndarray, k: int) -> np.ndarray:
    _, _, vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    return vt[:k].T  # (D, k)


def density_ratio(F_source: np.ndarray, F_target: np.ndarray, F_eval: np.ndarray, *, seed: int = 0,
                  clip: float = 20.0) -> np.ndarray:
    """``p_t(x) / p_s(x)`` at ``F_eval`` from a logistic domain classifier (source vs target), scaled by the
    domain sizes and clipped to ``clip`` times the mean (importance-weighted validation, Sugiyama 2007)."""
    X = np.vstack([F_source, F_target])
    mean, scale = _stats(X)
    d = np.r_[np.zeros(len(F_source)), np.ones(len(F_target))]
    clf = LogisticRegression(C=0.1, max_iter=500, random_state=seed).fit((X - mean) / scale, d)
    p = np.clip(clf.predict_proba((F_eval - mean) / scale)[:, 1], 1e-6, 1 - 1e-6)
    w = p / (1 - p) * len(F_source) / len(F_target)
    return np.minimum(w, clip * w.mean())


def align(method: str, F_s: np.ndarray, F_t: np.ndarray, *, n_components: int = 64, reg: float = 1.0,
          mu: float = 1.0, seed: int = 0) -> Alignment:
    """The :class:`Alignment` of ``method`` (one of :data:`SHALLOW_METHODS`) for source ``F_s``, target ``F_t``."""
    power = auto_power(np.vstack([F_s, F_t]))
    S, T = signed_power(F_s, power), signed_power(F_t, power)
    D = S.shape[1]
    k = int(max(1, min(n_components, D, len(S) - 1, len(T) - 1)))
    if method == "source-only":
        mean, scale = _stats(S)
        return Alignment((S - mean) / scale, np.eye(D), mean, scale, power)
    if method == "reweight":
        mean, scale = _stats(S)
        w = density_ratio(S, T, S, seed=seed)
        return Alignment((S - mean) / scale, np.eye(D), mean, scale, power, sample_weight=w / w.mean())
    if method == "coral":
        ms, ss = _stats(S)
        mt, st = _stats(T)
        Zs, Zt = (S - ms) / ss, (T - mt) / st
        A = _sym_power(np.cov(Zs, rowvar=False) + reg * np.eye(D), -0.5) @ _sym_power(
            np.cov(Zt, rowvar=False) + reg * np.eye(D), 0.5)
        return Alignment(Zs @ A, np.eye(D), mt, st, power)
    if method == "subspace":
        ms, ss = _stats(S)
        mt, st = _stats(T)
        Zs, Zt = (S - ms) / ss, (T - mt) / st
        Ps, Pt = _pca(Zs, k), _pca(Zt, k)
        return Alignment(Zs @ Ps @ (Ps.T @ Pt), Pt, mt, st, power)
    if method == "tca":
        X = np.vstack([S, T])
        mean, scale = _stats(X)
        Z = (X - mean) / scale
        Zs, Zt = Z[: len(S)], Z[len(S):]
        delta = (Zs.mean(0) - Zt.mean(0))[:, None]
        # linear-kernel TCA in the primal: max tr(Wᵀ Zᵀ H Z W) s.t. Wᵀ (Zᵀ L Z + μ I) W = I;  Zᵀ L Z = δ δᵀ
        M = delta @ delta.T + mu * np.eye(D)
        Minv_half = _sym_power(M, -0.5)
        vals, vecs = np.linalg.eigh(Minv_half @ np.cov(Z, rowvar=False) @ Minv_half)
        W = Minv_half @ vecs[:, ::-1][:, :k]
        W = W / np.maximum(np.sqrt((Z @ W).var(0)), 1e-8)  # unit variance components
        return Alignment(Zs @ W, W, mean, scale, power)
    raise ValueError(f"unknown shallow method {method!r}")


def fit_linear(al: Alignment, y_index: np.ndarray, n_classes: int, *, C: float = 1.0, seed: int = 0,
               kind: str = "coral") -> tuple[HeadArrays, np.ndarray, np.ndarray]:
    """A multinomial logistic regression on the aligned source, folded with the target map into one head;
    returns ``(head, coef, bias)`` (``coef``/``bias``: the classifier in the aligned space)."""
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed)
    clf.fit(al.source, y_index, sample_weight=al.sample_weight)
    coef, bias = clf.coef_, clf.intercept_
    if n_classes == 2:  # stored as logits [0, z] (see HeadArrays)
        coef, bias = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, bias]
    full_coef, full_bias = np.zeros((n_classes, coef.shape[1])), np.full(n_classes, -1e4)
    present = clf.classes_ if n_classes > 2 else np.arange(2)
    full_coef[present], full_bias[present] = coef, bias
    W = full_coef @ al.target_map.T  # (C, D)
    head = HeadArrays(f"da-{kind}", al.mean, al.scale, [W], [full_bias], power=al.power,
                      params={"C": C, "trained_by": f"logistic regression on {kind}-aligned source features"})
    return head, full_coef, full_bias


def target_view(al: Alignment, F_t: np.ndarray) -> np.ndarray:
    """The target features in the classifier's space (for selection scores)."""
    return ((signed_power(F_t, al.power) - al.mean) / al.scale) @ al.target_map
