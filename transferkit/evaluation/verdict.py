"""Did transfer help? The gain over the from-scratch baseline, with a confidence interval and a verdict.

The gain is the difference in accuracy between the transferred model and the baseline on the same test
items. Its confidence interval comes from a paired bootstrap over test items (both models are scored on
the same resampled items, so the interval reflects the paired difference, not two independent errors).
When the test classes are imbalanced (the largest has at least ``IMBALANCE_RATIO`` times the items of the
smallest) the verdict is on balanced accuracy (macro recall) instead: plain accuracy would mostly measure the
majority classes, where a baseline that ignores the rare ones can look as good as a model that finds them.

- ``positive transfer``: the whole interval lies above zero;
- ``negative transfer``: the whole interval lies below zero;
- ``no significant gain``: the interval contains zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

POSITIVE = "positive transfer"
NONE = "no significant gain"
NEGATIVE = "negative transfer"
IMBALANCE_RATIO = 2.0
METRIC_WORDS = {"accuracy": "accuracy", "recall_macro": "balanced accuracy"}
VERDICT_METRICS = ("auto", "accuracy", "recall_macro")


def bootstrap_gain(
    correct_transfer: np.ndarray,
    correct_baseline: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    classes: np.ndarray | None = None,
) -> tuple[float, float, float]:
    """Paired bootstrap of the accuracy difference; returns ``(gain, ci_low, ci_high)``.

    Args:
        correct_transfer, correct_baseline: boolean arrays (N,), whether each test item was classified
            correctly by each model.
        classes: optional true class of each item (N,); then the difference is in balanced accuracy (the mean
            over classes of each class's recall; a class absent from a resample is left out of its mean).
    """
    a = np.asarray(correct_transfer, dtype=np.float64)
    b = np.asarray(correct_baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("correct_transfer and correct_baseline must be 1-D arrays of the same non-zero length")
    diff = a - b
    n = diff.size
    if classes is None:
        def stat(idx: np.ndarray) -> np.ndarray:
            return diff[idx].mean(axis=-1)
    else:
        codes = np.unique(np.asarray(classes), return_inverse=True)[1].reshape(-1)
        if codes.size != n:
            raise ValueError(f"classes has {codes.size} items, the correctness arrays {n}")
        k = int(codes.max()) + 1

        def stat(idx: np.ndarray) -> np.ndarray:
            idx = np.atleast_2d(idx)
            cells = (np.arange(len(idx))[:, None] * k + codes[idx]).ravel()
            count = np.bincount(cells, minlength=len(idx) * k).reshape(len(idx), k)
            total = np.bincount(cells, weights=diff[idx].ravel(), minlength=len(idx) * k).reshape(len(idx), k)
            present = count > 0
            return (total / np.maximum(count, 1)).sum(axis=1) / present.sum(axis=1)

    gain = float(np.ravel(stat(np.arange(n)))[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):  # chunks keep memory at 256 × N
        stop = min(n_resamples, start + 256)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = stat(idx)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return gain, float(lo), float(hi)


def paired_bootstrap(per_item_transfer: np.ndarray, per_item_baseline: np.ndarray, statistic: Any, *,
                     n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Paired bootstrap of a difference between two models scored on the same items; returns
    ``(gain, ci_low, ci_high)`` of ``statistic(transfer) - statistic(baseline)``.

    ``per_item_*``: ``(N, k)`` additive per-item quantities (e.g. absolute errors; true/false positives and
    false negatives); ``statistic(sums, n)`` maps their sums over a resample ``(R, k)`` to ``(R,)`` values.
    """
    a = np.asarray(per_item_transfer, dtype=np.float64).reshape(len(per_item_transfer), -1)
    b = np.asarray(per_item_baseline, dtype=np.float64).reshape(len(per_item_baseline), -1)
    if a.shape != b.shape or a.shape[0] == 0:
        raise ValueError("the per-item arrays must have the same non-zero shape")
    n = a.shape[0]
    gain = float(statistic(a.sum(0)[None], n)[0] - statistic(b.sum(0)[None], n)[0])
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for start in range(0, n_resamples, 256):
        stop = min(n_resamples, start + 256)
        idx = rng.integers(0, n, size=(stop - start, n))
        values[start:stop] = statistic(a[idx].sum(1), n) - statistic(b[idx].sum(1), n)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return gain, float(lo), float(hi)


def verdict_record(gain: float, lo: float, hi: float, *, metric: str, n_test: int, text: str, steps: list[str],
                   n_resamples: int = 2000, confidence: float = 0.95) -> dict[str, Any]:
    """The ``verdict`` block of ``results.json`` for a gain (higher is better for transfer) and its interval."""
    return {"verdict": classify_gain(lo, hi), "metric": metric, "gain": gain, "ci_low": lo, "ci_high": hi,
            "confidence": confidence,
            "method": f"paired bootstrap over {n_test} test items ({n_resamples} resamples)",
            "explanation": text, "next_steps": steps}


def verdict_metric(y_true: Any, metric: str = "auto") -> str:
    """The metric the verdict is on: ``accuracy``, or ``recall_macro`` (balanced accuracy) when ``metric`` is
    ``auto`` and the largest test class has at least :data:`IMBALANCE_RATIO` times the items of the smallest."""
    if metric not in VERDICT_METRICS:
        raise ValueError(f"verdict metric {metric!r} is not one of {', '.join(VERDICT_METRICS)}")
    if metric != "auto":
        return metric
    counts = np.unique(np.asarray(y_true), return_counts=True)[1]
    return "recall_macro" if counts.size > 1 and counts.max() >= IMBALANCE_RATIO * counts.min() else "accuracy"


def classify_gain(ci_low: float, ci_high: float) -> str:
    if ci_low > 0:
        return POSITIVE
    if ci_high < 0:
        return NEGATIVE
    return NONE


def _explain(verdict: str, gain: float, lo: float, hi: float, baseline_name: str, modality: str | None,
             n_test: int, metric: str = "accuracy") -> tuple[str, list[str]]:
    pts = f"{100 * gain:+.1f} points"
    ci = f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f}"
    of = METRIC_WORDS.get(metric, metric)
    if verdict == POSITIVE:
        text = (f"The pretrained model beats the {baseline_name} by {pts} of {of} ({ci}) on {n_test} held-out "
                "items: transfer helps on this data.")
        steps = [
            "rank other backbones and layers with `transferkit rank` to see whether a better one exists",
            "try fine-tuning (`--strategy fine-tune`) if more accuracy is needed and time allows",
        ]
    elif verdict == NEGATIVE:
        text = (f"The pretrained model is worse than the {baseline_name} by {100 * -gain:.1f} points of {of} "
                f"({ci}): this is negative transfer — the pretrained features fit this data less well than the "
                "raw inputs do.")
        steps = [
            "try an intermediate layer (`--layer`), whose features are less specific to the source task",
            "try another backbone closer to this data (`transferkit rank` compares them)",
            "fine-tune the top blocks so the features adapt to this domain",
            "if labelled target data differs from unlabelled deployment data, consider domain adaptation",
            "otherwise keep the from-scratch baseline: it is the better model here",
        ]
    else:
        text = (f"The difference in {of} from the {baseline_name} ({pts}, {ci}) is within what chance on {n_test} "
                "test items allows: there is no significant gain from transfer.")
        steps = [
            "collect more test items to narrow the interval, or evaluate across several seeds",
            "try an intermediate layer or another backbone (`transferkit rank`)",
            "try fine-tuning, which often helps when frozen features are only as good as raw inputs",
        ]
    if metric == "recall_macro":
        text += (" The test classes are imbalanced, so the verdict is on balanced accuracy (the mean of the "
                 "per-class recalls) rather than plain accuracy.")
    if modality == "text" and verdict != POSITIVE:
        steps.insert(0, "for text, compare word vectors (glove-6b-50d) with the sentence encoder (minilm-l6)")
    return text, steps


