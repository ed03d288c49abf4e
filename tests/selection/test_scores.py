"""Tests of the transferability scores in :mod:`transferkit.selection`.

Golden values come from the published reference implementations, run on the inputs built by the
generators below (``np.random.RandomState``, whose streams NumPy keeps stable across versions):

- LogME: thuml/LogME commit 56551ca94a3295bcc37e6a01b1291911af985f07, ``LogME.py``,
  ``LogME(regression=False).fit(X, y)`` (= ``_fit_fixed_point``), with ``@njit`` replaced by the identity
  (numba is not installed; the code is plain NumPy). For N < D the reference sums the log-determinant over
  the rank-k spectrum only (thuml/LogME issue #23); those golden values were produced by the same file
  with the fix of pull request #24 applied (the sigma vector padded with D - k zeros, i.e.
  ``- 0.5 * (D - k) * log(alpha)`` added to both evidence expressions). The unpatched values are kept in
  ``LOGME_HEAD_UNPATCHED`` to show the difference, and the ICML-2021 variant of the same file
  (``_fit_icml``, full D x D eigendecomposition, its own stopping rule) in ``LOGME_ICML``.
- LEEP, NCE, H-score, shrinkage H-score: thuml/Transfer-Learning-Library commit
  c4aa59eb565650a552b809411601d0589efbbfe4, ``tllib/ranking/leep.py``
  (``log_expected_empirical_prediction(P, y)``), ``tllib/ranking/nce.py``
  (``negative_conditional_entropy(P.argmax(1), y)``), ``tllib/ranking/hscore.py`` (``h_score`` and
  ``regularized_h_score``). LEEP and NCE give bit-identical values with ``LEEP.py`` / ``NCE.py`` of the
  thuml/LogME commit above.
- Linear probe: no published reference; it is checked against the protocol written out with
  scikit-learn in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from transferkit.exceptions import ConfigError, DataError, UnknownNameError
from transferkit.selection import (
    SCORE_REGISTRY,
    SCORES,
    compute_score,
    h_score,
    h_score_raw,
    leep_score,
    linear_probe_accuracy,
    logme_score,
    nce_score,
    ridge_loo_accuracy,
    score_info,
)
from transferkit.selection.linear_probe import canonical_order

# ---------------------------------------------------------------------------------------------------------
# Inputs


def make_features(seed: int, n: int, d: int, n_classes: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features (n, d) whose class means are ``signal`` * N(0, I); every class present."""
    rs = np.random.RandomState(seed)
    y = rs.permutation(np.arange(n) % n_classes)
    X = rs.randn(n, d) + signal * rs.randn(n_classes, d)[y]
    return X, y


