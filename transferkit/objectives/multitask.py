"""Several classification tasks on one shared trunk: one head (a run of logits) per task, missing labels
masked out of the loss, and the task losses combined by a weighting:

- ``fixed``: ``Σ w_t L_t`` (``task_weights``, default 1 each);
- ``uncertainty``: learned per-task log-variances ``s_t``, ``Σ exp(-s_t) L_t + s_t / 2`` (Kendall, Gal and
  Cipolla 2018): a task whose loss stays high (a noisier task) ends with the lower weight ``exp(-s_t)``;
- ``pcgrad``: the task gradients on the shared parameters are projected off each other where they
  conflict (negative cosine) before they are summed (Yu et al. 2020, "Gradient surgery for multi-task
  learning"); the task heads get their own gradients unchanged.

Each task is a :class:`~transferkit.objectives.Classification` of its own (classes, metrics, verdict); this
objective stitches them together. Targets are a table ``(N, n_tasks)``: a pandas DataFrame, a list of
rows, a 2-D array or a dict ``{task: column}``; ``None``, NaN and empty strings are missing labels.
Encoded targets hold class indices per task and ``-1`` where the label is missing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..exceptions import ConfigError, DataError
from .base import Objective, register_objective
from .classification import Classification

MISSING = -1
WEIGHTINGS = ("fixed", "uncertainty", "pcgrad")


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def task_table(y: Any, tasks: list[str] | None) -> tuple[list[str], np.ndarray]:
    """``(task names, (N, T) object array)`` of multi-task targets ``y`` (see the module docstring)."""
    if hasattr(y, "columns") and hasattr(y, "to_numpy"):  # a pandas DataFrame
        names = [str(c) for c in y.columns]
        table = y.to_numpy(dtype=object)
    elif isinstance(y, dict):
        names = [str(k) for k in y]
        table = np.stack([np.asarray(list(v), dtype=object) for v in y.values()], axis=1)
    else:
        table = np.asarray(y, dtype=object)
        if table.ndim != 2:
            raise DataError(f"multi-task targets must be a table (N items × tasks), got an array of shape "
                            f"{table.shape}; pass a DataFrame, a list of rows or a dict of columns")
        names = [f"task{i}" for i in range(table.shape[1])]
    if tasks is not None:
        if hasattr(y, "columns") or isinstance(y, dict):
            missing = [t for t in tasks if t not in names]
            if missing:
                from .._registry import did_you_mean

                raise DataError(f"task {missing[0]!r} is not a column of the targets{did_you_mean(missing[0], names)}; "
                                f"columns are: {', '.join(names)}")
            table = table[:, [names.index(t) for t in tasks]]
            names = list(tasks)
        elif len(tasks) != table.shape[1]:
            raise DataError(f"tasks names {len(tasks)} tasks ({', '.join(tasks)}) but the targets have "
                            f"{table.shape[1]} columns")
        else:
            names = list(tasks)
    if table.shape[1] < 1:
        raise DataError("multi-task targets have no task column")
    return names, table


@register_objective
class MultiTask(Objective):
    name = "multitask"
    heads = ("logreg",)
    head_param_names = {"logreg": frozenset({"C", "Cs", "power", "cv"})}
    primary_metric = "accuracy"
    linear_model_name = "logistic regression per task"
    group_word = "class of a task"

    def __init__(self, tasks: list[str] | None = None, weighting: str = "fixed",
                 task_weights: dict[str, float] | None = None) -> None:
        self.tasks = list(tasks) if tasks is not None else None
        self.parts: list[Classification] = []
        self.set_weighting(weighting, task_weights)

    def set_weighting(self, weighting: str, task_weights: dict[str, float] | None = None) -> None:
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"task_weighting={weighting!r} is not allowed; expected one of "
                              + ", ".join(map(repr, WEIGHTINGS)))
        if task_weights is not None and weighting != "fixed":
            raise ConfigError(f"task_weights apply to task_weighting='fixed' only (got {weighting!r}); drop them")
        for k, v in (task_weights or {}).items():
            if not isinstance(v, (int, float)) or not v >= 0:
                raise ConfigError(f"task_weights[{k!r}]={v!r} must be a number ≥ 0")
        self.weighting, self.task_weights = weighting, dict(task_weights or {})

    # -- targets ---------------------------------------------------------------------------------------
    def fit_encode(self, y: Any) -> np.ndarray:
        names, table = task_table(y, self.tasks)
        unknown = sorted(set(self.task_weights) - set(names))
        if unknown:
            raise ConfigError(f"task_weights names {unknown[0]!r}, which is not a task ({', '.join(names)})")
        self.tasks, self.parts = names, []
        Y = np.full(table.shape, MISSING, dtype=np.int64)
        for t, task in enumerate(names):
            mask = np.array([not _is_missing(v) for v in table[:, t]])
            if not mask.any():
                raise DataError(f"task {task!r} has no label in any row; drop it from the tasks")
            values = np.asarray([str(v).strip() for v in table[mask, t]])
            if len(np.unique(values)) < 2:
                raise DataError(f"task {task!r} has one value ({str(values[0])!r}) in every labelled row: there is nothing "
                                "to learn; drop it from the tasks")
            part = Classification()
            Y[mask, t] = part.fit_encode(values)
            self.parts.append(part)
        return Y

    def encode(self, y: Any) -> np.ndarray:
        _, table = task_table(y, self.tasks)
        Y = np.full(table.shape, MISSING, dtype=np.int64)
        for t, part in enumerate(self.parts):
            mask = np.array([not _is_missing(v) for v in table[:, t]])
            if mask.any():
                Y[mask, t] = part.encode(np.asarray([str(v).strip() for v in table[mask, t]]))
        return Y

    @property
    def segments(self) -> list[int]:
        return [p.n_outputs for p in self.parts]

    @property
    def n_outputs(self) -> int:
        return int(sum(self.segments))

    def _split(self, z: Any) -> list[Any]:
        bounds = np.cumsum([0, *self.segments])
        return [z[:, bounds[t]:bounds[t + 1]] for t in range(len(self.parts))]

    def decode(self, head: Any, z: np.ndarray) -> np.ndarray:
        """Predictions ``(N, n_tasks)``: one column per task, in the order of ``tasks``."""
        cols = [p.classes[np.argmax(part, axis=1)] for p, part in zip(self.parts, self._split(np.asarray(z)), strict=True)]
        return np.stack([np.asarray(c, dtype=object) for c in cols], axis=1) if cols else np.zeros((len(z), 0), object)

    def format_prediction(self, p: Any) -> str:
        return ";".join(f"{t}={v}" for t, v in zip(self.tasks or [], p, strict=True))

    def prediction_columns(self) -> list[str]:
        return list(self.tasks or [])

    def prediction_cells(self, p: Any) -> list[str]:
        return [str(v) for v in p]

    def label_columns(self, given: str) -> str | list[str]:
        return list(self.tasks or [])

    def output_names(self) -> list[str]:
        return [f"{t}={c}" for t, p in zip(self.tasks or [], self.parts, strict=True) for c in p.output_names()]

    def make_head(self, kind: str, mean: np.ndarray, scale: np.ndarray, weights: list[np.ndarray],
                  biases: list[np.ndarray], params: dict[str, Any]) -> Any:
        from ..heads import HeadArrays

        return HeadArrays(kind, mean, scale, weights, biases, probabilistic=True, params=params, output="segments",
                          segments=self.segments)

    # -- frozen features: one logistic regression per task ---------------------------------------------
    def fit_head(self, features: np.ndarray, Y: np.ndarray, kind: str, params: dict[str, Any] | None, *,
                 random_state: int | None, n_jobs: int | None) -> tuple[Any, Any]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from threadpoolctl import threadpool_limits

        from ..heads import prepare_features
        from .multilabel import CS

        params = self.check_head(kind, params)
        Z, mean, scale, power = prepare_features(features, params.pop("power", "auto"))
        W, b, Cs = [], [], []
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.simplefilter("ignore", ConvergenceWarning)
            for t, part in enumerate(self.parts):
                mask = Y[:, t] != MISSING
                Zt, yt = Z[mask], Y[mask, t]
                k = min(int(params.get("cv", 5)), int(np.bincount(yt, minlength=part.n_outputs).min()))
                C = float(params.get("C", 1.0))
                if "C" not in params and k >= 2:
                    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state)
                    search = GridSearchCV(LogisticRegression(max_iter=1000, random_state=random_state),
                                          {"C": [float(c) for c in params.get("Cs", CS)]}, cv=folds,
                                          scoring="neg_log_loss").fit(Zt, yt)
                    C = float(search.best_params_["C"])
                model = LogisticRegression(C=C, max_iter=1000, random_state=random_state).fit(Zt, yt)
                coef, icpt = model.coef_, model.intercept_
                if part.n_outputs == 2:  # one logit z for class 1: softmax([0, z]) = [1 - σ(z), σ(z)]
                    coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, float(icpt[0])])
                W.append(coef)
                b.append(icpt)
                Cs.append(C)
        head = self.make_head(kind, mean, scale, [np.vstack(W)], [np.concatenate(b)],
                              {"C": Cs, "power": power, "selected_by": "per task: C by CV on log-loss"})
        head.power = power
        return head, None

    # -- networks --------------------------------------------------------------------------------------
    def training_targets(self, Y: np.ndarray) -> np.ndarray:
        return np.asarray(Y, dtype=np.int64)

    def torch_head(self, dim: int) -> Any:
        from .multitask_torch import MultiTaskHead

        return MultiTaskHead(dim, self.segments, learn_log_vars=self.weighting == "uncertainty")

    def task_losses(self, z: Any, targets: Any) -> list[Any]:
        """The cross-entropy of each task over the items labelled for it (0 when a batch has none)."""
        from .multitask_torch import task_losses

        return task_losses(self._split(z), targets)

    def loss(self, head: Any, z: Any, targets: Any, *, label_smoothing: float = 0.0) -> tuple[Any, dict[str, float]]:
        from .multitask_torch import combined_loss

        return combined_loss(self, head, z, targets, label_smoothing)

    def step(self, net: Any, inputs: tuple, targets: Any, *, label_smoothing: float, training: bool) -> tuple[Any, dict[str, float]]:
        if self.weighting == "pcgrad" and training:
            from .multitask_torch import pcgrad_step

            return pcgrad_step(self, net, inputs, targets, label_smoothing)
        return super().step(net, inputs, targets, label_smoothing=label_smoothing, training=training)

    def weight_of(self, task: str) -> float:
        return float(self.task_weights.get(task, 1.0))

    def smallest_group(self, Y: np.ndarray) -> int:
        counts = [np.bincount(Y[Y[:, t] != MISSING, t], minlength=p.n_outputs).min() for t, p in enumerate(self.parts)]
        return int(min(counts))

    def validation_split(self, Y: np.ndarray, fraction: float, seed: int,
                         min_per_group: int) -> tuple[np.ndarray, np.ndarray] | None:
        from ..training import stratified_split

        if fraction <= 0 or self.smallest_group(Y) < min_per_group:
            return None
        return stratified_split(Y[:, 0].copy(), fraction, seed)  # stratified on the first task (missing: a group)

    def can_refit(self, Y: np.ndarray) -> bool:
        return all(len(np.unique(Y[Y[:, t] != MISSING, t])) == p.n_outputs for t, p in enumerate(self.parts))

    # -- evaluation ------------------------------------------------------------------------------------
    def _labelled(self, y_true: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(table of true labels, mask of labelled cells)``."""
        _, table = task_table(y_true, self.tasks)
        return table, np.array([[not _is_missing(v) for v in row] for row in table]).reshape(table.shape)

    def metrics(self, y_true: Any, y_pred: Any, names: list[str] | None = None) -> dict[str, Any]:
        table, mask = self._labelled(y_true)
        P = np.asarray(y_pred, dtype=object)
        per_task = {}
        for t, (task, part) in enumerate(zip(self.tasks or [], self.parts, strict=True)):
            m = mask[:, t]
            per_task[task] = part.metrics(np.asarray([str(v).strip() for v in table[m, t]]), P[m, t]) if m.any() else {}
        accs = [v["accuracy"] for v in per_task.values() if v]
        return {"accuracy": float(np.mean(accs)) if accs else float("nan"), "n": int(len(table)),
                "tasks": per_task}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        out = {"accuracy": metrics["accuracy"]}
        out.update({f"accuracy_{t}": m.get("accuracy") for t, m in metrics["tasks"].items()})
        return out

    def baseline(self, modality: str, random_state: int | None) -> Any:
        return PerTaskBaseline(self, modality, random_state)

    def _correct(self, y_true: Any, pred: Any) -> np.ndarray:
        """Per-item ``[correct_t, labelled_t]`` for every task, ``(N, 2T)``."""
        table, mask = self._labelled(y_true)
        P = np.asarray(pred, dtype=object)
        truth = np.vectorize(lambda v: str(v).strip(), otypes=[object])(table)
        ok = (truth.astype(str) == P.astype(str)) & mask
        return np.concatenate([ok, mask], axis=1).astype(np.float64)

    def _mean_accuracy(self, sums: np.ndarray, n: int) -> np.ndarray:
        T = len(self.parts)
        return np.mean(sums[:, :T] / np.maximum(sums[:, T:], 1), axis=1)

    def strongest(self, y_true: Any, predictions: list[Any]) -> int:
        return int(np.argmax([self._mean_accuracy(self._correct(y_true, p).sum(0)[None], 0)[0] for p in predictions]))

    def verdict(self, y_true: Any, pred: Any, base_pred: Any, *, baseline_name: str, modality: str,
                seed: int) -> dict[str, Any]:
        from ..evaluation.verdict import NEGATIVE, POSITIVE, classify_gain, paired_bootstrap, verdict_record

        table, mask = self._labelled(y_true)
        gain, lo, hi = paired_bootstrap(self._correct(y_true, pred), self._correct(y_true, base_pred),
                                        self._mean_accuracy, seed=seed)
        ci = f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f}"
        verdict = classify_gain(lo, hi)
        what = f"mean accuracy over the {len(self.parts)} tasks"
        if verdict == POSITIVE:
            text = f"The pretrained model beats the {baseline_name} by {100 * gain:+.1f} points of {what} ({ci}): transfer helps."
        elif verdict == NEGATIVE:
            text = (f"The pretrained model is worse than the {baseline_name} by {100 * -gain:.1f} points of {what} "
                    f"({ci}): this is negative transfer.")
        else:
            text = (f"The difference in {what} from the {baseline_name} ({100 * gain:+.1f} points, {ci}) is within "
                    f"what chance on {len(table)} test items allows: there is no significant gain from transfer.")
        record = verdict_record(gain, lo, hi, metric="accuracy", n_test=len(table), text=text,
                                steps=["try another layer or backbone (`transferkit rank`)"])
        record["tasks"] = {}
        P, B = np.asarray(pred, dtype=object), np.asarray(base_pred, dtype=object)
        for t, (task, part) in enumerate(zip(self.tasks or [], self.parts, strict=True)):
            m = mask[:, t]
            if m.sum() >= 2:
                truth = np.asarray([str(v).strip() for v in table[m, t]])
                record["tasks"][task] = part.verdict(truth, P[m, t], B[m, t], baseline_name=baseline_name,
                                                     modality=modality, seed=seed)
        return record

    def describe_targets(self, y: Any, display: Any = None) -> dict[str, Any]:
        table, mask = self._labelled(y)
        out = {}
        for t, (task, part) in enumerate(zip(self.tasks or [], self.parts, strict=True)):
            values = np.asarray([str(v).strip() for v in table[mask[:, t], t]])
            out[task] = {**part.describe_targets(values), "missing": int((~mask[:, t]).sum())}
        return {"tasks": out}

    def map_labels(self, y: Any, display: Any = None) -> list[str]:
        table, mask = self._labelled(y)
        return [str(v).strip() if m else "(missing)" for v, m in zip(table[:, 0], mask[:, 0], strict=True)]

    def single_tasks(self) -> list[tuple[str, Classification]]:
        """Each task with its own classification objective (for the single-task comparison)."""
        return list(zip(self.tasks or [], self.parts, strict=True))

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks or []), "parts": [p.state() for p in self.parts],
                "weighting": self.weighting, "task_weights": dict(self.task_weights)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.tasks = [str(t) for t in state["tasks"]]
        self.parts = []
        for s in state["parts"]:
            part = Classification()
            part.load_state(s)
            self.parts.append(part)
        self.weighting = str(state.get("weighting", "fixed"))
        self.task_weights = {str(k): float(v) for k, v in (state.get("task_weights") or {}).items()}


class PerTaskBaseline:
    """The from-scratch baseline of a multi-task fit: the modality's single-label baseline trained for each
    task on the items labelled for it."""

    def __init__(self, objective: MultiTask, modality: str, random_state: int | None) -> None:
        self.objective, self.modality, self.random_state = objective, modality, random_state
        self.name = objective.parts[0].baseline(modality, random_state).name + " per task"

    def fit(self, X: Any, y: Any) -> PerTaskBaseline:
        table, mask = self.objective._labelled(y)
        self.models_ = []
        for t, part in enumerate(self.objective.parts):
            idx = np.flatnonzero(mask[:, t])
            model = part.baseline(self.modality, self.random_state)
            model.fit(_take(X, idx), np.asarray([str(v).strip() for v in table[idx, t]]))
            self.models_.append(model)
        self.description_ = f"per task: {getattr(self.models_[0], 'description_', '')}"
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.stack([np.asarray(m.predict(X), dtype=object) for m in self.models_], axis=1)


def _take(X: Any, index: np.ndarray) -> Any:
    """Items ``index`` of ``X`` (an array of images, or a list of paths / texts / images)."""
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]