def transfer_verdict(
    y_true: np.ndarray,
    pred_transfer: np.ndarray,
    pred_baseline: np.ndarray,
    *,
    baseline_name: str = "from-scratch baseline",
    modality: str | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    metric: str = "auto",
) -> dict[str, Any]:
    """The verdict dictionary stored in ``results.json`` under ``verdict``.

    ``metric``: ``accuracy``, ``recall_macro`` (balanced accuracy) or ``auto`` (:func:`verdict_metric`).
    """
    y_true = np.asarray(y_true)
    metric = verdict_metric(y_true, metric)
    ct = np.asarray(pred_transfer) == y_true
    cb = np.asarray(pred_baseline) == y_true
    gain, lo, hi = bootstrap_gain(ct, cb, n_resamples=n_resamples, confidence=confidence, seed=seed,
                                  classes=y_true if metric == "recall_macro" else None)
    verdict = classify_gain(lo, hi)
    text, steps = _explain(verdict, gain, lo, hi, baseline_name, modality, int(y_true.size), metric)
    return {
        "verdict": verdict,
        "metric": metric,
        "gain": gain,
        "ci_low": lo,
        "ci_high": hi,
        "confidence": confidence,
        "method": f"paired bootstrap over {int(y_true.size)} test items ({n_resamples} resamples)",
        "explanation": text,
        "next_steps": steps,
    }


def strongest_baseline(y_true: Any, predictions: list[Any], metric: str = "auto") -> int:
    """Index of the from-scratch model that scores highest on the verdict's metric (the first one on a tie).

    The verdict compares transfer with the strongest from-scratch model, so a weak baseline (a small CNN at
    chance on a hundred images while raw pixels do well) never makes transfer look good. Choosing it on the
    test set favours the baseline: a positive verdict stays conservative.
    """
    if not predictions:
        raise ValueError("no baseline predictions to choose from")
    y = np.asarray(y_true)
    balanced = verdict_metric(y, metric) == "recall_macro"
    scores = []
    for p in predictions:
        correct = np.asarray(p) == y
        scores.append(np.mean([correct[y == c].mean() for c in np.unique(y)]) if balanced else correct.mean())
    return int(np.argmax(scores))


def verdict_from_seed_gains(gains: list[float] | np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """Verdict from per-seed gains (t-interval across seeds), for benchmark tables."""
    from scipy import stats

    g = np.asarray(gains, dtype=np.float64)
    if g.size < 2:
        raise ValueError("need gains from at least two seeds")
    mean = float(g.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, g.size - 1) * g.std(ddof=1) / np.sqrt(g.size))
    lo, hi = mean - half, mean + half
    return {"verdict": classify_gain(lo, hi), "gain": mean, "ci_low": lo, "ci_high": hi, "confidence": confidence,
            "method": f"t-interval across {g.size} seeds"}
