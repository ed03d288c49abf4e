""":class:`MultiTaskClassifier`: several classification tasks on one shared pretrained trunk, and the honest
comparison with each task trained alone (:func:`single_task_comparison`)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._base import StrategyEstimator, check_fitted, store_params


class MultiTaskClassifier(StrategyEstimator, ClassifierMixin, BaseEstimator):
    """Several classification tasks at once on a shared pretrained trunk, one head per task.

    ``y`` is a table, one column per task: a pandas DataFrame, a dict ``{task: column}``, a list of rows or
    a 2-D array; a missing label (``None``, NaN, ``""``) is masked out of that task's loss and metrics.
    ``tasks`` picks and orders the task columns (default: all of them). ``predict`` returns an ``(N,
    n_tasks)`` array, one column per task; ``predict_proba`` a list of ``(N, n_classes_t)`` arrays; ``score``
    the mean over tasks of each task's accuracy on its labelled items.

    ``strategy="multi-task"`` (default) trains the heads on the frozen trunk, then the trunk's top
    ``unfreeze`` blocks (``"none"``: the trunk stays frozen; ``"top-N"``; ``"all"``) on the combined loss, as
    fine-tuning does (:class:`~transferkit.TransferClassifier`'s ``epochs``, ``lr``, ``augment``,
    ``fine_tune_params`` ... apply). ``task_weighting``: ``"fixed"`` (``task_weights``: ``{task: weight}``,
    default 1 each), ``"uncertainty"`` (learned per-task log-variances, Kendall et al. 2018) or ``"pcgrad"``
    (conflicting task gradients projected apart, Yu et al. 2020). The weights in force are logged per epoch
    (``history_``).

    Fitted attributes: ``tasks_``, ``classes_`` (one array per task), and those of
    :class:`~transferkit.TransferClassifier`.
    """

    task = "multitask"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        tasks: list[str] | None = None,
        layer: str | None = "last",
        head: str = "logreg",
        head_params: dict[str, Any] | None = None,
        *,
        strategy: str = "multi-task",
        task_weighting: str = "fixed",
        task_weights: dict[str, float] | None = None,
        image_size: int | None = None,
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        batch_size: int | None = None,
        engine: str = "auto",
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
        random_state: int | None = 0,
        progress: bool = True,
        epochs: int | None = None,
        head_epochs: int | None = None,
        lr: float | None = None,
        unfreeze: str = "all",
        augment: str = "light",
        fine_tune_params: dict[str, Any] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        tta: str = "none",
        precision: str = "fp32",
        strategy_params: dict[str, Any] | None = None,
    ) -> None:
        store_params(self, locals())

    def _validate_common(self) -> Any:
        from .._validation import instance_of, validate_params
        from ..exceptions import ConfigError

        validate_params(type(self).__name__, {"tasks": self.tasks}, {"tasks": instance_of(list, tuple, allow_none=True)})
        if self.tasks is not None and (not self.tasks or len(set(self.tasks)) != len(self.tasks)):
            raise ConfigError(f"{type(self).__name__}: tasks={self.tasks!r} must name distinct task columns, at least one")
        return super()._validate_common()

    def _make_objective(self) -> Any:
        from ..objectives import MultiTask

        return MultiTask(tasks=list(self.tasks) if self.tasks is not None else None)

    def _objective_attributes(self, objective: Any) -> dict[str, Any]:
        return {"tasks_": list(objective.tasks), "classes_": [p.classes for p in objective.parts]}

    def predict_proba(self, X: Any) -> list[np.ndarray]:
        """Per task, the class probabilities ``(N, n_classes_t)`` (columns: ``classes_[t]``)."""
        check_fitted(self, "strategy_")
        probs = self.head_.probabilities(self.strategy_.logits(self.features(X)))
        return self.objective_._split(probs)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean over tasks of the accuracy on the items labelled for each task."""
        return float(self.objective_.metrics(y, self.predict(X))["accuracy"])

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def single_task_comparison(model: MultiTaskClassifier, X: Any, y: Any, X_test: Any, y_test: Any, *,
                           seed: int = 0) -> dict[str, Any]:
    """Each task trained alone (a :class:`~transferkit.TransferClassifier` with the same backbone, strategy
    settings and budget, on the items labelled for that task) against the multi-task model on the test
    items labelled for it: per task, the two accuracies and a paired-bootstrap verdict on sharing
    (``helped``, ``hurt``: negative transfer between tasks, or ``no significant difference``)."""
    from ..evaluation.verdict import paired_bootstrap
    from ..objectives.multitask import _take
    from .classifier import TransferClassifier

    check_fitted(model, "strategy_")
    objective = model.objective_
    params = {k: v for k, v in model.get_params(deep=False).items()
              if k not in ("tasks", "task_weighting", "task_weights")}
    params["strategy"] = model.strategy_.single_task_strategy
    train_table, train_mask = objective._labelled(y)
    test_table, test_mask = objective._labelled(y_test)
    joint = np.asarray(model.predict(X_test), dtype=object)
    out: dict[str, Any] = {}
    for t, (task, _) in enumerate(objective.single_tasks()):
        tr, te = np.flatnonzero(train_mask[:, t]), np.flatnonzero(test_mask[:, t])
        alone = TransferClassifier(**{k: v for k, v in params.items() if k in TransferClassifier().get_params()})
        alone.set_params(random_state=seed, checkpoint_dir=None, resume=False)
        t0 = time.perf_counter()
        alone.fit(_take(X, tr), np.asarray([str(v).strip() for v in train_table[tr, t]]))
        fit_s = time.perf_counter() - t0
        truth = np.asarray([str(v).strip() for v in test_table[te, t]])
        single = np.asarray(alone.predict(_take(X_test, te))).astype(str)
        shared = joint[te, t].astype(str)
        gain, lo, hi = paired_bootstrap((shared == truth)[:, None], (single == truth)[:, None],
                                        lambda s, n: s[:, 0] / n, seed=seed)
        verdict = "helped" if lo > 0 else "hurt" if hi < 0 else "no significant difference"
        out[task] = {"multi_task_accuracy": float((shared == truth).mean()), "single_task_accuracy": float((single == truth).mean()),
                     "gain": gain, "ci_low": lo, "ci_high": hi, "n_test": int(len(te)), "sharing": verdict,
                     "single_task_fit_s": fit_s}
    return out
