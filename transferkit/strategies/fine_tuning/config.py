"""Fine-tuning's configuration: the hyper-parameters, their rules and defaults, validated once.

Nothing here imports torch, so the CLI and the strategy registry can read the options cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..._validation import Rule, float_range, instance_of, int_range, one_of, validate_params
from ...backbones.config import BackboneConfig
from ...data.augment import AUGMENT_LEVELS
from ...exceptions import ConfigError

#: largest image side used for fine-tuning when the user does not choose one (CPU budget; see
#: docs/benchmarks.md for the measurement behind it)
FINE_TUNE_IMAGE_SIZE = 112
DEFAULT_LR = {"image": 3e-3, "text": 2e-3, "audio": 2e-3}
DEFAULT_BATCH_SIZE = {"image": 32, "text": 16, "audio": 16}
#: below this many items in the smallest class no validation split is carved: all items train, for a
#: fixed number of epochs (early stopping on one or two items per class would follow noise)
MIN_PER_CLASS_FOR_VALIDATION = 10
#: step budgets behind the automatic epoch counts: stage 1 runs on cached features of the frozen base, where
#: a step costs next to nothing, so it gets room to converge (early stopping usually ends it sooner)
HEAD_STEPS, FINE_TUNE_STEPS = 300, 300
HEAD_EPOCHS_RANGE, FINE_TUNE_EPOCHS_RANGE = (3, 50), (5, 30)
#: contrastive pre-tuning (SetFit): the encoder's learning rate as a fraction of ``lr`` (6e-5 for text by
#: default) and the pairs per batch, chosen on the development pool of Rotten Tomatoes (docs/benchmarks.md)
CONTRASTIVE_LR_RATIO, CONTRASTIVE_BATCH_SIZE = 0.03, 16


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyper-parameters of two-stage fine-tuning (see the module docstring); JSON round-trips with
    :meth:`to_dict`.

    ``epochs``/``head_epochs`` of ``None`` are chosen from the data size so that each stage gets about
    300 optimiser steps (stage 1: 3–50 epochs, cheap on cached features; stage 2: 5–30 epochs); early
    stopping usually ends a stage sooner. ``lr`` of ``None`` is 3e-3 for images and 2e-3 for text (the head's rate in stage 1).
    ``unfreeze`` is ``"top-N"``, ``"all"`` or ``"none"`` (head only). ``batch_size`` of ``None`` is 32
    images or 16 texts.

    ``contrastive`` is the number of rounds of contrastive pre-tuning (SetFit, Tunstall et al. 2022; 0 =
    off) before the two stages: pairs of training items, one of the same class and one of another class per
    item and round, pull the pooled embeddings of a class together (cosine similarity regressed to 1 or 0),
    for one pass at 0.03 times ``lr``. SetFit uses 20 rounds. Off by default: on Rotten Tomatoes with 8
    snippets per class it added 2 points on the development pool and nothing on the benchmark draws, at
    twice the time (docs/benchmarks.md).

    ``refit_head``: after the two stages, refit the head as a cross-validated logistic regression on the
    fine-tuned features of every training item (see the module docstring).

    ``ema``: decay of an exponential moving average of the weights during stage 2
    (:class:`~transferkit.training.WeightAverage`; 0 = off, 0.99 ≈ the last 100 steps); validation and the
    final model use the average.
    """

    epochs: int | None = None
    head_epochs: int | None = None
    lr: float | None = None
    lr_ratio: float = 0.1
    unfreeze: str = "all"
    augment: str = "light"
    dropout: float = 0.2
    weight_decay: float = 0.01
    l2sp: float = 0.01
    label_smoothing: float = 0.1
    patience: int | None = 3
    validation_fraction: float = 0.1
    layer_decay: float = 1.0
    gradual: bool = False
    train_bn: bool = False
    warmup: float = 0.1
    batch_size: int | None = None
    contrastive: int = 0
    refit_head: bool = True
    ema: float = 0.0
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unfreeze_rule() -> Rule:
    return Rule(lambda v: isinstance(v, str) and (v in ("all", "none") or
                                                   (v.startswith("top-") and v[4:].isdigit() and int(v[4:]) >= 1)),
                "'top-N' (N >= 1), 'all' or 'none'", ("top-2", "all", "none"))


