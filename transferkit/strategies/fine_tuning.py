"""Fine-tuning: a new head on the frozen base, then the top blocks unfrozen at a lower learning rate.

Stage 1 (``head``) trains dropout + a linear layer on the pooled features of the frozen pretrained base
until the validation loss stops improving. Stage 2 (``fine-tune``) unfreezes the top ``unfreeze`` blocks of
the base (the backbone config's ``blocks``, input → output) and trains them with the head at ``lr_ratio``
times the learning rate (10× lower by default), with a short warm-up. Throughout, the BatchNorm layers of
the base stay in inference mode — their running statistics never move — unless ``train_bn`` is set.

Options: discriminative learning rates (``layer_decay``: block ``d`` below the top trains at
``layer_decay ** d`` times the rate), gradual unfreezing (``gradual``: one more block per epoch, ULMFiT),
and regularisation: dropout before the head, AdamW weight decay on the head, L2-SP (a penalty
``l2sp / 2 · ‖w − w_pretrained‖²`` on the unfrozen pretrained weights: it pulls them toward where they
started, not toward zero), label smoothing, early stopping on a stratified validation split carved from
the training data (the best epoch's weights are kept), and on-the-fly augmentation of training images
(:mod:`transferkit.data.augment`).

After stage 2, ``refit_head`` (on by default) replaces the trained linear layer with the library's
feature-extraction head (:func:`~transferkit.heads.fit_head`: logistic regression, ``C`` by cross-validation,
power normalisation) fitted on the fine-tuned network's features of every training item, unaugmented and
including the validation items: a clean linear probe on the adapted features. On a Fashion-MNIST
development split it added 0.4–4 points, on the benchmarks 0–2 (docs/benchmarks.md).

Everything runs through the one training loop (:mod:`transferkit.training`). The result is a copy of the
backbone with fine-tuned weights plus the head as :class:`~transferkit.heads.HeadArrays`, so prediction,
caching, saving and ONNX export reuse the feature-extraction machinery unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import Rule, float_range, instance_of, int_range, one_of, validate_params
from ..backbones import Backbone, BackboneConfig
from ..backbones.base import ImageBackbone
from ..backbones.text import TextEncoderBackbone
from ..data.augment import AUGMENT_LEVELS, make_augment
from ..data.items import as_items
from ..exceptions import ConfigError, ModelFileError
from ..heads import HeadArrays
from ..training import (
    Checkpoint,
    EarlyStopping,
    EpochLogger,
    FreezeUnfreeze,
    ItemBatches,
    LRFinderResult,
    ProgressBar,
    Stage,
    StepOutput,
    Trainer,
    WeightAverage,
    block_param_groups,
    lr_range_test,
    stratified_split,
)

log = logging.getLogger(__name__)

#: largest image side used for fine-tuning when the user does not choose one (CPU budget; see
#: docs/benchmarks.md for the measurement behind it)
FINE_TUNE_IMAGE_SIZE = 112
DEFAULT_LR = {"image": 3e-3, "text": 2e-3}
DEFAULT_BATCH_SIZE = {"image": 32, "text": 16}
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


def check_config(config: FineTuneConfig, backbone: BackboneConfig, owner: str = "fine-tuning") -> int:
    """Validate ``config`` for ``backbone``; returns the number of blocks stage 2 unfreezes."""
    validate_params(owner, config.to_dict(), CONFIG_RULES)
    if backbone.family == "word_vectors" or not backbone.blocks:
        raise ConfigError(f"{owner}: backbone {backbone.name!r} has no trainable blocks to fine-tune; "
                          "use strategy='feature-extraction' or a network backbone (e.g. minilm-l6)")
    n = len(backbone.blocks)
    spec = config.unfreeze
    k = n if spec == "all" else 0 if spec == "none" else int(spec[4:])
    if k > n:
        raise ConfigError(f"{owner}: unfreeze={spec!r} is not allowed; {backbone.name} has {n} blocks: use "
                          f"top-1 … top-{n}, all or none")
    return k


#: the options ``fine_tune_params`` / ``--fine-tune-param`` may set (the others have their own parameters)
EXTRA_PARAMS = ("dropout", "weight_decay", "l2sp", "label_smoothing", "patience", "validation_fraction",
                "layer_decay", "gradual", "train_bn", "lr_ratio", "warmup", "contrastive", "refit_head", "ema")


def fine_tune_config(owner: str, backbone: BackboneConfig, params: dict[str, Any] | None = None,
                     **options: Any) -> FineTuneConfig:
    """Build and validate a :class:`FineTuneConfig` from named options plus a dict of the extra ones."""
    from .._registry import did_you_mean

    params = dict(params or {})
    for name in params:
        if name not in EXTRA_PARAMS:
            raise ConfigError(f"{owner}: fine-tuning has no parameter {name!r}{did_you_mean(str(name), list(EXTRA_PARAMS))}; "
                              f"allowed: {', '.join(EXTRA_PARAMS)}")
    values = {**params, **options}
    validate_params(owner, values, CONFIG_RULES)
    config = FineTuneConfig(**values)
    check_config(config, backbone, owner)
    return config


def fine_tune_image_size(config: BackboneConfig, image_size: int | None) -> int | None:
    """The image side fine-tuning uses: the user's, else the backbone's own capped at 112 px."""
    if config.modality != "image":
        return None
    return int(image_size) if image_size else min(int(config.input_size or 224), FINE_TUNE_IMAGE_SIZE)


# -- the network -----------------------------------------------------------------------------------------


class Standardize(nn.Module):
    """``(x - mean) / scale`` with fixed buffers: the training features' statistics under the frozen base,
    so one learning rate suits every backbone whatever the scale of its features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class ClassifierNet(nn.Module):
    """``features`` (the pretrained base, pooled to ``(N, dim)``) → standardise → dropout → linear → logits."""

    def __init__(self, features: nn.Module, dim: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.features = features
        self.standardize = Standardize(dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.standardize(self.features(*inputs))))


