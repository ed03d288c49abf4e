"""Multi-label tagging: any number of tags per item. A sigmoid per tag; one logistic regression per tag on
frozen features (``C`` by cross-validation), each tag's decision threshold tuned for its F1 on
cross-validated (frozen features) or validation (fine-tuning) predictions, never on the test items;
micro / macro F1, subset accuracy and per-tag scores; the verdict on micro-F1 against the from-scratch
per-tag logistic regression, with a paired-bootstrap interval."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..exceptions import DataError
from .base import Objective, register_objective

CS = tuple(float(c) for c in np.logspace(-3, 2, 6))
TAG_SEPARATOR = ";"


def as_tag_lists(y: Any, separator: str = TAG_SEPARATOR) -> list[list[str]]:
    """Tags per item from strings (``"red;cotton"``), lists of tags, or a 0/1 indicator matrix (tags
    ``"0"``, ``"1"``, ...). An empty tag name is an error."""
    arr = y if isinstance(y, list) else list(y) if not isinstance(y, np.ndarray) else y
    if isinstance(arr, np.ndarray) and arr.ndim == 2:
        return [[str(j) for j in np.flatnonzero(row)] for row in arr]
    out = []
    for i, v in enumerate(arr):
        tags = [t.strip() for t in v.split(separator)] if isinstance(v, str) else [str(t).strip() for t in v]
        if isinstance(v, str) and not v.strip():
            tags = []
        if any(not t for t in tags):
            raise DataError(f"item {i} has an empty tag name in {v!r}; remove doubled or trailing "
                            f"'{separator}' separators")
        out.append(sorted(set(tags)))
    return out


@register_objective
class MultiLabel(Objective):
    name = "multilabel"
    heads = ("logreg",)
    head_param_names = {"logreg": frozenset({"C", "Cs", "power", "cv"})}
    primary_metric = "f1_micro"
    linear_model_name = "logistic regression per tag"
    group_word = "tag"

    def __init__(self) -> None:
        self.tags: list[str] = []

    # -- targets ---------------------------------------------------------------------------------------
    def fit_encode(self, y: Any) -> np.ndarray:
        lists = as_tag_lists(y)
        self.tags = sorted({t for tags in lists for t in tags})
        if len(self.tags) < 1:
            raise DataError("no item has a tag; multi-label data needs tags (e.g. 'red;cotton')")
        Y = self._indicators(lists)
        counts = Y.sum(0)
        full = [t for t, c in zip(self.tags, counts, strict=True) if c == len(Y)]
        if full:
            raise DataError(f"tag {full[0]!r} is on every item, so there is nothing to learn about it; remove it")
        return Y

    def _indicators(self, lists: list[list[str]]) -> np.ndarray:
        index = {t: j for j, t in enumerate(self.tags)}
        Y = np.zeros((len(lists), len(self.tags)), dtype=np.float32)
        for i, tags in enumerate(lists):
            for t in tags:
                if t in index:
                    Y[i, index[t]] = 1.0
        return Y

    def encode(self, y: Any) -> np.ndarray:
        return self._indicators(as_tag_lists(y))

    @property
    def n_outputs(self) -> int:
        return len(self.tags)

    def thresholds(self, head: Any) -> np.ndarray:
        return np.asarray(head.params.get("thresholds", [0.5] * self.n_outputs), dtype=np.float64)

    def decode(self, head: Any, z: np.ndarray) -> np.ndarray:
        """A 0/1 indicator matrix ``(N, n_tags)``, columns in the order of ``tags``."""
        return (1.0 / (1.0 + np.exp(-np.asarray(z))) >= self.thresholds(head)).astype(np.int64)

    validation_measure = "micro-F1"

    def validation_score(self, head: Any, z: np.ndarray, Y: np.ndarray) -> float:
        from sklearn.metrics import f1_score

        return float(f1_score(np.asarray(Y) > 0.5, self.decode(head, z) > 0, average="micro", zero_division=0))

    def format_prediction(self, p: Any) -> str:
        return TAG_SEPARATOR.join(t for t, on in zip(self.tags, p, strict=True) if on)

    def output_names(self) -> list[str]:
        return list(self.tags)

    def make_head(self, kind: str, mean: np.ndarray, scale: np.ndarray, weights: list[np.ndarray],
                  biases: list[np.ndarray], params: dict[str, Any]) -> Any:
        from ..heads import HeadArrays

        return HeadArrays(kind, mean, scale, weights, biases, probabilistic=True, params=params, output="sigmoid")

    # -- frozen features -------------------------------------------------------------------------------
    def fit_head(self, features: np.ndarray, Y: np.ndarray, kind: str, params: dict[str, Any] | None, *,
                 random_state: int | None, n_jobs: int | None) -> tuple[Any, Any]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict
        from threadpoolctl import threadpool_limits

        from ..heads import prepare_features

        params = self.check_head(kind, params)
        Z, mean, scale, power = prepare_features(features, params.pop("power", "auto"))
        Y = np.asarray(Y) > 0.5
        W, b, Cs, thresholds = [], [], [], []
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            for j in range(Y.shape[1]):
                y = Y[:, j]
                folds = _folds(y, int(params.get("cv", 5)), random_state)
                C = float(params["C"]) if "C" in params or folds is None else self._choose_c(Z, y, params, folds,
                                                                                               random_state)
                model = LogisticRegression(C=C, max_iter=1000, random_state=random_state)
                if y.all() or not y.any():  # a tag always (never) on in training: a constant logit
                    W.append(np.zeros(Z.shape[1]))
                    b.append(10.0 if y.all() else -10.0)
                    Cs.append(C)
                    thresholds.append(0.5)
                    continue
                model.fit(Z, y)
                W.append(model.coef_[0])
                b.append(float(model.intercept_[0]))
                Cs.append(C)
                probs = (cross_val_predict(LogisticRegression(C=C, max_iter=1000, random_state=random_state), Z, y,
                                           cv=folds, method="predict_proba")[:, 1]
                         if folds is not None else model.predict_proba(Z)[:, 1])
                thresholds.append(best_threshold(y, probs))
        head = self.make_head(kind, mean, scale, [np.stack(W)], [np.asarray(b)],
                              {"C": Cs, "thresholds": thresholds, "power": power,
                               "selected_by": "per tag: C by CV on log-loss, threshold by CV on F1"})
        head.power = power
        return head, None

    @staticmethod
    def _choose_c(Z: np.ndarray, y: np.ndarray, params: dict[str, Any], folds: Any, random_state: int | None) -> float:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV

        Cs = [float(c) for c in params.get("Cs", CS)]
        search = GridSearchCV(LogisticRegression(max_iter=1000, random_state=random_state), {"C": Cs}, cv=folds,
                              scoring="neg_log_loss").fit(Z, y)
        return float(search.best_params_["C"])

    def fit_sparse(self, V: Any, Y: np.ndarray, random_state: int | None) -> tuple[Any, str]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        model = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=2000, random_state=random_state))
        return model.fit(V, np.asarray(Y) > 0.5), "C=10 per tag, threshold 0.5"

    def predict_sparse(self, model: Any, V: Any) -> np.ndarray:
        return np.asarray(model.predict(V), dtype=np.int64)

    # -- networks --------------------------------------------------------------------------------------
    def training_targets(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y, dtype=np.float32)

    def loss(self, head: Any, z: Any, targets: Any, *, label_smoothing: float = 0.0) -> tuple[Any, dict[str, float]]:
        import torch.nn.functional as F

        loss = F.binary_cross_entropy_with_logits(z, targets)
        return loss, {"loss": float(loss.detach()), "acc": float(((z > 0).float() == targets).float().mean())}

    def validation_split(self, Y: np.ndarray, fraction: float, seed: int,
                         min_per_group: int) -> tuple[np.ndarray, np.ndarray] | None:
        if fraction <= 0 or self.smallest_group(Y) < min_per_group:
            return None
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(Y))
        k = max(1, int(round(fraction * len(Y))))
        return np.sort(order[k:]), np.sort(order[:k])

    def smallest_group(self, Y: np.ndarray) -> int:
        return int(np.asarray(Y).sum(0).min())

    def can_refit(self, Y: np.ndarray) -> bool:
        return True

    # -- evaluation ------------------------------------------------------------------------------------
    def metrics(self, y_true: Any, y_pred: Any, names: list[str] | None = None) -> dict[str, Any]:
        from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

        T = self.encode(y_true) > 0.5 if not _is_indicator(y_true) else np.asarray(y_true) > 0.5
        P = np.asarray(y_pred) > 0.5
        p, r, f, s = precision_recall_fscore_support(T, P, zero_division=0)
        return {"f1_micro": float(f1_score(T, P, average="micro", zero_division=0)),
                "f1_macro": float(f1_score(T, P, average="macro", zero_division=0)),
                "subset_accuracy": float((T == P).all(1).mean()), "hamming_loss": float(hamming_loss(T, P)),
                "n": int(len(T)), "labels": list(self.tags),
                "per_label": {t: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]),
                                  "support": int(s[j])} for j, t in enumerate(self.tags)}}

    def baseline(self, modality: str, random_state: int | None) -> Any:
        from ..evaluation.scratch import ScratchBaseline

        return ScratchBaseline(modality, self, random_state)

    def _counts(self, T: np.ndarray, P: np.ndarray) -> np.ndarray:
        """Per-item (true positives, false positives, false negatives)."""
        return np.stack([(T & P).sum(1), (~T & P).sum(1), (T & ~P).sum(1)], axis=1)

    def strongest(self, y_true: Any, predictions: list[Any]) -> int:
        from sklearn.metrics import f1_score

        T = self.encode(y_true) > 0.5
        return int(np.argmax([f1_score(T, np.asarray(p) > 0.5, average="micro", zero_division=0) for p in predictions]))

    def verdict(self, y_true: Any, pred: Any, base_pred: Any, *, baseline_name: str, modality: str,
                seed: int) -> dict[str, Any]:
        from ..evaluation.verdict import NEGATIVE, POSITIVE, classify_gain, paired_bootstrap, verdict_record

        T = self.encode(y_true) > 0.5

        def micro_f1(sums: np.ndarray, n: int) -> np.ndarray:
            tp, fp, fn = sums[:, 0], sums[:, 1], sums[:, 2]
            return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 1.0)

        gain, lo, hi = paired_bootstrap(self._counts(T, np.asarray(pred) > 0.5), self._counts(T, np.asarray(base_pred) > 0.5),
                                        micro_f1, seed=seed)
        ci = f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f}"
        verdict = classify_gain(lo, hi)
        if verdict == POSITIVE:
            text = f"The pretrained model beats the {baseline_name} by {100 * gain:+.1f} points of micro-F1 ({ci}): transfer helps."
        elif verdict == NEGATIVE:
            text = (f"The pretrained model is worse than the {baseline_name} by {100 * -gain:.1f} points of micro-F1 "
                    f"({ci}): this is negative transfer.")
        else:
            text = (f"The difference in micro-F1 from the {baseline_name} ({100 * gain:+.1f} points, {ci}) is within "
                    f"what chance on {len(T)} test items allows: there is no significant gain from transfer.")
        steps = ["try another layer or backbone (`transferkit rank`)", "try fine-tuning (`--strategy fine-tune`)"]
        return verdict_record(gain, lo, hi, metric="f1_micro", n_test=len(T), text=text, steps=steps)

    def describe_targets(self, y: Any, display: Any = None) -> dict[str, Any]:
        Y = self.encode(y)
        return {"tags": list(self.tags), "tag_counts": {t: int(c) for t, c in zip(self.tags, Y.sum(0), strict=True)},
                "mean_tags_per_item": float(Y.sum(1).mean())}

    def map_labels(self, y: Any, display: Any = None) -> list[str]:
        return [";".join(tags) or "(none)" for tags in as_tag_lists(y)]

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"f1_micro": metrics["f1_micro"], "f1_macro": metrics["f1_macro"]}

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"tags": list(self.tags)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tags = [str(t) for t in state["tags"]]


def _folds(y: np.ndarray, wanted: int, random_state: int | None) -> Any:
    """Stratified folds of one tag (as many as its rarer side allows; ``None`` below two)."""
    from sklearn.model_selection import StratifiedKFold

    k = min(wanted, int(y.sum()), int((~y).sum()))
    return StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state) if k >= 2 else None


def _is_indicator(y: Any) -> bool:
    return isinstance(y, np.ndarray) and y.ndim == 2 and y.dtype.kind in "iufb"


def best_threshold(y: np.ndarray, probs: np.ndarray) -> float:
    """The probability threshold with the best F1 of one tag (ties: the one closest to 0.5)."""
    from sklearn.metrics import f1_score

    candidates = np.unique(np.concatenate([np.round(probs, 4), [0.5]]))
    candidates = candidates[(candidates > 0.01) & (candidates < 0.99)]
    if not len(candidates):
        return 0.5
    scores = np.array([f1_score(y, probs >= c, zero_division=0) for c in candidates])
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])
