"""What a model predicts, in one object: the *objective* of a fit.

A strategy says how the trunk is obtained (frozen, fine-tuned, ...); an objective says what the head
predicts and how that is learnt and judged: single-label classification, multi-label tagging,
regression, or several classification tasks at once. It

- encodes the user's targets for training (and learns what it needs: classes, tag names, target scale);
- fits the head on frozen features (scikit-learn, regularisation by cross-validation) and, for the
  networks strategies train, gives the output layer, the loss, the validation split and the head's
  inference form (:class:`~transferkit.heads.HeadArrays`);
- turns the head's outputs back into predictions in the user's terms;
- scores predictions, builds the from-scratch baseline of a modality, and gives the verdict against it
  with a paired-bootstrap interval.

Its learnt state is JSON (saved in ``model.json``). Nothing here imports torch at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._registry import Registry

if TYPE_CHECKING:
    from ..heads import HeadArrays


class Objective:
    """Base class of objectives (see the module docstring)."""

    #: registry name: ``classification``, ``multilabel``, ``regression``, ``multitask``
    name: ClassVar[str] = ""
    #: head kinds of feature extraction, the first one the default
    heads: ClassVar[tuple[str, ...]] = ("logreg",)
    #: what results and reports call the headline metric
    primary_metric: ClassVar[str] = "accuracy"

    # -- targets ---------------------------------------------------------------------------------------
    def fit_encode(self, y: Any) -> np.ndarray:
        """Check the training targets ``y``, learn the objective's state from them, return them encoded."""
        raise NotImplementedError

    def encode(self, y: Any) -> np.ndarray:
        """Encode evaluation targets with the state learnt in :meth:`fit_encode`."""
        raise NotImplementedError

    @property
    def n_outputs(self) -> int:
        """Outputs of the head layer."""
        raise NotImplementedError

    def decode(self, head: HeadArrays, z: np.ndarray) -> np.ndarray:
        """Predictions in the user's terms from the head's outputs ``z`` (logits, or values)."""
        raise NotImplementedError

    # -- the head on frozen features -------------------------------------------------------------------
    def fit_head(self, features: np.ndarray, Y: np.ndarray, kind: str, params: dict[str, Any] | None, *,
                 random_state: int | None, n_jobs: int | None) -> tuple[HeadArrays, Any]:
        raise NotImplementedError

    #: the parameters each head kind takes (a kind missing here: not checked by this base class)
    head_param_names: ClassVar[dict[str, frozenset[str]]] = {}

    def check_head(self, kind: str, params: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a head kind and its parameters for this objective; returns the parameters."""
        from ..exceptions import ConfigError

        if kind not in self.heads:
            raise ConfigError(f"head={kind!r} is not allowed for {self.name}; expected one of "
                              + ", ".join(map(repr, self.heads)))
        params = dict(params or {})
        allowed = self.head_param_names.get(kind)
        unknown = sorted(set(params) - allowed) if allowed is not None else []
        if unknown:
            raise ConfigError(f"head {kind!r} has no parameter {unknown[0]!r}; allowed: {', '.join(sorted(allowed or ()))}")
        return params

    # -- networks strategies train (torch, imported on use) --------------------------------------------
    def training_targets(self, Y: np.ndarray) -> np.ndarray:
        """``Y`` as the training loop's target array (its dtype becomes the tensor's)."""
        return np.asarray(Y)

    def can_refit(self, Y: np.ndarray) -> bool:
        """Whether the feature-extraction head can be refitted on these training targets."""
        return True

    def torch_head(self, dim: int) -> Any:
        """The output layer on ``dim`` pooled features."""
        from torch import nn

        return nn.Linear(dim, self.n_outputs)

    def loss(self, head: Any, z: Any, targets: Any, *, label_smoothing: float = 0.0) -> tuple[Any, dict[str, float]]:
        """``(loss to minimise, logged metrics)`` of outputs ``z`` of the output layer ``head``; the logged
        ``loss`` is the plain loss (the same quantity on training and validation batches)."""
        raise NotImplementedError

    def step(self, net: Any, inputs: tuple, targets: Any, *, label_smoothing: float, training: bool) -> tuple[Any, dict[str, float]]:
        """One batch through ``net`` (a :class:`~transferkit.strategies.fine_tuning.model.ClassifierNet` or
        its head alone): ``(loss, logged metrics)``. Objectives that need more than the outputs (e.g. per-task
        gradients) override it."""
        return self.loss(net.head, net(*inputs), targets, label_smoothing=label_smoothing)

    #: what :meth:`smallest_group` counts ("class", "label", ...)
    group_word: ClassVar[str] = "group"

    def smallest_group(self, Y: np.ndarray) -> int:
        """Items in the smallest group a validation split must keep represented."""
        return len(Y)

    def too_small_for_validation(self, Y: np.ndarray, fraction: float, min_per_group: int) -> str:
        """Why :meth:`validation_split` declined, in words."""
        return f"the smallest {self.group_word} has {self.smallest_group(Y)} items (fewer than {min_per_group})"

    def validation_split(self, Y: np.ndarray, fraction: float, seed: int,
                         min_per_group: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(train, validation)`` indices, or ``None`` when the data is too small to hold items out."""
        raise NotImplementedError

    def head_from_module(self, head: Any, mean: np.ndarray, scale: np.ndarray, params: dict[str, Any]) -> HeadArrays:
        """The inference form of a trained output layer after standardisation ``(x - mean) / scale``."""
        W = head.weight.detach().double().numpy()
        b = head.bias.detach().double().numpy()
        return self.make_head("linear", mean, scale, [W], [b], params)

    def make_head(self, kind: str, mean: np.ndarray, scale: np.ndarray, weights: list[np.ndarray],
                  biases: list[np.ndarray], params: dict[str, Any]) -> HeadArrays:
        """A :class:`HeadArrays` with this objective's output (softmax, sigmoid, values or task segments)."""
        from ..heads import HeadArrays

        return HeadArrays(kind, mean, scale, weights, biases, probabilistic=True, params=params)

    def format_prediction(self, p: Any) -> str:
        """One prediction as a CSV cell."""
        return str(p)

    def prediction_columns(self) -> list[str]:
        """The column(s) ``predict`` writes per item (one per task for multi-task)."""
        return ["prediction"]

    def prediction_cells(self, p: Any) -> list[str]:
        """One prediction as the cells of :meth:`prediction_columns`."""
        return [self.format_prediction(p)]

    def label_columns(self, given: str) -> str | list[str]:
        """The CSV column(s) ``evaluate`` reads labels from (``given``: the --label-column value)."""
        return given

    def output_names(self) -> list[str]:
        """What each output of the head stands for (the ``--proba`` columns)."""
        return [str(i) for i in range(self.n_outputs)]

    # -- evaluation ------------------------------------------------------------------------------------
    #: what :meth:`validation_score` measures, in words
    validation_measure: ClassVar[str] = "accuracy"

    def validation_score(self, head: HeadArrays, z: np.ndarray, Y: np.ndarray) -> float:
        """How well a head's outputs ``z`` match encoded targets ``Y``, higher is better, 1.0 perfect (a
        point is 0.01): accuracy, unless the objective measures otherwise (:attr:`validation_measure`)."""
        return float(np.mean(np.argmax(z, axis=1) == np.asarray(Y)))

    def metrics(self, y_true: Any, y_pred: Any) -> dict[str, Any]:
        raise NotImplementedError

    def baseline(self, modality: str, random_state: int | None) -> Any:
        """The from-scratch model of ``modality`` for this objective (``fit(X, y)``/``predict(X)``, ``name``,
        ``description_``)."""
        raise NotImplementedError

    def verdict(self, y_true: Any, pred: Any, base_pred: Any, *, baseline_name: str, modality: str,
                seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def strongest(self, y_true: Any, predictions: list[Any]) -> int:
        """Index of the best of several from-scratch models' predictions on the verdict's measure."""
        return 0

    def describe_targets(self, y: Any, display: Any = None) -> dict[str, Any]:
        """What ``results.json``'s ``dataset`` block says of the training targets ``y`` (``display``: the
        dataset's class-name mapping, when it has one)."""
        return {}

    def map_labels(self, y: Any, display: Any = None) -> list[str]:
        """One short label per item, to colour the 2-D map of the embeddings."""
        return [str(v) for v in np.asarray(y, dtype=object).reshape(len(y), -1)[:, 0]]

    def report_data(self, y_true: Any, pred: Any) -> dict[str, Any]:
        """What ``results.json`` keeps of the test predictions for the report's plots (regression: true vs
        predicted values for the residual plot); default nothing."""
        return {}

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The few metrics a comparison table shows (the headline one first)."""
        return {self.primary_metric: metrics[self.primary_metric]}

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON state (what :meth:`fit_encode` learnt)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def register_objective(cls: type[Objective]) -> type[Objective]:
    OBJECTIVES.register(cls.name, cls)
    return cls