class HeadNet(nn.Module):
    """The head of a :class:`ClassifierNet` on its own (same modules, same parameter names), for stage 1
    on cached features of the frozen base."""

    def __init__(self, net: ClassifierNet) -> None:
        super().__init__()
        self.standardize, self.dropout, self.head = net.standardize, net.dropout, net.head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.standardize(features)))


@torch.no_grad()
def frozen_features(module: nn.Module, batches: ItemBatches) -> torch.Tensor:
    """Features ``(N, D)`` of every item of ``batches`` (in order) under ``module`` in inference mode."""
    module.eval()
    parts = [module(*inputs) for inputs, _ in batches.epoch(0)]
    return torch.cat(parts) if parts else torch.zeros((0, 0))


class ClassificationTask:
    """Cross-entropy (with label smoothing) + L2-SP on a :class:`ClassifierNet` (or a :class:`HeadNet`);
    logs loss and accuracy.

    The logged training ``loss`` is the plain cross-entropy (no smoothing, no penalty), the same quantity
    as the validation loss, so the learning curves compare like with like.
    """

    def __init__(self, net: nn.Module, blocks: Sequence[tuple[str, nn.Module]], *, label_smoothing: float = 0.0,
                 l2sp: float = 0.0, layer_decay: float = 1.0, weight_decay: float = 0.01,
                 base_weight_decay: float = 0.0) -> None:
        self.model = net
        self.blocks = list(blocks)
        self.label_smoothing, self.l2sp, self.layer_decay = label_smoothing, l2sp, layer_decay
        self.weight_decay, self.base_weight_decay = weight_decay, base_weight_decay
        self.reference = ({n: p.detach().clone() for n, p in net.features.named_parameters()}
                          if l2sp > 0 and hasattr(net, "features") else {})

    def l2sp_penalty(self) -> torch.Tensor:
        """``l2sp / 2 · Σ ‖w − w₀‖²`` over the trainable pretrained weights (zero while they are unchanged)."""
        terms = [(p - self.reference[n]).pow(2).sum() for n, p in self.model.features.named_parameters()
                 if p.requires_grad and n in self.reference]
        if not terms:
            return torch.zeros(())
        return 0.5 * self.l2sp * torch.stack(terms).sum()

    def training_step(self, batch: Any) -> StepOutput:
        inputs, y = batch
        logits = self.model(*inputs)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.l2sp > 0:
            loss = loss + self.l2sp_penalty()
        with torch.no_grad():
            ce = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
        return StepOutput(loss, {"loss": float(ce), "acc": float(acc)}, len(y))

    def validation_step(self, batch: Any) -> StepOutput:
        inputs, y = batch
        logits = self.model(*inputs)
        return StepOutput(F.cross_entropy(logits, y),
                          {"loss": float(F.cross_entropy(logits, y)), "acc": float((logits.argmax(1) == y).float().mean())},
                          len(y))

    def param_groups(self) -> list[dict[str, Any]]:
        return block_param_groups(self.model, self.model.head, self.blocks, layer_decay=self.layer_decay,
                                  head_weight_decay=self.weight_decay, base_weight_decay=self.base_weight_decay)


