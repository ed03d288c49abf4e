"""The fine-tuning strategy in the registry: its options, configuration and results."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..._validation import instance_of
from ...exceptions import ConfigError
from ..base import Advice, Context, Option, Strategy, register_strategy
from .config import EXTRA_PARAMS, FineTuneConfig, fine_tune_config, fine_tune_image_size


@register_strategy
class FineTuning(Strategy):
    name = "fine-tune"
    summary = ("train a new head on the frozen base, then unfreeze its top blocks at a 10x lower learning rate")
    modalities = ("image", "text", "audio")
    tasks = ("classification", "multilabel", "regression")
    trains_network = True
    comparisons = ("feature-extraction",)
    options = {
        "epochs": Option(None, flag="--epochs"),
        "head_epochs": Option(None, flag="--head-epochs"),
        "lr": Option(None, flag="--lr"),
        "unfreeze": Option("all", flag="--unfreeze"),
        "augment": Option("light", flag="--augment"),
        "fine_tune_params": Option(None, instance_of(dict, allow_none=True), "--fine-tune-param"),
    }
    advice_rule = ("fine-tuning when the smallest class has enough items to fine-tune without over-fitting and the "
                   "data looks far from the source task: the best layer is an intermediate one that clearly beats "
                   "the last layer of its backbone, or the best pretrained candidate does not beat its random-init "
                   "control")

    @classmethod
    def configure(cls, params: dict[str, Any], context: Context) -> FineTuneConfig:
        from ..feature_extraction import objective_of

        owner = context.owner
        objective = objective_of(context)
        if params.get("head", objective.heads[0]) != objective.heads[0] or params.get("head_params"):
            raise ConfigError(f"{owner}: strategy={cls.name!r} trains its own head; head={params.get('head')!r} "
                              "and head_params apply to feature extraction only: leave them at their defaults")
        values = super().configure(params, context)
        values = {k: v for k, v in values.items() if k in FineTuning.options}  # a subclass's own options are its own
        if context.resume and context.checkpoint_dir is None:
            raise ConfigError(f"{owner}: resume=True needs checkpoint_dir (where the interrupted run saved its state)")
        config = fine_tune_config(owner, context.config, values.pop("fine_tune_params"), **values,
                                  batch_size=context.batch_size, seed=context.seed)
        if config.contrastive and objective.name != "classification":
            raise ConfigError(f"{owner}: contrastive pre-tuning pairs items by class; it needs single-label "
                              "classification, drop contrastive")
        return config

    @classmethod
    def image_size(cls, context: Context) -> int | None:
        return fine_tune_image_size(context.config, context.image_size)

    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        self.fit_targets(X, y_index)

    def fit_targets(self, X: Any, Y: np.ndarray) -> None:
        from ..feature_extraction import objective_of
        from .train import fine_tune

        objective = objective_of(self.context)
        base = self.context.load_backbone(self.image_size(self.context))
        t0 = time.perf_counter()
        result = fine_tune(base, X, Y, objective.n_outputs, self.config, layer=self.layer,
                           checkpoint_dir=self.context.checkpoint_dir, resume=self.context.resume,
                           progress=self.context.progress, validate=False, objective=objective)
        self.info = {"timings": {"finetune_s": time.perf_counter() - t0}, "extraction": {}}
        self.network, self.head, self.history = result.backbone, result.head, result.history
        self.weights_id = base.weights_id
        self.n_features = self.context.config.layers[self.layer]
        self.engine = "torch"

    def describe(self) -> dict[str, Any]:
        assert self.head is not None
        head = "dropout + linear" if self.head.kind == "linear" else f"{self.head.kind}, refitted"
        settings = {k: v for k, v in self.config.to_dict().items()
                    if k in ("epochs", "head_epochs", "lr", "unfreeze", "augment")}
        settings["fine_tune_params"] = {k: v for k, v in self.config.to_dict().items() if k in EXTRA_PARAMS}
        return {"head": head, "fine_tune": settings}

    def results_extra(self) -> dict[str, Any]:
        return {"history": self.history}

    def report_sections(self, results: dict[str, Any]) -> list[Any]:
        from .report import training_sections

        return training_sections(results)

    def fitted_attributes(self) -> dict[str, Any]:
        return {"network_": self.network, "history_": self.history, "image_size_": self.image_size(self.context)}

    @classmethod
    def scratch_baselines(cls, modality: str) -> tuple[str, ...]:
        return ("from-scratch",) if modality == "image" else ()

    @classmethod
    def advise(cls, evidence: dict[str, Any]) -> Advice | None:
        if evidence["min_per_class"] < evidence["few_per_class"] or not evidence["signals"]:
            return None
        why = (f"{evidence['lead']}; {evidence['signals'][0]}: this data is far from the source, and with "
               f"{evidence['min_per_class']}+ items per class fine-tuning should gain more than frozen features")
        return Advice(2.0, why, next_step=f"the ranking suggests fine-tuning {evidence['backbone']} "
                                          f"(`--strategy fine-tune`): {why}")

    # -- persistence: the history travels with the model ---------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        meta, files = super().state()
        meta["history"] = self.history
        return meta, files

    @classmethod
    def from_state(cls, config: Any, context: Context, meta: dict[str, Any], files: dict[str, dict[str, Any]],
                   trunk: Any) -> Strategy:
        self = super().from_state(config, context, meta, files, trunk)
        self.history = meta.get("history")
        return self