CONFIG_RULES: dict[str, Rule] = {
    "epochs": int_range(0, 1000, allow_none=True),
    "head_epochs": int_range(0, 1000, allow_none=True),
    "lr": float_range(0.0, 10.0, lo_open=True, allow_none=True),
    "lr_ratio": float_range(0.0, 1.0, lo_open=True),
    "unfreeze": _unfreeze_rule(),
    "augment": one_of(*AUGMENT_LEVELS),
    "dropout": float_range(0.0, 1.0, hi_open=True),
    "weight_decay": float_range(0.0, None),
    "l2sp": float_range(0.0, None),
    "label_smoothing": float_range(0.0, 1.0, hi_open=True),
    "patience": int_range(1, None, allow_none=True),
    "validation_fraction": float_range(0.0, 0.5),
    "layer_decay": float_range(0.0, 1.0, lo_open=True),
    "gradual": instance_of(bool),
    "train_bn": instance_of(bool),
    "warmup": float_range(0.0, 1.0, hi_open=True),
    "batch_size": int_range(1, None, allow_none=True),
    "contrastive": int_range(0, 1000),
    "refit_head": instance_of(bool),
    "ema": float_range(0.0, 1.0, hi_open=True),
    "seed": int_range(0, None),
}


def check_backbone(config: FineTuneConfig, backbone: BackboneConfig, owner: str = "fine-tuning") -> int:
    """Check that ``backbone`` can be fine-tuned as ``config`` asks; returns the number of blocks stage 2
    unfreezes. (The values themselves were validated when the config was built.)"""
    if backbone.family == "word_vectors" or not backbone.blocks:
        raise ConfigError(f"{owner}: backbone {backbone.name!r} has no trainable blocks to fine-tune; "
                          "use strategy='feature-extraction' or a network backbone (e.g. minilm-l6)")
    n = len(backbone.blocks)
    k = unfrozen_count(config.unfreeze, n)
    if k > n:
        raise ConfigError(f"{owner}: unfreeze={config.unfreeze!r} is not allowed; {backbone.name} has {n} blocks: use "
                          f"top-1 … top-{n}, all or none")
    return k


def unfrozen_count(unfreeze: str, n_blocks: int) -> int:
    """Blocks ``unfreeze`` (``top-N``, ``all``, ``none``) names out of ``n_blocks``."""
    return n_blocks if unfreeze == "all" else 0 if unfreeze == "none" else int(unfreeze[4:])


def validated_config(owner: str = "fine-tuning", **values: Any) -> FineTuneConfig:
    """A :class:`FineTuneConfig` of ``values``, each checked against :data:`CONFIG_RULES` (the one
    validation of a fine-tuning config)."""
    validate_params(owner, values, CONFIG_RULES)
    return FineTuneConfig(**values)


#: the options ``fine_tune_params`` / ``--fine-tune-param`` may set (the others have their own parameters)
EXTRA_PARAMS = ("dropout", "weight_decay", "l2sp", "label_smoothing", "patience", "validation_fraction",
                "layer_decay", "gradual", "train_bn", "lr_ratio", "warmup", "contrastive", "refit_head", "ema")


def fine_tune_config(owner: str, backbone: BackboneConfig, params: dict[str, Any] | None = None,
                     **options: Any) -> FineTuneConfig:
    """Build and validate a :class:`FineTuneConfig` from named options plus a dict of the extra ones."""
    from ..._registry import did_you_mean

    params = dict(params or {})
    for name in params:
        if name not in EXTRA_PARAMS:
            raise ConfigError(f"{owner}: fine-tuning has no parameter {name!r}{did_you_mean(str(name), list(EXTRA_PARAMS))}; "
                              f"allowed: {', '.join(EXTRA_PARAMS)}")
    config = validated_config(owner, **{**params, **options})
    check_backbone(config, backbone, owner)
    return config


def fine_tune_image_size(config: BackboneConfig, image_size: int | None) -> int | None:
    """The image side fine-tuning uses: the user's, else the backbone's own capped at 112 px."""
    if config.modality != "image":
        return None
    return int(image_size) if image_size else min(int(config.input_size or 224), FINE_TUNE_IMAGE_SIZE)