# -- backbones: copy, blocks, identity -------------------------------------------------------------------


def copy_backbone(backbone: Backbone) -> Backbone:
    """A trainable deep copy of a loaded backbone (loaded backbones are shared through an in-process cache)."""
    if isinstance(backbone, ImageBackbone):
        model, stages = copy.deepcopy((backbone.model, backbone.stages))
        return ImageBackbone(backbone.config, stages, model, backbone.weights_id, backbone.image_size)
    if isinstance(backbone, TextEncoderBackbone):
        out = TextEncoderBackbone(backbone.config, copy.deepcopy(backbone.model), backbone.tokenizer,
                                  backbone.weights_id)
        out.max_length = backbone.max_length
        return out
    raise ConfigError(f"backbone {backbone.name!r} ({backbone.config.family}) cannot be fine-tuned; "
                      "use strategy='feature-extraction'")


def block_modules(backbone: Backbone, layer: str | None) -> list[tuple[str, nn.Module]]:
    """The config's ``blocks`` that feed ``layer``, as ``(name, module)`` from input to output."""
    config = backbone.config
    layer = config.resolve_layer(layer)
    order = list(config.layers)
    stages = dict(getattr(backbone, "stages", []))
    out = []
    for name in config.blocks:
        if name in config.layers and order.index(name) > order.index(layer):
            continue
        module = stages[name] if name in stages else backbone.model.get_submodule(name)
        out.append((name, module))
    return out


def state_sha256(module: nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes and bytes, in name order)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# -- data ------------------------------------------------------------------------------------------------


def stack_batch(batch: list[torch.Tensor]) -> tuple[torch.Tensor]:
    """Collate equally shaped tensors (images, cached features) into one batch tensor."""
    return (torch.stack(batch),)


