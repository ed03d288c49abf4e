"""The strategy interface and its registry.

A *strategy* is one way of transferring a pretrained backbone to a task: feature extraction (a head on
frozen, cached embeddings), fine-tuning (the network trains), a from-scratch network (the baseline of
fine-tuning) — and whatever a user registers. It is the one place that knows how its kind of transfer
trains, predicts, saves, exports and reports; the estimators, the CLI, the workflow, save/load, the ONNX
export, the ranking's recommendation and the report ask the registry instead of comparing names.

Register a class with :func:`register_strategy` (as timm's ``register_model``)::

    @register_strategy
    class NearestCentroid(Strategy):
        name = "nearest-centroid"
        summary = "class centroids of the frozen embeddings"

        def fit(self, X, y_index, n_classes):
            ...  # set self.head (HeadArrays) and, when the network trained, self.network

        def report_sections(self, results):  # optional: its own part of report.html
            from transferkit.evaluation.page import Section, template

            return [Section("centroids", "Centroids", template=template("<p>{{ n }} classes</p>"),
                            context={"n": len(self.head.biases[0])})]

Every fitted strategy is a *trunk* (the registry's frozen backbone, or a trained copy in ``network``) and a
*head* (:class:`~transferkit.heads.HeadArrays`: standardisation + dense layers → logits). That shared form
gives prediction, caching, saving (JSON + safetensors, never pickle) and ONNX export for free; a strategy
overrides the hooks below only where it differs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._registry import Registry
from .._validation import Rule
from ..exceptions import ConfigError

if TYPE_CHECKING:
    from ..backbones import Backbone, BackboneConfig
    from ..data.items import ItemSource
    from ..evaluation.page import Section
    from ..extraction import Extractor
    from ..heads import HeadArrays

#: what a strategy can be: ``transfer`` strategies are offered by ``fit --strategy``; ``baseline`` ones are the
#: from-scratch models the verdict compares with; ``adaptation`` ones need unlabelled target items besides the
#: labelled source (``DomainAdapter``, ``transferkit adapt``)
ROLES = ("transfer", "baseline", "adaptation")


@dataclass(frozen=True)
class Context:
    """What a strategy needs from its estimator besides its own options: the backbone to start from and
    the run's settings (all of them estimator parameters)."""

    backbone: str
    layer: str | None = "last"
    weights: str | os.PathLike[str] | None = None
    pretrained: bool = True
    image_size: int | None = None
    batch_size: int | None = None
    engine: str = "auto"
    cache: bool = True
    cache_dir: str | os.PathLike[str] | None = None
    seed: int = 0
    progress: bool = True
    tta: str = "none"
    #: ``"fp32"`` or ``"int8"`` (ONNX Runtime quantization, :mod:`transferkit.extraction.quantize`)
    precision: str = "fp32"
    #: what runs int8 image graphs: ``auto``, ``openvino`` or ``onnxruntime`` (:func:`~transferkit.extraction.quantize.resolve_int8_engine`)
    int8_engine: str = "auto"
    n_jobs: int | None = None
    checkpoint_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    owner: str = "TransferClassifier"
    #: the backbone's config when it is not (or must not be looked up) in the registry, e.g. a loaded model's
    trunk: BackboneConfig | None = None
    #: what the head predicts (:mod:`transferkit.objectives`), with the state it learnt from the targets
    objective: Any = None

    @property
    def config(self) -> BackboneConfig:
        """The backbone's config: :attr:`trunk` when given, else the registry's entry for :attr:`backbone`."""
        if self.trunk is not None:
            return self.trunk
        from ..backbones import get_config

        return get_config(self.backbone)

    def embedding_cache(self) -> Any:
        """The on-disk embedding cache to use, or ``False``."""
        if not self.cache:
            return False
        from ..data.cache import EmbeddingCache

        return EmbeddingCache(Path(self.cache_dir)) if self.cache_dir is not None else EmbeddingCache()

    def extractor(self, network: Backbone | None = None, layer: str | None = None,
                  image_size: int | None = None) -> Extractor:
        """The feature extractor of ``network`` (a trained copy) or, when it is ``None``, of the registry's
        frozen backbone; ``layer``/``image_size`` default to the context's."""
        from ..extraction import Extractor

        layer = self.layer if layer is None else layer
        if network is not None:
            return Extractor(network, layer, batch_size=self.batch_size, engine=self.engine,
                             cache=self.embedding_cache(), show_progress=self.progress, tta=self.tta,
                             precision=self.precision, int8_engine=self.int8_engine)
        return Extractor(self.config, layer, weights=self.weights, pretrained=self.pretrained,
                         image_size=image_size or self.image_size, seed=self.seed, batch_size=self.batch_size,
                         engine=self.engine, cache=self.embedding_cache(), show_progress=self.progress, tta=self.tta,
                         precision=self.precision, int8_engine=self.int8_engine)

    def load_backbone(self, image_size: int | None = None) -> Backbone:
        """The pretrained (or, with ``pretrained=False``, seeded random-init) backbone to train a copy of."""
        from ..backbones import load_backbone

        return load_backbone(self.config, weights=self.weights, pretrained=self.pretrained,
                             image_size=image_size, seed=self.seed)

    def replace(self, **changes: Any) -> Context:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Advice:
    """A strategy's answer to the ranking's evidence: how strongly it fits (higher wins), why, and the
    next step to print when a fit used another strategy."""

    strength: float
    why: str
    next_step: str | None = None


