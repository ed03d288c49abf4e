"""Feature extraction: the frozen backbone turns each item into an embedding (cached on disk) and a light
scikit-learn head is trained on the embeddings.

Heads (:mod:`transferkit.heads`): ``logreg`` (default), ``svm`` and ``mlp`` on standardised, power-normalised
features, their regularisation chosen by internal cross-validation unless ``head_params`` gives it.
Thanks to the embedding cache a grid over heads, folds or seeds extracts each item's features once.

``precision="int8"`` runs an int8 quantization of the backbone (:mod:`transferkit.extraction.quantize`),
calibrated on up to 256 training items, behind an accuracy guard: the head is trained on a stratified
three quarters of the training items with fp32 and with int8 features and scored on the rest; int8 is kept
only when it scores at most :data:`~transferkit.extraction.quantize.INT8_TOLERANCE` (0.5 point) below fp32,
otherwise the model falls back to fp32 and says so. The calibration ranges travel with the saved model, so
another process quantizes the graph identically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import instance_of
from ..exceptions import ConfigError, ModelFileError
from .base import Advice, Option, Strategy, register_strategy

log = logging.getLogger(__name__)

#: the share of the training items the int8 guard holds out to compare fp32 and int8 features, and how many
#: random hold-outs it averages (one hold-out of 250 items measured a difference with ~1.7 points of noise)
GUARD_FRACTION = 0.25
GUARD_REPEATS = 4


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
    precisions = ("fp32", "int8")

    @classmethod
    def configure(cls, params: dict[str, Any], context: Any) -> FeatureExtractionConfig:
        values = super().configure(params, context)
        objective = objective_of(context)
        from .._validation import one_of, validate_params

        validate_params(context.owner, {"head": values["head"]}, {"head": one_of(*objective.heads)})
        return FeatureExtractionConfig(values["head"], objective.check_head(values["head"], values["head_params"]))

    def fit(self, X: Any, y_index: np.ndarray, n_classes: int) -> None:
        self.fit_targets(X, y_index)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: int8 activation ranges of an int8 image model (saved with it), else ``None``
        self.ranges: dict[str, tuple[float, float]] | None = None
        #: what the int8 accuracy guard measured (``None`` for an fp32 fit)
        self.guard: dict[str, Any] | None = None

    def extractor(self) -> Any:
        extractor = super().extractor()
        if self.ranges is not None and extractor.precision == "int8":
            extractor.use_ranges(self.ranges)
        return extractor

    def _head(self, features: np.ndarray, Y: np.ndarray) -> tuple[Any, Any]:
        return objective_of(self.context).fit_head(features, Y, self.config.head, self.config.head_params,
                                                   random_state=self.context.seed, n_jobs=self.context.n_jobs)

    def fit_targets(self, X: Any, Y: np.ndarray) -> None:
        extractor = self.extractor()
        t0 = time.perf_counter()
        if extractor.precision == "int8":
            features, extractor = self._guarded_features(X, Y, extractor)
        else:
            features = extractor.extract(X)
        t1 = time.perf_counter()
        self.head, self.estimator = self._head(features, Y)
        self.info = {"timings": {"extract_s": t1 - t0, "head_s": time.perf_counter() - t1},
                     "extraction": dict(extractor.stats_), "notes": self.info.get("notes", [])}
        self.weights_id = extractor.identity()["weights"]
        self.n_features = extractor.feature_dim
        self.engine = extractor.engine_used_ or "cache"

    def _guarded_features(self, X: Any, Y: np.ndarray, int8: Any) -> tuple[np.ndarray, Any]:
        """``(features, extractor)`` of an int8 fit: int8's when the head loses at most the tolerance on
        held-out training items against fp32 features, else fp32's (the context then says fp32)."""
        from ..extraction.quantize import INT8_TOLERANCE

        objective = objective_of(self.context)
        fp32 = self.context.replace(precision="fp32").extractor(self.network, self.layer,
                                                                image_size=self.image_size(self.context))
        split = objective.validation_split(Y, GUARD_FRACTION, self.context.seed, 2)
        if split is None:
            why = objective.too_small_for_validation(Y, GUARD_FRACTION, 2)
            self.guard = {"kept": "fp32", "reason": why}
            return self._fall_back(fp32, fp32.extract(X), f"int8 was not used: its accuracy cannot be checked "
                                                          f"because {why}; the model uses fp32 features")
        image = int8.config.modality == "image"
        if image:  # calibrate on the training items, spread over the classes
            int8.calibrate(X, Y if objective.name == "classification" else None)
        F32, F8 = fp32.extract(X), int8.extract(X)
        candidates = {int8.int8_engine: (int8, F8)}
        if image and int8.int8_engine == "openvino":  # OpenVINO is faster; ONNX Runtime was closer on some data
            ort = self.context.replace(int8_engine="onnxruntime").extractor(
                self.network, self.layer, image_size=self.image_size(self.context)).use_ranges(int8.calibration_ranges())
            candidates["onnxruntime"] = (ort, ort.extract(X))
        fixed = self._fixed_head_params(F32, Y)
        features = {"fp32": F32, **{engine: F for engine, (_, F) in candidates.items()}}
        scores = dict.fromkeys(features, 0.0)
        for k in range(GUARD_REPEATS):  # the same hold-outs for every arm: a paired comparison
            tr, va = objective.validation_split(Y, GUARD_FRACTION, self.context.seed + k, 2)
            for name, F in features.items():
                head, _ = objective.fit_head(F[tr], Y[tr], self.config.head, fixed, random_state=self.context.seed,
                                             n_jobs=self.context.n_jobs)
                scores[name] += objective.validation_score(head, head.logits(F[va]), Y[va]) / GUARD_REPEATS
        # the first engine (the faster) that loses at most the tolerance, else fp32
        passing = [e for e in candidates if scores["fp32"] - scores[e] <= INT8_TOLERANCE]
        engine = passing[0] if passing else max(candidates, key=lambda e: scores[e])
        loss = scores["fp32"] - scores[engine]
        kept = "int8" if passing else "fp32"
        measure = objective.validation_measure
        self.guard = {"kept": kept, "measure": measure, "fp32": scores["fp32"], "int8": scores[engine],
                      **({"int8_engine": engine, "int8_by_engine": {e: scores[e] for e in candidates}} if image else {}),
                      "n_validation": int(len(va)), "repeats": GUARD_REPEATS, "tolerance": INT8_TOLERANCE,
                      "head_params": fixed}
        on = f" on {engine}" if image else ""
        said = (f"mean {measure} over {GUARD_REPEATS} hold-outs of {len(va)} training items: int8{on} "
                f"{scores[engine]:.4f}, fp32 {scores['fp32']:.4f}")
        if kept == "fp32":
            return self._fall_back(fp32, F32, f"int8 fell back to fp32: it lost {100 * loss:.2f} points of {said} "
                                              f"(more than the {100 * INT8_TOLERANCE:.1f} allowed)")
        self.info["notes"] = [f"int8 kept: {said}"]
        chosen, F8 = candidates[engine]
        self.ranges = chosen.calibration_ranges()
        self.context = self.context.replace(int8_engine=engine)
        return F8, chosen

    def _fixed_head_params(self, F: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        """The head's hyper-parameters as a fit on all of ``F`` chooses them (e.g. C by cross-validation),
        fixed for the guard's many small fits; the configured ones when they cannot be fixed."""
        objective = objective_of(self.context)
        head, _ = self._head(F, Y)
        chosen = {k: v for k, v in head.params.items() if not k.endswith("selected_by")}
        try:
            return objective.check_head(self.config.head, dict(chosen))
        except ConfigError:
            return dict(self.config.head_params)

    def _fall_back(self, fp32: Any, features: np.ndarray, note: str) -> tuple[np.ndarray, Any]:
        log.warning(note)
        self.info["notes"] = [note]
        self.context = self.context.replace(precision="fp32")
        return features, fp32

    def use_precision(self, precision: str) -> None:
        """Predict with ``precision`` instead of the fitted one: ``fp32`` always; ``int8`` on an int8 model,
        or on a text model (dynamic quantization needs no calibration). An fp32 image model cannot turn int8:
        its calibration would have to come from the items being predicted."""
        if precision not in self.precisions:
            raise ConfigError(f"precision={precision!r} is not one of {', '.join(self.precisions)}")
        if precision == self.context.precision:
            return
        if precision == "int8" and self.trunk is not None and self.trunk.modality == "image":
            raise ConfigError("this image model was fitted in fp32, so it has no int8 calibration; refit it with "
                              "precision int8 (`transferkit fit --precision int8`), which also checks its accuracy")
        self.ranges = None
        self.context = self.context.replace(precision=precision)

    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        meta, files = super().state()
        meta["precision"] = self.context.precision
        if self.context.precision == "int8" and self.context.int8_engine != "auto":
            meta["int8_engine"] = self.context.int8_engine
        if self.ranges is not None:
            meta["int8_ranges"] = {k: [lo, hi] for k, (lo, hi) in self.ranges.items()}
        if self.guard is not None:
            meta["int8_guard"] = dict(self.guard)
        return meta, files

    @classmethod
    def from_state(cls, config: Any, context: Any, meta: dict[str, Any], files: dict[str, dict[str, Any]],
                   trunk: Any) -> Strategy:
        from ..extraction.quantize import check_ranges

        precision = meta.get("precision", "fp32")  # models saved before int8 models existed are fp32
        if precision not in cls.precisions:
            raise ModelFileError(f"the model's precision {precision!r} is not one of {', '.join(cls.precisions)}; "
                                 "the model directory is corrupt")
        engine = meta.get("int8_engine", "auto")
        if engine not in ("auto", "openvino", "onnxruntime"):
            raise ModelFileError(f"the model's int8 engine {str(engine)[:40]!r} is not openvino or onnxruntime; the model "
                                 "directory is corrupt")
        from ..extraction.quantize import openvino_available

        if engine == "openvino" and not openvino_available():
            log.warning("this int8 model was checked on OpenVINO, which is not installed here; running it on ONNX "
                        "Runtime's int8 kernels (`pip install openvino` for the checked ones, or predict with "
                        "--precision fp32)")
            engine = "onnxruntime"
        self = super().from_state(config, context.replace(precision=precision, int8_engine=engine), meta, files, trunk)
        assert isinstance(self, FeatureExtraction)
        if precision == "int8" and trunk.modality == "image":
            if "int8_ranges" not in meta:
                raise ModelFileError("the int8 model lacks its calibration ranges; the model directory is corrupt")
            self.ranges = check_ranges(meta["int8_ranges"])
        self.guard = meta.get("int8_guard") if isinstance(meta.get("int8_guard"), dict) else None
        return self

    def describe(self) -> dict[str, Any]:
        return {"head": self.config.head, "precision": self.context.precision,
                **({"int8_guard": dict(self.guard)} if self.guard is not None else {})}

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
