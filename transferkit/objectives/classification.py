"""Single-label classification: one class per item, a softmax head, accuracy and the verdict on it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..heads import HEADS
from .base import Objective, register_objective


@register_objective
class Classification(Objective):
    name = "classification"
    heads = tuple(HEADS.names())
    primary_metric = "accuracy"

    def __init__(self) -> None:
        self.classes: np.ndarray | None = None

    def fit_encode(self, y: Any) -> np.ndarray:
        from ..data.datasets import check_labels

        self.classes, y_index = np.unique(check_labels(y), return_inverse=True)
        return y_index

    def encode(self, y: Any) -> np.ndarray:
        from ..exceptions import DataError

        assert self.classes is not None
        lookup = {str(c): i for i, c in enumerate(self.classes)}
        values = [str(v) for v in np.asarray(y)]
        unknown = sorted(set(values) - set(lookup))
        if unknown:
            raise DataError(f"labels {', '.join(map(repr, unknown[:5]))} are not classes of this model "
                            f"({', '.join(sorted(lookup)[:10])}); check the label column")
        return np.asarray([lookup[v] for v in values], dtype=np.int64)

    @property
    def n_outputs(self) -> int:
        assert self.classes is not None
        return len(self.classes)

    def decode(self, head: Any, z: np.ndarray) -> np.ndarray:
        assert self.classes is not None
        return self.classes[np.argmax(z, axis=1)]

    def output_names(self) -> list[str]:
        return [str(c) for c in self.classes]  # type: ignore[union-attr]

    def check_head(self, kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
        from ..heads import check_head_params

        return check_head_params(kind, params)

    def fit_head(self, features: np.ndarray, Y: np.ndarray, kind: str, params: dict[str, Any] | None, *,
                 random_state: int | None, n_jobs: int | None) -> tuple[Any, Any]:
        from ..heads import fit_head

        return fit_head(kind, features, Y, params, random_state=random_state, n_jobs=n_jobs)

    def can_refit(self, Y: np.ndarray) -> bool:
        return len(np.unique(Y)) == self.n_outputs  # every class present

    def loss(self, head: Any, z: Any, targets: Any, *, label_smoothing: float = 0.0) -> tuple[Any, dict[str, float]]:
        import torch
        import torch.nn.functional as F

        loss = F.cross_entropy(z, targets, label_smoothing=label_smoothing)
        with torch.no_grad():
            plain = loss if label_smoothing == 0 else F.cross_entropy(z, targets)
            acc = (z.argmax(1) == targets).float().mean()
        return loss, {"loss": float(plain), "acc": float(acc)}

    group_word = "class"

    def smallest_group(self, Y: np.ndarray) -> int:
        return int(np.bincount(np.asarray(Y), minlength=self.n_outputs).min())

    def validation_split(self, Y: np.ndarray, fraction: float, seed: int,
                         min_per_group: int) -> tuple[np.ndarray, np.ndarray] | None:
        from ..training import stratified_split

        counts = np.bincount(np.asarray(Y), minlength=self.n_outputs)
        if fraction <= 0 or counts.min() < min_per_group:
            return None
        return stratified_split(Y, fraction, seed)

    def metrics(self, y_true: Any, y_pred: Any, names: list[str] | None = None) -> dict[str, Any]:
        from ..evaluation.metrics import classification_metrics

        assert self.classes is not None
        as_model = self.classes[self.encode(y_true)]  # the model's own label values (str vs int in a CSV)
        return classification_metrics(as_model, y_pred, labels=self.classes, names=names)

    def baseline(self, modality: str, random_state: int | None) -> Any:
        from ..evaluation.baselines import make_baseline

        return make_baseline(modality, random_state=random_state)

    def verdict(self, y_true: Any, pred: Any, base_pred: Any, *, baseline_name: str, modality: str,
                seed: int) -> dict[str, Any]:
        from ..evaluation.verdict import transfer_verdict

        return transfer_verdict(y_true, pred, base_pred, baseline_name=baseline_name, modality=modality, seed=seed)

    def strongest(self, y_true: Any, predictions: list[Any]) -> int:
        from ..evaluation.verdict import strongest_baseline

        return strongest_baseline(y_true, predictions)

    def names(self, display: Any = None) -> list[str]:
        assert self.classes is not None
        return display(self.classes) if display is not None else [str(c) for c in self.classes]

    def describe_targets(self, y: Any, display: Any = None) -> dict[str, Any]:
        names = dict(zip(map(str, self.classes), self.names(display), strict=True))  # type: ignore[arg-type]
        values, counts = np.unique(np.asarray(y), return_counts=True)
        return {"classes": self.names(display),
                "class_counts": {names.get(str(c), str(c)): int(n) for c, n in zip(values, counts, strict=True)}}

    def map_labels(self, y: Any, display: Any = None) -> list[str]:
        names = dict(zip(map(str, self.classes), self.names(display), strict=True))  # type: ignore[arg-type]
        return [names.get(str(v), str(v)) for v in np.asarray(y)]

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy": metrics["accuracy"], "f1_macro": metrics["f1_macro"]}

    def state(self) -> dict[str, Any]:
        from ..io import classes_to_json

        assert self.classes is not None
        return {"classes": classes_to_json(self.classes)}

    def load_state(self, state: dict[str, Any]) -> None:
        from ..io import classes_from_json

        self.classes = classes_from_json(state["classes"])