@dataclass(frozen=True)
class Option:
    """An estimator parameter a strategy reads: its default, its rule, and the CLI flag that sets it."""

    default: Any
    rule: Rule | None = None
    flag: str | None = None


class Strategy:
    """Base class of strategies (see the module docstring). Subclasses set the class attributes and
    implement :meth:`fit`; the other hooks have working defaults for the trunk + head form."""

    #: registry name, e.g. ``"feature-extraction"``
    name: ClassVar[str] = ""
    #: one line for the CLI's help, the report and the model card
    summary: ClassVar[str] = ""
    #: the task it solves (which estimator offers it), or with :attr:`tasks` several
    task: ClassVar[str] = "classification"
    #: every task it solves, when more than :attr:`task` (the objectives' names: ``classification``,
    #: ``multilabel``, ``regression``, ...)
    tasks: ClassVar[tuple[str, ...]] = ()
    #: ``transfer`` or ``baseline`` (see :data:`ROLES`)
    role: ClassVar[str] = "transfer"
    #: input modalities it accepts (empty: every modality a backbone exists for)
    modalities: ClassVar[tuple[str, ...]] = ()
    #: estimator parameters this strategy reads beyond the :class:`Context` (name → :class:`Option`);
    #: other strategies' parameters must stay at their defaults in the CLI
    options: ClassVar[dict[str, Option]] = {}
    #: strategies trained on the same split for the report's comparison table (``fit --compare``)
    comparisons: ClassVar[tuple[str, ...]] = ()
    #: whether the trunk trains (the network then travels with the saved model)
    trains_network: ClassVar[bool] = False
    #: the feature precisions it can fit with (``precision`` parameter; int8: :mod:`transferkit.extraction.quantize`)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)

    #: one line of the ranking's strategy rule: when this strategy is advised (see :meth:`advise`)
    advice_rule: ClassVar[str] = ""
    #: how results and reports name a model of this strategy (default: the backbone's name)
    display_name: ClassVar[str | None] = None

    def __init__(self, config: Any, context: Context, trunk: BackboneConfig | None = None) -> None:
        self.config = config
        self.context = context
        #: the config of the network the features come from (the context's backbone unless the strategy
        #: builds its own, as the from-scratch CNN does)
        self.trunk: BackboneConfig | None = trunk if trunk is not None else (context.config if context.backbone else None)
        self.head: HeadArrays | None = None
        self.network: Backbone | None = None
        self.layer: str | None = self.trunk.resolve_layer(context.layer) if self.trunk is not None else None
        self.weights_id: str = ""
        self.n_features: int = 0
        self.engine: str | None = None
        self.info: dict[str, Any] = {"timings": {}, "extraction": {}}

    # -- configuration ---------------------------------------------------------------------------------
    @classmethod
    def configure(cls, params: dict[str, Any], context: Context) -> Any:
        """Validate this strategy's options (``params``: the estimator's parameters) once, for the
        backbone of ``context``; return the config every later step trusts. Default: the options' values."""
        from .._validation import validate_params

        values = {k: params.get(k, opt.default) for k, opt in cls.options.items()}
        validate_params(context.owner, values, {k: o.rule for k, o in cls.options.items() if o.rule is not None})
        extra = params.get("strategy_params") or {}
        if extra:
            raise ConfigError(f"{context.owner}: strategy {cls.name!r} takes no strategy_params "
                              f"(got {', '.join(map(repr, sorted(extra)))}); drop them")
        return values

    @classmethod
    def check_precision(cls, precision: str, owner: str) -> None:
        if precision not in cls.precisions:
            able = [n for n in STRATEGIES if precision in STRATEGIES.get(n).precisions]
            raise ConfigError(f"{owner}: strategy {cls.name!r} runs in {' or '.join(cls.precisions)} only, not "
                              f"precision={precision!r}; use precision='fp32'"
                              + (f" or strategy {' or '.join(map(repr, able))}" if able else ""))

    def use_precision(self, precision: str) -> None:
        """Predict with ``precision`` instead of the fitted one (only strategies that support it)."""
        self.check_precision(precision, self.context.owner)

    @classmethod
    def check_modality(cls, modality: str, owner: str) -> None:
        if cls.modalities and modality not in cls.modalities:
            raise ConfigError(f"{owner}: strategy {cls.name!r} takes {' or '.join(cls.modalities)} data, not "
                              f"{modality}; pick another strategy (see `transferkit fit --help`)")

    @classmethod
    def image_size(cls, context: Context) -> int | None:
        """The image side this strategy trains and predicts at (default: the context's, else the backbone's)."""
        return context.image_size

    @classmethod
    def solves(cls, task: str) -> bool:
        return task in (cls.tasks or (cls.task,))

    # -- training --------------------------------------------------------------------------------------
    def fit(self, X: ItemSource, y_index: np.ndarray, n_classes: int) -> None:
        """Train on items ``X`` with integer labels ``y_index`` in ``0..n_classes-1``; set :attr:`head`
        (and :attr:`network` when the trunk trained), :attr:`weights_id`, :attr:`n_features`."""
        raise NotImplementedError

    def fit_targets(self, X: ItemSource, Y: np.ndarray) -> None:
        """Train on items ``X`` and targets ``Y`` as the context's objective encoded them. Default: a
        classification strategy's :meth:`fit`; strategies that solve other tasks override this."""
        objective = self.context.objective
        self.fit(X, Y, objective.n_outputs if objective is not None else int(np.max(Y)) + 1)

    # -- inference -------------------------------------------------------------------------------------
    def extractor(self) -> Extractor:
        """The feature extractor the head reads (the trained network, else the frozen backbone)."""
        return self.context.extractor(self.network, self.layer, image_size=self.image_size(self.context))

    def features(self, X: Any) -> np.ndarray:
        """Embeddings ``(N, D)`` of items ``X`` as the head sees them (cached where possible)."""
        extractor = self.extractor()
        out = extractor.extract(X)
        self.engine = extractor.engine_used_ or self.engine
        return out

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The head's outputs ``(N, n_outputs)``: logits, or predicted values for regression."""
        assert self.head is not None
        return self.head.logits(features)

    # -- reporting -------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What ``results.json``'s ``model`` block says about this strategy (at least ``head``)."""
        assert self.head is not None
        return {"head": self.head.kind}

    def results_extra(self) -> dict[str, Any]:
        """Top-level blocks this strategy adds to ``results.json`` (e.g. ``history``)."""
        return {}

    def report_sections(self, results: dict[str, Any]) -> list[Section]:
        """Sections this strategy contributes to ``report.html`` (:class:`transferkit.evaluation.page.Section`,
        placed after the plots); ``results`` is the fit's ``results.json`` dictionary. None by default."""
        return []

    def fitted_attributes(self) -> dict[str, Any]:
        """Extra trailing-underscore attributes the estimator exposes (e.g. ``history_``)."""
        return {}

    @classmethod
    def scratch_baselines(cls, modality: str) -> tuple[str, ...]:
        """Strategies (role ``baseline``) the verdict trains besides the modality's simple baseline."""
        return ()

    @classmethod
    def advise(cls, evidence: dict[str, Any]) -> Advice | None:
        """How well this strategy suits data with the ranking's ``evidence`` (``min_per_class``,
        ``signals``: reasons the data looks far from the source task, ``lead``: the ranking's sentence);
        ``None`` when it does not apply."""
        return None

    # -- persistence -----------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """``(meta, files)``: JSON metadata and the tensors of each file (``{"head.safetensors": {...}}``;
        numpy arrays or torch tensors) that rebuild the fitted strategy with :meth:`from_state`."""
        assert self.head is not None
        meta: dict[str, Any] = {"head": self.head.meta(), "layer": self.layer, "weights_id": self.weights_id,
                                "n_features": int(self.n_features)}
        files: dict[str, dict[str, Any]] = {"head.safetensors": self.head.to_tensors()}
        if self.network is not None:
            from .network import network_state

            net_meta, tensors = network_state(self.network)
            meta["network"] = net_meta
            files[net_meta["file"]] = tensors
        return meta, files

    @classmethod
    def from_state(cls, config: Any, context: Context, meta: dict[str, Any], files: dict[str, dict[str, Any]],
                   trunk: BackboneConfig) -> Strategy:
        """Rebuild a fitted strategy from :meth:`state`'s output and the ``trunk`` config (no training; no
        download for a trained network: its architecture comes from ``trunk``, its weights from the files)."""
        from ..exceptions import ModelFileError
        from ..heads import HeadArrays

        self = cls(config, context.replace(layer=meta["layer"], trunk=trunk), trunk)
        try:
            self.head = HeadArrays.from_tensors(meta["head"], files["head.safetensors"])
            self.weights_id = str(meta["weights_id"])
            self.n_features = int(meta["n_features"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"the model's head or metadata lacks {exc}; the model directory is corrupt") from exc
        if meta.get("network"):
            from .network import load_network

            net_meta = meta["network"]
            if net_meta.get("file") not in files:
                raise ModelFileError(f"the model folder lacks {net_meta.get('file')!r}; it is incomplete")
            self.network = load_network(trunk, files[net_meta["file"]], net_meta)
        if self.head.n_features != self.n_features:
            raise ModelFileError("the model's head does not match its feature size; the model directory's files are mixed up")
        return self

    # -- export ----------------------------------------------------------------------------------------
    def write_onnx(self, path: Path) -> None:
        """Write the trunk and head as one ONNX graph to ``path`` (inputs: the backbone's; output:
        probabilities, or class scores for a head without them)."""
        from ..extraction import export_feature_onnx

        assert self.head is not None
        extractor = self.extractor()
        export_feature_onnx(extractor.backbone, self.layer, path, head=self.head.torch_module().eval(),
                            tta=extractor.tta)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add a :class:`Strategy` subclass to the registry under its ``name``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)) or not cls.name:
        raise ConfigError(f"register_strategy takes a Strategy subclass with a name, not {cls!r}")
    if cls.role not in ROLES:
        raise ConfigError(f"strategy {cls.name!r}: role={cls.role!r} must be one of {', '.join(ROLES)}")
    STRATEGIES.register(cls.name, cls)
    return cls


def get_strategy(name: str, task: str | None = None) -> type[Strategy]:
    """The registered strategy class ``name`` (did-you-mean on unknown names); with ``task``, it must solve it."""
    cls = STRATEGIES.get(name)
    if task is not None and not cls.solves(task):
        raise ConfigError(f"strategy {name!r} solves {cls.task}, not {task}; use one of "
                          f"{', '.join(strategy_names(task))}")
    return cls


def strategy_names(task: str | None = "classification", role: str | None = "transfer") -> list[str]:
    """Registered strategy names, in registration order, for ``task`` and ``role`` (``None``: any)."""
    return [n for n in STRATEGIES if (task is None or STRATEGIES.get(n).solves(task))
            and (role is None or STRATEGIES.get(n).role == role)]


def default_strategy(task: str = "classification") -> str:
    """The first registered transfer strategy of ``task`` (feature extraction for classification)."""
    return strategy_names(task)[0]


def advice_rules(task: str = "classification") -> str:
    """The ranking's strategy rule in words: each advising strategy's rule, the default strategy's last."""
    default = default_strategy(task)
    names = [n for n in strategy_names(task) if STRATEGIES.get(n).advice_rule]
    ordered = [n for n in names if n != default] + ([default] if default in names else [])
    return "; ".join(STRATEGIES.get(n).advice_rule for n in ordered)
