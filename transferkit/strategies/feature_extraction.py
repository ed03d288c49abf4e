"""Feature extraction: the frozen backbone turns each item into an embedding (cached on disk) and a light
scikit-learn head is trained on the embeddings.

Heads (:mod:`transferkit.heads`): ``logreg`` (default), ``svm`` and ``mlp`` on standardised, power-normalised
features, their regularisation chosen by internal cross-validation unless ``head_params`` gives it.
Thanks to the embedding cache a grid over heads, folds or seeds extracts each item's features once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import instance_of
from .base import Advice, Option, Strategy, register_strategy


@dataclass(frozen=True)
class FeatureExtractionConfig:
    head: str = "logreg"
    head_params: dict[str, Any] = field(default_factory=dict)


def objective_of(context: Any) -> Any:
    """The context's objective (classification when the caller gave none)."""
    if context.objective is not None:
        return context.objective
    from ..objectives import Classification

    return Classification()


@register_strategy
class FeatureExtraction(Strategy):
    name = "feature-extraction"
    summary = "a head on frozen features"
    modalities = ()  # every modality a backbone exists for
    tasks = ("classification", "multilabel", "regression")
    options = {
        "head": Option("logreg", None, "--head"),  # the objective knows its heads (logreg, svm, mlp; ridge ...)
        "head_params": Option(None, instance_of(dict, allow_none=True), "--head-param"),
    }
    advice_rule = "otherwise feature extraction (frozen features already suit the data, at a fraction of the cost)"

    @classmethod
    def configure(cls, params: dict[str, Any], context: Any) -> FeatureExtractionConfig:
        values = super().configure(params, context)
        objective = objective_of(context)
        from .._validation import one_of, validate_params

        validate_params(context.owner, {"head": values["head"]}, {"head": one_of(*objective.heads)})
        return FeatureExtractionConfig(values["head"], objective.check_head(values["head"], values["head_params"]))

    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        self.fit_targets(X, y_index)

    def fit_targets(self, X: Any, Y: np.ndarray) -> None:
        extractor = self.extractor()
        t0 = time.perf_counter()
        features = extractor.extract(X)
        t1 = time.perf_counter()
        self.head, self.estimator = objective_of(self.context).fit_head(
            features, Y, self.config.head, self.config.head_params, random_state=self.context.seed,
            n_jobs=self.context.n_jobs)
        self.info = {"timings": {"extract_s": t1 - t0, "head_s": time.perf_counter() - t1},
                     "extraction": dict(extractor.stats_)}
        self.weights_id = extractor.identity()["weights"]
        self.n_features = extractor.feature_dim
        self.engine = extractor.engine_used_ or "cache"

    def describe(self) -> dict[str, Any]:
        return {"head": self.config.head}

    def fitted_attributes(self) -> dict[str, Any]:
        return {"head_estimator_": getattr(self, "estimator", None)}

    @classmethod
    def advise(cls, evidence: dict[str, Any]) -> Advice:
        lead, n_min, signals = evidence["lead"], evidence["min_per_class"], evidence["signals"]
        if n_min < evidence["few_per_class"]:
            return Advice(1.0, f"{lead}; with {n_min} items in the smallest class, fine-tuning would over-fit, so "
                               "train a head on its frozen features" + (f" ({signals[0]})" if signals else ""))
        last = "last-layer " if evidence["layer_is_last"] else ""
        return Advice(1.0, f"{lead}; frozen {last}features already suit this data, so a head on them is the "
                           "cheap, strong choice")