def make_source_probs(seed: int, n: int, n_source: int, n_classes: int, signal: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax of Gaussian logits (n, n_source); source class ``3 y mod n_source`` gets ``+signal``."""
    rs = np.random.RandomState(seed)
    y = rs.permutation(np.arange(n) % n_classes)
    logits = rs.randn(n, n_source)
    logits[np.arange(n), (3 * y) % n_source] += signal
    return softmax(logits, axis=1), y


def make_rank_deficient(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(300, 34) features of rank 20: 20 informative columns, 10 linear combinations of them, 4 zeros."""
    rs = np.random.RandomState(seed)
    y = rs.permutation(np.arange(300) % 3)
    Z = rs.randn(300, 20) + rs.randn(3, 20)[y]
    return np.hstack([Z, Z[:, :5] @ rs.randn(5, 10), np.zeros((300, 4))]), y


# (seed, N, D, C): N > D multi-class and binary, then N < D multi-class and binary
TALL_MULTI, TALL_BINARY, WIDE_MULTI, WIDE_BINARY = (0, 200, 30, 5), (1, 120, 16, 2), (2, 40, 100, 4), (3, 30, 64, 2)
# (seed, N, Z, C): multi-class, binary, more source classes than items (most never the argmax)
PROBS_MULTI, PROBS_BINARY, PROBS_MANY_SOURCE = (10, 150, 12, 4), (11, 90, 5, 2), (12, 60, 100, 3)

# ---------------------------------------------------------------------------------------------------------
# Golden values (see the module docstring for their provenance)

LOGME_GOLDEN = {
    TALL_MULTI: 0.18823918264324307,
    TALL_BINARY: -0.043475132415852914,
    WIDE_MULTI: 0.25261464261137423,  # reference + PR #24 fix
    WIDE_BINARY: 0.1517427317532058,  # reference + PR #24 fix
}
LOGME_RANK_DEFICIENT_GOLDEN = -0.1305123873520608  # N > D, rank 20 of 34 (reference keeps all 34 directions)
LOGME_HEAD_UNPATCHED = {WIDE_MULTI: 6.212066719570343, WIDE_BINARY: 4.295127345407747}
LOGME_ICML = {WIDE_MULTI: 0.25140278180948705, WIDE_BINARY: 0.15141117641805207}

HSCORE_GOLDEN = {  # tllib regularized_h_score
    TALL_MULTI: 3.438735378403242,
    TALL_BINARY: 0.9394203908257366,
    WIDE_MULTI: 2.979206282223047,
    WIDE_BINARY: 1.0248300590127464,
}
HSCORE_RAW_GOLDEN = {  # tllib h_score; only N > D, where pinv(rcond=1e-15) is well defined
    TALL_MULTI: 3.514600167371169,
    TALL_BINARY: 0.936838037235132,
}
LEEP_GOLDEN = {
    PROBS_MULTI: -1.0417305053362707,
    PROBS_BINARY: -0.43679291931354974,
    PROBS_MANY_SOURCE: -0.988263926639562,
}
NCE_GOLDEN = {
    PROBS_MULTI: -0.5789333982595045,
    PROBS_BINARY: -0.357753011745863,
    PROBS_MANY_SOURCE: -0.14735023850806483,
}

REL = 1e-6


# ---------------------------------------------------------------------------------------------------------
# Agreement with the reference implementations


@pytest.mark.parametrize("case", list(LOGME_GOLDEN), ids=["tall-multi", "tall-binary", "wide-multi", "wide-binary"])
def test_logme_matches_reference(case):
    X, y = make_features(*case)
    assert logme_score(X, y) == pytest.approx(LOGME_GOLDEN[case], rel=REL)


def test_logme_matches_reference_on_rank_deficient_tall_features():
    X, y = make_rank_deficient()
    assert np.linalg.matrix_rank(X) == 20
    assert logme_score(X, y) == pytest.approx(LOGME_RANK_DEFICIENT_GOLDEN, rel=REL)


@pytest.mark.parametrize("case", [WIDE_MULTI, WIDE_BINARY], ids=["wide-multi", "wide-binary"])
def test_logme_wide_uses_full_log_determinant(case):
    """N < D: agrees with the authors' full-spectrum ICML variant, not with the unpatched fast code."""
    X, y = make_features(*case)
    score = logme_score(X, y)
    assert score == pytest.approx(LOGME_ICML[case], rel=1e-2)  # different stopping rule, same optimum
    assert abs(score - LOGME_HEAD_UNPATCHED[case]) > 1.0


def test_logme_accepts_float32_and_lists():
    X, y = make_features(*TALL_MULTI)
    assert logme_score(X.astype(np.float32), y) == pytest.approx(LOGME_GOLDEN[TALL_MULTI], rel=1e-4)
    assert logme_score(X.tolist(), y.tolist()) == pytest.approx(LOGME_GOLDEN[TALL_MULTI], rel=1e-12)


@pytest.mark.parametrize("case", list(HSCORE_GOLDEN), ids=["tall-multi", "tall-binary", "wide-multi", "wide-binary"])
def test_hscore_matches_reference(case):
    X, y = make_features(*case)
    assert h_score(X, y) == pytest.approx(HSCORE_GOLDEN[case], rel=REL)


@pytest.mark.parametrize("case", list(HSCORE_RAW_GOLDEN), ids=["tall-multi", "tall-binary"])
def test_hscore_raw_matches_reference(case):
    X, y = make_features(*case)
    assert h_score_raw(X, y) == pytest.approx(HSCORE_RAW_GOLDEN[case], rel=REL)


@pytest.mark.parametrize("case", [WIDE_MULTI, WIDE_BINARY], ids=["wide-multi", "wide-binary"])
def test_hscore_raw_saturates_at_c_minus_1_when_wide(case):
    """With N <= D every labelling is separable: the raw H-score is C - 1 whatever the features."""
    X, y = make_features(*case)
    noise, _ = make_features(case[0] + 100, *case[1:], signal=0.0)
    assert h_score_raw(X, y) == pytest.approx(case[3] - 1, rel=1e-9)
    assert h_score_raw(noise, y) == pytest.approx(case[3] - 1, rel=1e-9)


@pytest.mark.parametrize("case", list(LEEP_GOLDEN), ids=["multi", "binary", "many-source"])
def test_leep_matches_reference(case):
    P, y = make_source_probs(*case)
    assert leep_score(P, y) == pytest.approx(LEEP_GOLDEN[case], rel=REL)


@pytest.mark.parametrize("case", list(NCE_GOLDEN), ids=["multi", "binary", "many-source"])
def test_nce_matches_reference(case):
    P, y = make_source_probs(*case)
    assert nce_score(P, y) == pytest.approx(NCE_GOLDEN[case], rel=REL)


@pytest.mark.parametrize(
    ("case", "expected_folds"), [(TALL_MULTI, 5), (TALL_BINARY, 5), ((4, 15, 8, 5), 3)], ids=["multi", "binary", "k=3"]
)
def test_linear_probe_follows_the_protocol(case, expected_folds):
    """Same number as standardise + LogisticRegression in a seeded stratified k-fold, k = min(5, n_min)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_features(*case, signal=0.5)  # weak signal: accuracies strictly between chance and 1
    assert min(np.bincount(y).min(), 5) == expected_folds
    order = canonical_order(X)

    def reference(seed: int, C: float = 1.0) -> float:
        return cross_val_score(
            make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000)),
            X[order],
            y[order],
            cv=StratifiedKFold(n_splits=expected_folds, shuffle=True, random_state=seed),
        ).mean()

    default, seed3, weak_c = reference(0), reference(3), reference(0, C=0.01)
    assert len({default, seed3, weak_c}) == 3 and 0.4 < default < 0.95  # so the checks below can tell them apart
    assert linear_probe_accuracy(X, y) == pytest.approx(default, abs=1e-12)  # the default seed is 0
    # the seed and C reach the folds and the model: other values give the reference's other numbers
    assert linear_probe_accuracy(X, y, random_state=3) == pytest.approx(seed3, abs=1e-12)
    assert linear_probe_accuracy(X, y, C=0.01) == pytest.approx(weak_c, abs=1e-12)


def test_canonical_order_ignores_row_order_and_signed_zero():
    X, _ = make_features(*TALL_BINARY)
    X[0, 0] = 0.0
    perm = np.random.RandomState(0).permutation(len(X))
    flipped = X[perm].copy()
    flipped[np.flatnonzero(perm == 0)[0], 0] = -0.0
    np.testing.assert_array_equal(X[canonical_order(X)], flipped[canonical_order(flipped)])


# ---------------------------------------------------------------------------------------------------------
# Invariances, for every score through the registry


def _inputs(name: str) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """(features, labels, source_probs) for ``name``; the unused one is None."""
    if score_info(name).needs_source_probs:
        P, y = make_source_probs(*PROBS_MULTI)
        return None, y, P
    X, y = make_features(*TALL_MULTI, signal=0.5)  # not perfectly separable: the probe is not at 1.0
    return X, y, None


@pytest.mark.parametrize("name", SCORES)
def test_renaming_labels_leaves_score_unchanged(name):
    X, y, P = _inputs(name)
    names = np.array(["zebra", "ant", "moose", "cat", "bee"])  # sorted order differs from code order
    base = compute_score(name, X, y, P)
    assert compute_score(name, X, names[y], P) == pytest.approx(base, rel=1e-9)
    assert compute_score(name, X, 10 * (4 - y) + 7, P) == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("name", SCORES)
def test_permuting_items_leaves_score_unchanged(name):
    X, y, P = _inputs(name)
    perm = np.random.RandomState(1).permutation(len(y))
    base = compute_score(name, X, y, P)
    permuted = compute_score(name, None if X is None else X[perm], y[perm], None if P is None else P[perm])
    assert permuted == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("scale", [1e-3, 1e-2, 0.1])
def test_logme_tall_is_invariant_to_shrinking_features(scale):
    """N > D: the maximum evidence is scale-invariant, and shrinking the features keeps the fixed point
    (11 steps, 0.1 % tolerance) within ~1e-7 of it."""
    X, y = make_features(*TALL_MULTI)
    assert logme_score(scale * X, y) == pytest.approx(logme_score(X, y), rel=1e-6)


def test_logme_drops_when_features_are_scaled_up():
    """Not invariant to enlarging the features: the reference's ``1e-5`` in the alpha update stands for
    ||m||^2, which shrinks like 1/scale^2. x10 moves the score by ~3e-4 (relative), x100 by ~30 %."""
    X, y = make_features(*TALL_MULTI)
    base = logme_score(X, y)
    assert logme_score(10 * X, y) == pytest.approx(base, rel=1e-3)
    assert logme_score(100 * X, y) < base - 0.1 * abs(base)


@pytest.mark.parametrize("case", [WIDE_MULTI, WIDE_BINARY], ids=["wide-multi", "wide-binary"])
@pytest.mark.parametrize("scale", [0.1, 10.0])
def test_logme_wide_is_nearly_invariant_to_scaling(case, scale):
    """N < D: the labels are fit exactly, so the ``1e-5`` and the stopping rule shape the optimum and the
    score moves by ~0.5 % under x0.1 or x10 — but not by nats, as the unpatched reference does (the
    missing ``(D - k) log alpha`` term shifts with log(scale))."""
    X, y = make_features(*case)
    assert abs(logme_score(scale * X, y) - logme_score(X, y)) < 0.01


def test_logme_is_not_translation_invariant():
    """No intercept in the model (as in the paper): adding a constant to every feature changes LogME."""
    X, y = make_features(*TALL_MULTI)
    assert abs(logme_score(X + 1.0, y) - logme_score(X, y)) > 0.01


@pytest.mark.parametrize("score", [h_score, h_score_raw])
@pytest.mark.parametrize("case", [TALL_MULTI, WIDE_MULTI], ids=["tall", "wide"])
def test_hscores_are_invariant_to_affine_rescaling(score, case):
    X, y = make_features(*case)
    base = score(X, y)
    for scale, shift in [(1e-3, 3.0), (1e3, -5.0)]:
        assert score(scale * X + shift, y) == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("case", [TALL_MULTI, WIDE_MULTI, WIDE_BINARY], ids=["tall", "wide", "wide-binary"])
def test_ridge_loo_equals_scikit_learn_ridge_classifier_cv(case):
    """The closed form is RidgeClassifierCV's efficient leave-one-out (scoring="accuracy") on standardised
    features, maximised over the same penalties."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    from transferkit.selection.ridge import RELATIVE_ALPHAS

    X, y = make_features(*case, signal=0.5)
    Z = StandardScaler().fit_transform(X)
    expected = max(RidgeClassifierCV(alphas=[lam * len(y)], scoring="accuracy").fit(Z, y).best_score_
                   for lam in RELATIVE_ALPHAS)
    assert ridge_loo_accuracy(X, y) == pytest.approx(expected, abs=1e-12)


def test_ridge_loo_is_invariant_to_rescaling_each_feature():
    X, y = make_features(*TALL_MULTI, signal=0.5)
    scales = np.random.RandomState(5).uniform(1e-3, 1e3, X.shape[1])
    assert ridge_loo_accuracy(X * scales - 7.0, y) == ridge_loo_accuracy(X, y)
    constant = np.hstack([X, np.full((len(y), 1), 3.0)])  # a constant feature is dropped
    assert ridge_loo_accuracy(constant, y) == ridge_loo_accuracy(X, y)
    with pytest.raises(DataError, match="every feature is constant"):
        ridge_loo_accuracy(np.ones((10, 3)), np.arange(10) % 2)


def test_ridge_loo_scores_the_features_as_the_heads_see_them():
    """The registered score applies the heads' power="auto": the signed square root of non-negative
    features (skewed, like pooled ReLU activations), and nothing to signed ones."""
    X, y = make_features(*TALL_MULTI, signal=0.5)
    skewed = np.exp(X)  # non-negative, heavy-tailed
    rooted = ridge_loo_accuracy(np.sqrt(skewed), y)
    assert rooted != ridge_loo_accuracy(skewed, y)  # the transform matters on this input (0.84 vs 0.715)
    assert ridge_loo_accuracy(skewed, y, power=0.5) == ridge_loo_accuracy(skewed, y, power="auto") == rooted
    assert compute_score("ridge_loo", skewed, y) == rooted
    assert compute_score("ridge_loo", X, y) == ridge_loo_accuracy(X, y)  # signed features: unchanged
    for bad in (0.0, 1.5, "sqrt"):
        with pytest.raises(DataError, match="pass a number in"):
            ridge_loo_accuracy(X, y, power=bad)


# ---------------------------------------------------------------------------------------------------------
# Sanity: inputs that carry the labels beat inputs that do not


@pytest.mark.parametrize("name", SCORES)
def test_informative_inputs_score_higher_than_noise(name):
    if score_info(name).needs_source_probs:
        P, y = make_source_probs(20, 200, 10, 4, signal=3.0)
        noise = softmax(np.random.RandomState(21).randn(200, 10), axis=1)
        good, bad = compute_score(name, None, y, P), compute_score(name, None, y, noise)
    else:
        X, y = make_features(20, 200, 16, 4, signal=1.5)
        noise = np.random.RandomState(21).randn(200, 16)
        good, bad = compute_score(name, X, y), compute_score(name, noise, y)
    assert good > bad


@pytest.mark.parametrize("name", ["logme", "hscore", "ridge_loo", "linear_probe"])
def test_informative_wide_features_score_higher_than_noise(name):
    """N < D, where the raw H-score cannot tell them apart."""
    X, y = make_features(22, 40, 100, 4, signal=1.5)
    noise = np.random.RandomState(23).randn(40, 100)
    assert compute_score(name, X, y) > compute_score(name, noise, y)


# ---------------------------------------------------------------------------------------------------------
# Registry


def test_registry_records():
    assert SCORES == ("logme", "leep", "nce", "hscore", "hscore_raw", "ridge_loo", "linear_probe")
    assert [n for n in SCORES if score_info(n).needs_source_probs] == ["leep", "nce"]
    assert all(score_info(n).higher_is_better for n in SCORES)
    assert score_info("hscore").function is h_score and score_info("hscore_raw").function is h_score_raw
    assert score_info("linear_probe").cost == "costly" and score_info("ridge_loo").cost == "cheap"
    assert set(SCORE_REGISTRY) == set(SCORES)


def test_compute_score_dispatches_to_the_functions():
    X, y = make_features(*WIDE_MULTI)
    P, yp = make_source_probs(*PROBS_MULTI)
    assert compute_score("logme", X, y, source_probs=P[:40]) == logme_score(X, y)  # source_probs ignored
    assert compute_score("hscore", X, y) == h_score(X, y)
    assert compute_score("leep", None, yp, P) == leep_score(P, yp)
    assert compute_score("nce", np.zeros((3, 3)), yp, P) == nce_score(P, yp)  # features ignored


# ---------------------------------------------------------------------------------------------------------
# Bad input


def _X():
    return make_features(*TALL_BINARY)[0][:10]


def _y():
    return np.arange(10) % 2


def _P():
    return np.full((10, 4), 0.25)


def _with(arr, index, value):
    arr = np.array(arr, dtype=float if isinstance(value, float) else None)
    arr[index] = value
    return arr


BAD_FEATURE_INPUTS = [
    (lambda: (_X(), _y()[:9]), "labels has 9 items but features has 10 rows"),
    (lambda: (_with(_X(), (3, 1), np.nan), _y()), r"features\[3, 1\] is nan"),
    (lambda: (_with(_X(), (0, 2), np.inf), _y()), r"features\[0, 2\] is inf"),
    (lambda: (_X()[:, 0], _y()), r"features has shape \(10,\); expected a 2-D"),
    (lambda: (_X()[None], _y()), r"features has shape \(1, 10, 16\)"),
    (lambda: (_X()[:1], _y()[:1]), "at least 2 items"),
    (lambda: (np.full((10, 2), "a"), _y()), "features has dtype <U1"),
    (lambda: ([[1.0, 2.0], [3.0]], [0, 1]), "cannot be read as an array"),
    (lambda: (_X(), np.zeros(10)), r"labels has 1 class \(0.0\); .* at least 2"),
    (lambda: (_X(), np.array(["cat"] * 10)), r"labels has 1 class \('cat'\)"),
    (lambda: (_X(), np.eye(2)[_y()]), r"labels has shape \(10, 2\).*argmax"),
    (lambda: (_X(), _with(_y(), 4, np.nan)), r"labels\[4\] is NaN"),
    (lambda: (_X(), np.array(["a", "b"] * 4 + ["", "a"])), r"labels\[8\] is an empty string"),
    (lambda: (_X(), np.array(["a", "b", None, "a", "b", "a", "b", "a", "b", "a"], dtype=object)), r"labels\[2\] is missing"),
]


@pytest.mark.parametrize("name", ["logme", "hscore", "hscore_raw", "linear_probe"])
@pytest.mark.parametrize(("make", "message"), BAD_FEATURE_INPUTS)
def test_bad_feature_inputs_raise_data_error(name, make, message):
    features, labels = make()
    with pytest.raises(DataError, match=message) as info:
        compute_score(name, features, labels)
    assert "\n" not in str(info.value)


BAD_PROB_INPUTS = [
    (lambda: (_P(), _y()[:8]), "labels has 8 items but source_probs has 10 rows"),
    (lambda: (np.log(_P()), _y()), r"source_probs\[0, 0\] is -1.386; probabilities must be >= 0.*softmax"),
    (lambda: (2 * _P(), _y()), "source_probs row 0 sums to 2, not 1 .*10 such rows.*softmax"),
    (lambda: (_with(_P(), (5, 3), np.nan), _y()), r"source_probs\[5, 3\] is nan"),
    (lambda: (_P()[:, 0], _y()), r"source_probs has shape \(10,\); expected a 2-D"),
    (lambda: (_P(), np.ones(10)), "labels has 1 class"),
]


@pytest.mark.parametrize("name", ["leep", "nce"])
@pytest.mark.parametrize(("make", "message"), BAD_PROB_INPUTS)
def test_bad_probability_inputs_raise_data_error(name, make, message):
    probs, labels = make()
    with pytest.raises(DataError, match=message) as info:
        compute_score(name, None, labels, probs)
    assert "\n" not in str(info.value)


def test_probabilities_within_float32_drift_are_accepted():
    P, y = make_source_probs(*PROBS_MULTI)
    drifted = (P * (1 + 1e-5)).astype(np.float32)
    assert leep_score(drifted, y) == pytest.approx(LEEP_GOLDEN[PROBS_MULTI], rel=1e-5)


@pytest.mark.parametrize(("name", "fill"), [("logme", 0.0), ("hscore", 3.0), ("hscore_raw", -1.0)])
def test_degenerate_features_raise_data_error(name, fill):
    with pytest.raises(DataError, match="all zero|constant"):
        compute_score(name, np.full((10, 3), fill), _y())


def test_linear_probe_needs_two_items_per_class():
    y = np.array(["a", "b"] * 4 + ["c"])
    with pytest.raises(DataError, match="class 'c' has 1 item; .* at least 2 items per class"):
        linear_probe_accuracy(np.random.RandomState(0).randn(9, 3), y)


@pytest.mark.parametrize(
    ("param", "message"),
    [({"max_folds": 1}, "max_folds=1 is not allowed"), ({"C": 0.0}, "C=0.0 is not allowed"),
     ({"random_state": -1}, "random_state=-1")],
)
def test_linear_probe_bad_parameters_raise_config_error(param, message):
    with pytest.raises(ConfigError, match=message):
        linear_probe_accuracy(_X(), _y(), **param)


def test_unknown_score_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="unknown score 'logmee' \\(did you mean 'logme'\\?\\)"):
        compute_score("logmee", _X(), _y())
    with pytest.raises(ConfigError, match="score name 3 is not a string"):
        compute_score(3, _X(), _y())  # type: ignore[arg-type]


def test_missing_inputs_raise_config_error():
    with pytest.raises(ConfigError, match="score 'leep' needs source_probs.*logme"):
        compute_score("leep", _X(), _y())
    with pytest.raises(ConfigError, match="score 'logme' needs features"):
        compute_score("logme", None, _y(), _P())