def prepare_inputs(backbone: Backbone, X: Any) -> tuple[Any, Callable[[list[Any]], tuple]]:
    """Load every item once for training: ``(inputs, collate)``.

    Images become a uint8 tensor ``(N, S, S, 3)`` resized as the backbone's preprocessing does; texts
    become token-id tensors, padded per batch by ``collate``.
    """
    items = as_items(X, backbone.modality)
    if isinstance(backbone, ImageBackbone):
        with ThreadPoolExecutor(max_workers=2) as pool:
            size = backbone.image_size
            arrays = list(pool.map(lambda i: backbone.prepare_item(items.load_sized(i, size)), range(len(items))))
        pixels = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros((0, 1, 1, 3), dtype=torch.uint8)
        return pixels, stack_batch
    assert isinstance(backbone, TextEncoderBackbone)
    texts = [items.load(i) for i in range(len(items))]
    ids = backbone.tokenizer(texts, truncation=True, max_length=backbone.max_length)["input_ids"]
    pad = int(backbone.tokenizer.pad_token_id or 0)

    def collate_texts(batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(t) for t in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, t in enumerate(batch):
            input_ids[i, : len(t)] = t
            mask[i, : len(t)] = 1
        return input_ids, mask

    return [torch.tensor(t, dtype=torch.long) for t in ids], collate_texts


def _subset(inputs: Any, index: np.ndarray) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs[torch.as_tensor(index, dtype=torch.long)]
    return [inputs[i] for i in index]


def auto_epochs(config: FineTuneConfig, n_train: int, batch_size: int) -> tuple[int, int]:
    """``(head_epochs, epochs)``: the given ones, or enough epochs for the stages' step budgets."""
    per_epoch = max(1, math.ceil(n_train / batch_size))
    head = (config.head_epochs if config.head_epochs is not None
            else int(np.clip(math.ceil(HEAD_STEPS / per_epoch), *HEAD_EPOCHS_RANGE)))
    full = (config.epochs if config.epochs is not None
            else int(np.clip(math.ceil(FINE_TUNE_STEPS / per_epoch), *FINE_TUNE_EPOCHS_RANGE)))
    return head, full


# -- contrastive pre-tuning (SetFit) -------------------------------------------------------------------


class PairTask:
    """SetFit's contrastive step on a feature module: the cosine similarity of the pooled embeddings of the
    two items of a pair is regressed (mean squared error) to 1 for a pair of the same class, 0 otherwise.

    Batches are ``(inputs of the first items..., inputs of the second items...), same`` (see
    :func:`pair_batches`)."""

    def __init__(self, encoder: nn.Module, blocks: Sequence[tuple[str, nn.Module]]) -> None:
        self.model = encoder
        self.blocks = list(blocks)

    def training_step(self, batch: Any) -> StepOutput:
        inputs, same = batch
        half = len(inputs) // 2
        cos = F.cosine_similarity(self.model(*inputs[:half]), self.model(*inputs[half:]))
        loss = F.mse_loss(cos, same.to(cos.dtype))
        return StepOutput(loss, {"loss": float(loss.detach())}, len(same))

    def validation_step(self, batch: Any) -> StepOutput:  # pragma: no cover - the stage has no validation
        return self.training_step(batch)

    def param_groups(self) -> list[dict[str, Any]]:
        return block_param_groups(self.model, nn.Module(), self.blocks)


def contrastive_pairs(y_index: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    """``(P, 3)`` rows ``(i, j, same)``: each round pairs every item ``i`` once with another item of its
    class (``same`` = 1; itself when it is alone in its class) and once with an item of another class (0)."""
    y_index = np.asarray(y_index)
    rng = np.random.default_rng(seed)
    members = {c: np.flatnonzero(y_index == c) for c in np.unique(y_index)}
    others = {c: np.flatnonzero(y_index != c) for c in members}
    rows = []
    for _ in range(rounds):
        for i, c in enumerate(y_index):
            mates = members[c][members[c] != i]
            rows.append((i, int(rng.choice(mates)) if len(mates) else i, 1))
            rows.append((i, int(rng.choice(others[c])), 0))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def pair_batches(inputs: Any, collate: Callable[[list[Any]], tuple], pairs: np.ndarray, *, batch_size: int,
                 seed: int) -> ItemBatches:
    """Shuffled batches of ``pairs`` of ``inputs``: the collated first items, then the second ones."""

    def collate_pairs(batch: list[tuple[Any, Any]]) -> tuple:
        return (*collate([a for a, _ in batch]), *collate([b for _, b in batch]))

    items = [(inputs[int(i)], inputs[int(j)]) for i, j, _ in pairs]
    return ItemBatches(items, pairs[:, 2], collate_pairs, batch_size=batch_size, shuffle=True, seed=seed)


def contrastive_tune(backbone: Backbone, X: Any, y_index: np.ndarray, config: FineTuneConfig, rounds: int, *,
                     layer: str | None, progress: bool = True) -> tuple[Backbone, dict[str, Any]]:
    """A copy of ``backbone`` whose unfrozen blocks (``config.unfreeze``, all of them when it is
    ``"none"``) were tuned contrastively for one pass over ``rounds`` rounds of pairs at
    ``CONTRASTIVE_LR_RATIO`` times the learning rate; returns it with a summary for the history.
    Deterministic for a seed (a resumed fit repeats it exactly)."""
    lr = (config.lr or DEFAULT_LR[backbone.modality]) * CONTRASTIVE_LR_RATIO
    n_unfreeze = check_config(config, backbone.config) or len(backbone.config.blocks)
    tuned = copy_backbone(backbone)
    encoder = tuned.feature_module(layer)
    blocks = block_modules(tuned, layer)
    inputs, collate = prepare_inputs(tuned, X)
    pairs = contrastive_pairs(y_index, rounds, config.seed)
    batches = pair_batches(inputs, collate, pairs, batch_size=CONTRASTIVE_BATCH_SIZE, seed=config.seed)
    freeze = FreezeUnfreeze(encoder, blocks, [min(n_unfreeze, len(blocks))], train_bn=config.train_bn)
    cbs: list[Any] = [freeze, ProgressBar(progress)]
    if _lines_enabled(progress):
        cbs.append(EpochLogger(_stderr_line))
    logs = Trainer(cbs, seed=config.seed).fit(PairTask(encoder, blocks), batches, None,
                                               [Stage("contrastive", 1, lr, warmup=0.1, end_factor=0.0)])
    tuned.model.eval()
    tuned.weights_id = f"contrastive:{state_sha256(tuned.model)}"
    return tuned, {"rounds": rounds, "pairs": len(pairs), "lr": lr,
                   "loss": logs[-1].get("train_loss") if logs else None,
                   "time_s": logs[-1].get("time_s") if logs else None}


# -- the strategy ----------------------------------------------------------------------------------------


@dataclass
class FineTuneResult:
    """What :func:`fine_tune` returns: the fine-tuned backbone copy, its head, and the training history."""

    backbone: Backbone
    head: HeadArrays
    history: dict[str, Any]
    n_train: int
    n_val: int
    resumed_epoch: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _lines_enabled(progress: bool) -> bool:
    return progress and os.environ.get("TRANSFERKIT_PROGRESS") != "0"


def build_setup(backbone: Backbone, X: Any, y_index: np.ndarray, n_classes: int, config: FineTuneConfig, *,
                layer: str | None, validation: bool = True) -> dict[str, Any]:
    """Everything :func:`fine_tune` and :func:`lr_find` share: network, task, batches, blocks."""
    n_unfreeze = check_config(config, backbone.config)
    y_index = np.asarray(y_index, dtype=np.int64)
    trainable = copy_backbone(backbone)
    layer = backbone.config.resolve_layer(layer)
    features = trainable.feature_module(layer)
    dim = backbone.config.layers[layer]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = ClassifierNet(features, dim, n_classes, config.dropout)
    blocks = block_modules(trainable, layer)
    n_unfreeze = min(n_unfreeze, len(blocks))
    inputs, collate = prepare_inputs(trainable, X)
    counts = np.bincount(y_index, minlength=n_classes)
    use_val = (validation and config.validation_fraction > 0 and counts.min() >= MIN_PER_CLASS_FOR_VALIDATION)
    if validation and config.validation_fraction > 0 and not use_val:
        log.warning("fine-tuning: the smallest class has %d items (fewer than %d), so no validation split is "
                    "carved and both stages run their full length without early stopping; with this few labels "
                    "feature extraction is often as good (compare the strategies in the report)",
                    int(counts.min()), MIN_PER_CLASS_FOR_VALIDATION)
    if use_val:
        tr, va = stratified_split(y_index, config.validation_fraction, config.seed)
    else:
        tr, va = np.arange(len(y_index)), np.zeros(0, dtype=np.int64)
    batch_size = config.batch_size or DEFAULT_BATCH_SIZE[backbone.modality]
    size = getattr(trainable, "image_size", None)
    augment = make_augment(config.augment, size) if isinstance(trainable, ImageBackbone) else None
    train = ItemBatches(_subset(inputs, tr), y_index[tr], collate, batch_size=batch_size, shuffle=True,
                        seed=config.seed, transform=augment)
    val = (ItemBatches(_subset(inputs, va), y_index[va], collate, batch_size=max(batch_size, 64), shuffle=False)
           if len(va) else None)
    task = ClassificationTask(net, blocks, label_smoothing=config.label_smoothing, l2sp=config.l2sp,
                              layer_decay=config.layer_decay, weight_decay=config.weight_decay)
    # one pass of the frozen base over the (unaugmented) items: the head's standardisation, and stage 1's
    # inputs unless BatchNorm trains (then the base is not frozen in stage 1 and trains on the fly)
    plain = ItemBatches(_subset(inputs, tr), y_index[tr], collate, batch_size=64, shuffle=False)
    f_train = frozen_features(net.features, plain)
    f_val = frozen_features(net.features, val) if val is not None else None
    scale = f_train.std(0) if len(f_train) > 1 else torch.ones(dim)
    net.standardize.mean.copy_(f_train.mean(0))
    net.standardize.scale.copy_(torch.where(torch.isfinite(scale) & (scale > 1e-6), scale, torch.ones_like(scale)))
    head_stage = None
    if not config.train_bn:
        head_stage = {
            "task": ClassificationTask(HeadNet(net), [], label_smoothing=config.label_smoothing,
                                       weight_decay=config.weight_decay),
            "train": ItemBatches(f_train, y_index[tr], stack_batch, batch_size=batch_size, shuffle=True, seed=config.seed),
            "val": (ItemBatches(f_val, y_index[va], stack_batch, batch_size=max(batch_size, 64), shuffle=False)
                    if f_val is not None else None),
        }
    every = ItemBatches(inputs, y_index, collate, batch_size=64, shuffle=False)
    return {"backbone": trainable, "net": net, "task": task, "blocks": blocks, "n_unfreeze": n_unfreeze,
            "train": train, "val": val, "every": every, "n_train": len(tr), "n_val": len(va), "batch_size": batch_size,
            "layer": layer, "dim": dim, "head_stage": head_stage}


def fine_tune(
    backbone: Backbone,
    X: Any,
    y_index: np.ndarray,
    n_classes: int,
    config: FineTuneConfig | None = None,
    *,
    layer: str | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> FineTuneResult:
    """Two-stage fine-tuning of ``backbone`` (not modified: a copy is trained) on items ``X`` with integer
    labels ``y_index`` in ``0..n_classes-1``.

    Args:
        checkpoint_dir: save the training state there after every epoch (deleted after success).
        resume: continue from the checkpoint in ``checkpoint_dir`` (same data and options required).
        callbacks: extra training-loop callbacks.
    """
    config = config or FineTuneConfig()
    check_config(config, backbone.config)
    contrastive = None
    source = backbone
    if config.contrastive > 0:
        backbone, contrastive = contrastive_tune(backbone, X, y_index, config, config.contrastive, layer=layer,
                                                 progress=progress)
    s = build_setup(backbone, X, y_index, n_classes, config, layer=layer)
    head_epochs, epochs = auto_epochs(config, s["n_train"], s["batch_size"])
    lr = config.lr or DEFAULT_LR[backbone.modality]
    stages = [Stage("head", head_epochs, lr, schedule="cosine", end_factor=0.1, **(s["head_stage"] or {}))]
    if s["n_unfreeze"] > 0 and epochs > 0:
        stages.append(Stage("fine-tune", epochs, lr * config.lr_ratio, warmup=config.warmup, end_factor=0.01))
    freeze = FreezeUnfreeze(s["net"].features, s["blocks"], [0, s["n_unfreeze"]], gradual=config.gradual,
                            train_bn=config.train_bn)
    fingerprint = {"backbone": backbone.config.name, "weights": source.weights_id, "layer": s["layer"],
                   "image_size": getattr(backbone, "image_size", None)}
    averaging = [WeightAverage(config.ema, stages=("fine-tune",))] if config.ema > 0 else []
    result = train_network(s, stages, config, n_classes, [freeze, *averaging, *callbacks], fingerprint=fingerprint,
                           checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
    result.history["contrastive"] = contrastive
    if config.refit_head and len(np.unique(y_index)) == n_classes:
        result.head = refit_head(s["net"], s["every"], y_index, config.seed)
    return result


def refit_head(net: ClassifierNet, every: ItemBatches, y_index: np.ndarray, seed: int) -> HeadArrays:
    """The feature-extraction head (:func:`~transferkit.heads.fit_head`, logistic regression) fitted on the
    fine-tuned network's features of every training item, unaugmented (every class must be present)."""
    from ..heads import fit_head

    features = frozen_features(net.features, every).double().numpy()
    head, _ = fit_head("logreg", features, np.asarray(y_index, dtype=np.int64), random_state=seed)
    head.params["trained_by"] = "logistic regression refitted on the fine-tuned features"
    return head


def train_network(s: dict[str, Any], stages: Sequence[Stage], config: FineTuneConfig, n_classes: int,
                  callbacks: Sequence[Any], *, fingerprint: dict[str, Any], checkpoint_dir: Any = None,
                  resume: bool = False, progress: bool = True) -> FineTuneResult:
    """Run the training loop on a :func:`build_setup` and package the trained network and head."""
    cbs: list[Any] = [*callbacks, ProgressBar(progress)]
    if s["val"] is not None:
        cbs.append(EarlyStopping("val_loss", "min", patience=config.patience))
    if _lines_enabled(progress):
        cbs.append(EpochLogger(_stderr_line))
    checkpoint = None
    if checkpoint_dir is not None:
        fingerprint = {**fingerprint, "config": config.to_dict(), "stages": [st.describe() for st in stages],
                       "n_classes": int(n_classes), "data": _data_hash(s)}
        checkpoint = Checkpoint(checkpoint_dir, fingerprint, resume=resume)
        cbs.append(checkpoint)
    trainer = Trainer(cbs, seed=config.seed)
    epochs_log = trainer.fit(s["task"], s["train"], s["val"], stages)

    net: ClassifierNet = s["net"]
    net.eval()
    tuned = s["backbone"]
    tuned.model.eval()
    tuned.weights_id = f"fine-tuned:{state_sha256(tuned.model)}"
    W = net.head.weight.detach().double().numpy()
    b = net.head.bias.detach().double().numpy()
    mean = net.standardize.mean.detach().double().numpy()
    scale = net.standardize.scale.detach().double().numpy()
    head = HeadArrays("linear", mean, scale, [W], [b], probabilistic=True,
                      params={"dropout": config.dropout, "trained_by": stages[-1].name})
    stopper = next((cb for cb in cbs if isinstance(cb, EarlyStopping)), None)
    history = make_history(epochs_log, stages, stopper.best_epochs if stopper else {})
    history.update({"n_train": s["n_train"], "n_val": s["n_val"], "batch_size": s["batch_size"],
                    "unfrozen_blocks": [n for n, _ in s["blocks"][len(s["blocks"]) - s["n_unfreeze"]:]]
                    if s["n_unfreeze"] else []})
    return FineTuneResult(tuned, head, history, s["n_train"], s["n_val"],
                          resumed_epoch=checkpoint.resumed_epoch if checkpoint else None)


def make_history(epochs: list[dict[str, Any]], stages: Sequence[Stage], best_epochs: dict[str, int]) -> dict[str, Any]:
    """The ``history`` block of ``results.json``: per-epoch logs, the stage boundary, the stages."""
    first = [e["epoch"] for e in epochs if e.get("stage") == 1]
    return {
        "epochs": [dict(e) for e in epochs],
        "stage_boundary": max(first) if first and len(first) < len(epochs) else None,
        "stages": [{"name": st.name, "max_epochs": st.epochs, "lr": st.lr,
                    "epochs_run": sum(1 for e in epochs if e.get("stage") == i + 1),
                    "best_epoch": best_epochs.get(st.name)} for i, st in enumerate(stages)],
    }


def _data_hash(s: dict[str, Any]) -> str:
    """Hash of the training and validation items and labels (a checkpoint must belong to the same data)."""
    h = hashlib.sha256()
    for batches in (s["train"], s["val"]):
        if batches is not None:
            _hash_batches(h, batches)
    return h.hexdigest()[:16]


def _hash_batches(h: Any, batches: ItemBatches) -> None:
    inputs = batches.inputs
    if isinstance(inputs, torch.Tensor):
        h.update(inputs.contiguous().numpy().tobytes())
    else:
        for t in inputs:
            h.update(t.numpy().tobytes() + b"|")
    h.update(batches.targets.numpy().tobytes())


# -- saving and loading the fine-tuned network -----------------------------------------------------------

NETWORK_FILE = "network.safetensors"


def save_network(backbone: Backbone, directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the fine-tuned weights to ``directory/network.safetensors`` (atomically); returns the metadata
    ``model.json`` keeps to rebuild it."""
    from safetensors.torch import save_file

    from .._utils import atomic_path

    state = {k: v.detach().cpu().clone().contiguous() for k, v in backbone.model.state_dict().items()}
    with atomic_path(Path(directory) / NETWORK_FILE) as tmp:
        save_file(state, str(tmp), metadata={"format": "transferkit-network"})
    return {"file": NETWORK_FILE, "weights_id": backbone.weights_id,
            "image_size": getattr(backbone, "image_size", None)}


def load_network(config: BackboneConfig, directory: str | os.PathLike[str], meta: dict[str, Any]) -> Backbone:
    """Rebuild the architecture from ``config`` (random initialisation, no download) and load the saved
    fine-tuned weights strictly; the weights' sha256 must match the one recorded at save time."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..backbones import load_backbone

    path = Path(directory) / meta.get("file", NETWORK_FILE)
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise ModelFileError(f"cannot read {str(path)!r} ({exc}); the model directory is incomplete or corrupt") from exc
    fresh = load_backbone(config, pretrained=False, image_size=meta.get("image_size"))
    net = copy_backbone(fresh)
    try:
        net.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{str(path)!r} does not fit a {config.architecture} ({str(exc).splitlines()[0][:160]}); "
                             "the model directory was written by another version or for another backbone") from exc
    net.model.eval()
    net.weights_id = f"fine-tuned:{state_sha256(net.model)}"
    if net.weights_id != meta.get("weights_id"):
        raise ModelFileError(f"{str(path)!r} does not hold the weights model.json records (sha256 differs); "
                             "the model directory is corrupt or its files are mixed up")
    return net


# -- learning-rate finder --------------------------------------------------------------------------------


def lr_find(backbone: Backbone, X: Any, y_index: np.ndarray, n_classes: int, config: FineTuneConfig | None = None,
            *, layer: str | None = None, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
            progress: bool = False) -> LRFinderResult:
    """LR range test of stage 1 (a new head on the frozen base, with the configured dropout, label
    smoothing and augmentation) on a throw-away copy of ``backbone``. Its ``suggestion`` is a value for
    ``lr``; stage 2 then trains at ``lr * lr_ratio``."""
    config = config or FineTuneConfig()
    s = build_setup(backbone, X, y_index, n_classes, config, layer=layer, validation=False)
    freeze = FreezeUnfreeze(s["net"].features, s["blocks"], [0], train_bn=config.train_bn)
    task, train = (s["head_stage"]["task"], s["head_stage"]["train"]) if s["head_stage"] else (s["task"], s["train"])
    return lr_range_test(task, train, start_lr=start_lr, end_lr=end_lr, num_it=num_it, seed=config.seed,
                         callbacks=[freeze, ProgressBar(progress)])
