"""The ``domain-adaptation`` strategy: labelled source items, unlabelled target items, one classifier for
the target — shallow alignment on the frozen backbone's cached embeddings or deep adaptation trained
through the shared loop, the method chosen without target labels (DEV), next to a source-only baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._validation import float_range, instance_of, one_of
from ...exceptions import ConfigError, DataError
from ..base import Context, Option, Strategy, register_strategy
from .methods import DEEP, SHALLOW_METHODS

METHODS = ("auto", *SHALLOW_METHODS, *DEEP)
TRUNKS = ("backbone", "small-cnn")
OPTIMIZERS = ("adamw", "sgd")
#: deep methods' source augmentation: none, or a small random affine warp (digits, characters)
AUGMENTS = ("none", "affine")
#: ``auto``'s label-free criterion: DEV's upper bound (``selection.select``) or agreement with the target's own
#: clusters (``selection.cluster_select``); the other is always reported next to it
SELECTIONS = ("dev", "clusters")
#: the peak learning rate of each optimiser when ``lr`` is not given
DEFAULT_LR = {"adamw": 3e-3, "sgd": 1e-2}
#: what ``auto`` tries when ``candidates`` is not given
DEFAULT_CANDIDATES = (*SHALLOW_METHODS, "deep-source-only", "dann", "cdan", "deep-coral", "mmd")


def baseline_of(method: str) -> str:
    """The source-only model a method is compared with (same trunk and budget)."""
    return "deep-source-only" if method in DEEP else "source-only"


@dataclass(frozen=True)
class AdaptConfig:
    method: str = "auto"
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES
    trunk: str = "backbone"
    epochs: int = 15
    lr: float = 3e-3
    trade_off: float = 1.0
    n_components: int = 64
    validation_fraction: float = 0.2
    batch_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128)
    optimizer: str = "adamw"
    augment: str = "none"
    selection: str = "dev"
    extra: dict[str, Any] = field(default_factory=dict)


def _check_candidates(owner: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_CANDIDATES
    names = tuple(value)
    bad = [n for n in names if n not in METHODS or n == "auto"]
    if bad or not names:
        raise ConfigError(f"{owner}: candidates={list(names)!r} is not allowed; pick from "
                          f"{', '.join(m for m in METHODS if m != 'auto')}")
    return names


@register_strategy
class DomainAdaptation(Strategy):
    name = "domain-adaptation"
    role = "adaptation"
    summary = "labelled source + unlabelled target: alignment chosen without target labels (DomainAdapter, `adapt`)"
    trains_network = True
    options = {
        "method": Option("auto", one_of(*METHODS), "--method"),
        "candidates": Option(None, instance_of(list, tuple, allow_none=True), "--candidates"),
        "trunk": Option("backbone", one_of(*TRUNKS), "--trunk"),
        "epochs": Option(15, None, "--epochs"),
        "lr": Option(None, float_range(1e-6, 1.0, allow_none=True), "--lr"),
        "optimizer": Option("adamw", one_of(*OPTIMIZERS), "--optimizer"),
        "source_augment": Option("none", one_of(*AUGMENTS), "--source-augment"),
        "trade_off": Option(1.0, float_range(0.0, 100.0), "--trade-off"),
        "n_components": Option(64, None, "--n-components"),
        "selection": Option("dev", one_of(*SELECTIONS), "--selection"),
        "validation_fraction": Option(0.2, float_range(0.05, 0.5), None),
    }

    @classmethod
    def configure(cls, params: dict[str, Any], context: Context) -> AdaptConfig:
        # parameters other estimators share with this strategy (``lr``, ``epochs``) may be None there
        params = {**params, **{k: cls.options[k].default for k in ("epochs", "optimizer", "source_augment")
                               if params.get(k) is None}}
        values = super().configure(params, context)
        if values["lr"] is None:
            values["lr"] = DEFAULT_LR[values["optimizer"]]
        for key in ("epochs", "n_components"):
            if not isinstance(values[key], int) or isinstance(values[key], bool) or values[key] < 1:
                raise ConfigError(f"{context.owner}: {key}={values[key]!r} is not allowed; expected an integer >= 1")
        candidates = _check_candidates(context.owner, values["candidates"])
        if values["trunk"] == "small-cnn" and context.config.modality != "image":
            raise ConfigError(f"{context.owner}: trunk='small-cnn' takes images, but {context.backbone!r} is a "
                              f"{context.config.modality} backbone; use trunk='backbone'")
        return AdaptConfig(values["method"], candidates, values["trunk"], values["epochs"], float(values["lr"]),
                           float(values["trade_off"]), values["n_components"], float(values["validation_fraction"]),
                           context.batch_size or 64, optimizer=values["optimizer"], augment=values["source_augment"],
                           selection=values["selection"])

    # -- training --------------------------------------------------------------------------------------
    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        raise ConfigError("strategy 'domain-adaptation' needs unlabelled target items: use "
                          "DomainAdapter().fit(X, y, X_target=...) or `transferkit adapt SOURCE TARGET`")

    def methods_to_run(self) -> list[str]:
        c = self.config
        if c.method == "auto":
            names = list(c.candidates)
        else:
            names = [c.method]
        for m in list(names):
            if baseline_of(m) not in names:
                names.append(baseline_of(m))
        return names

    def fit_adapt(self, X: Any, y_index: np.ndarray, n_classes: int, X_target: Any,
                  target_labelled: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Fit every method to run (see :meth:`methods_to_run`) on the source-training split and the
        unlabelled target, score each on the source-validation split and the target without labels, keep
        the chosen one (``method``, or under ``auto`` the lowest upper bound on the DEV risk — with
        ``selection="clusters"`` the highest agreement with the target's own clusters). ``target_labelled``:
        ``(indices, class indices)`` of target items with known labels (semi-supervised), added to the training
        items."""
        from ...training import stratified_split
        from .selection import cluster_select, select, target_clusters

        c = self.config
        y_index = np.asarray(y_index)
        if np.min(np.bincount(y_index, minlength=n_classes)) < 2:
            raise DataError("every source class needs at least 2 labelled items (one is held out to choose the "
                            "method); add items to the smallest class")
        tr, va = stratified_split(y_index, c.validation_fraction, self.context.seed)
        self.split = (tr, va)
        self.n_classes = n_classes
        self.target_labelled = target_labelled
        self.candidates: dict[str, dict[str, Any]] = {}
        self.table: list[dict[str, Any]] = []
        methods = self.methods_to_run()
        shallow = [m for m in methods if m in SHALLOW_METHODS]
        deep = [m for m in methods if m in DEEP]
        self.clusters = None
        if shallow or c.method == "auto":  # the backbone's embeddings: the shallow candidates' input
            extractor = self.context.extractor(None, self.layer)
            t0 = time.perf_counter()
            F_s = extractor.extract(X) if shallow else None
            F_t = extractor.extract(X_target)
            extract_s = time.perf_counter() - t0
            if c.method == "auto":  # the target's own clusters there: the density-ratio-free criterion
                self.clusters = target_clusters(F_t, n_classes, self.context.seed)
            if shallow:
                self._fit_shallow(shallow, extractor, F_s, F_t, y_index, extract_s)
        if deep:
            from .deep_runner import fit_deep_candidates

            fit_deep_candidates(self, deep, X, y_index, X_target)
        self.dev_choice = select(self.table) if c.method == "auto" else None
        self.cluster_choice = cluster_select(self.table)
        if c.method != "auto":
            self.chosen = c.method
        else:
            self.chosen = (self.cluster_choice or self.dev_choice) if c.selection == "clusters" else self.dev_choice
        self.baseline = baseline_of(self.chosen)
        self.adopt_candidate(self.chosen)

    def _fit_shallow(self, methods: list[str], extractor: Any, F_s: np.ndarray, F_t: np.ndarray,
                     y_index: np.ndarray, extract_s: float) -> None:
        from .selection import candidate_scores, map_sample
        from .shallow import align, fit_linear, target_view

        c, seed = self.config, self.context.seed
        self.weights_id = extractor.identity()["weights"]
        self.engine = extractor.engine_used_ or "cache"
        tr, va = self.split
        for m in methods:
            t1 = time.perf_counter()
            al = align(m, F_s, F_t, n_components=c.n_components, seed=seed)
            if al.sample_weight is not None:
                al.sample_weight = al.sample_weight / al.sample_weight[tr].mean()
            sub = type(al)(al.source[tr], al.target_map, al.mean, al.scale, al.power,
                           None if al.sample_weight is None else al.sample_weight[tr])
            y_train = y_index[tr]
            if self.target_labelled is not None:  # labelled target items train in the target's view
                idx, y_lab = self.target_labelled
                sub.source, y_train = np.vstack([sub.source, target_view(al, F_t[idx])]), np.r_[y_train, y_lab]
                if sub.sample_weight is not None:
                    sub.sample_weight = np.r_[sub.sample_weight, np.ones(len(idx))]
            head, coef, bias = fit_linear(sub, y_train, self.n_classes, seed=seed, kind=m)
            seconds = time.perf_counter() - t1
            z = al.source[va] @ coef.T + bias
            probs_val = np.exp(z - z.max(1, keepdims=True))
            probs_val /= probs_val.sum(1, keepdims=True)
            probs_t = head.probabilities(head.logits(F_t))
            scores = candidate_scores(al.source[tr], al.source[va], target_view(al, F_t), probs_val, y_index[va],
                                      probs_t, seed=seed, clusters=self.clusters)
            self.candidates[m] = {"head": head, "network": None, "trunk": self.context.config, "layer": self.layer,
                                  "map": map_sample(al.source, target_view(al, F_t), seed)}
            self.table.append({"method": m, "kind": "shallow", **scores, "fit_s": round(seconds, 3),
                               "extract_s": round(extract_s, 3)})

    def adopt_candidate(self, method: str) -> None:
        cand = self.candidates[method]
        self.head, self.network, self.trunk, self.layer = cand["head"], cand["network"], cand["trunk"], cand["layer"]
        self.n_features = self.head.n_features
        if self.network is not None:
            self.weights_id, self.engine = self.network.weights_id, "torch"
        self.method = method

    # -- evaluation on labelled target items (never used for training or selection) ----------------------
    def candidate_logits(self, method: str, X: Any) -> np.ndarray:
        cand = self.candidates[method]
        extractor = self.context.extractor(cand["network"], cand["layer"])
        return cand["head"].logits(extractor.extract(X))

    # -- reporting / persistence ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        kind = "deep" if getattr(self, "method", "") in DEEP else "shallow"
        return {"head": "linear", "method": getattr(self, "method", None), "kind": kind,
                "baseline": getattr(self, "baseline", None)}

    def results_extra(self) -> dict[str, Any]:
        n_lab = 0 if getattr(self, "target_labelled", None) is None else len(self.target_labelled[0])
        return {"adaptation": {**self._record(), "target_labels_trained_on": n_lab,
                               "selected_by": self._selected_by()}}

    def _record(self) -> dict[str, Any]:
        """What the fit decided: saved with the model (:meth:`state`) and written to results.json."""
        return {"method": self.method, "baseline": self.baseline, "selection": self.table,
                "dev_choice": getattr(self, "dev_choice", None), "cluster_choice": getattr(self, "cluster_choice", None),
                "histories": getattr(self, "histories", {})}

    def _selected_by(self) -> str:
        if self.config.method != "auto":
            return "given"
        if self.config.selection == "clusters":
            return "highest agreement of its target predictions with the target's own clusters (no target labels)"
        return "lowest DEV risk + 1.645 s.e. among candidates whose weights cover the target (no target labels)"

    def report_sections(self, results: dict[str, Any]) -> list[Any]:
        """The selection table, the verdict against source-only, the discriminator's accuracy over training
        and the before/after embedding maps (the maps only right after fitting: they are not saved)."""
        from .report import adaptation_sections

        maps = {}
        cands = getattr(self, "candidates", {})
        if self.baseline in cands:
            maps[f"before: {self.baseline}"] = cands[self.baseline]["map"]
        if self.method != self.baseline and self.method in cands:
            maps[f"after: {self.method}"] = cands[self.method]["map"]
        return adaptation_sections(results, maps)

    def fitted_attributes(self) -> dict[str, Any]:
        return {"method_": self.method, "baseline_": self.baseline, "selection_": self.table,
                "dev_choice_": getattr(self, "dev_choice", None), "cluster_choice_": getattr(self, "cluster_choice", None),
                "histories_": getattr(self, "histories", {})}

    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        meta, files = super().state()
        meta["adaptation"] = self._record()
        return meta, files

    @classmethod
    def from_state(cls, config: Any, context: Context, meta: dict[str, Any], files: dict[str, dict[str, Any]],
                   trunk: Any) -> Strategy:
        self = super().from_state(config, context, meta, files, trunk)
        extra = meta.get("adaptation") or {}
        self.method, self.baseline = extra.get("method"), extra.get("baseline")
        self.table, self.histories = extra.get("selection", []), extra.get("histories", {})
        self.dev_choice, self.cluster_choice = (extra.get(k) if isinstance(extra.get(k), str) else None
                                                for k in ("dev_choice", "cluster_choice"))
        self.candidates = {}
        return self
