"""Two-stage fine-tuning through the one training loop: the setup (network, task, batches), the stages,
the refitted head, the history; and the learning-rate range test of stage 1."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ...backbones import Backbone
from ...backbones.base import ImageBackbone
from ...data.augment import make_audio_augment, make_augment
from ...heads import HeadArrays
from ...training import (
    Checkpoint,
    EarlyStopping,
    EpochLogger,
    FreezeUnfreeze,
    ItemBatches,
    LRFinderResult,
    ProgressBar,
    Stage,
    Trainer,
    WeightAverage,
    lr_range_test,
)
from ...training.distributed import GradientSync, init_from_env, is_main, shard
from ..network import block_modules, copy_backbone, state_sha256
from .config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    MIN_PER_CLASS_FOR_VALIDATION,
    FineTuneConfig,
    check_backbone,
    unfrozen_count,
    validated_config,
)
from .contrastive import contrastive_tune
from .data import auto_epochs, prepare_inputs, stack_batch, subset, training_collate
from .model import ClassifierNet, HeadNet, ObjectiveTask, frozen_features
from .progress import lines_enabled, stderr_line

log = logging.getLogger(__name__)


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


def _objective(objective: Any, n_classes: int) -> Any:
    if objective is not None:
        return objective
    from ...objectives import Classification

    plain = Classification()
    plain.classes = np.arange(n_classes)
    return plain


def build_setup(backbone: Backbone, X: Any, y_index: np.ndarray, n_classes: int, config: FineTuneConfig, *,
                layer: str | None, validation: bool = True, objective: Any = None,
                standardize: bool = True) -> dict[str, Any]:
    """Everything :func:`fine_tune` and :func:`lr_find` share: network, task, batches, blocks.

    ``y_index`` holds the targets as ``objective`` encoded them (default: classification, class indices in
    ``0..n_classes-1``). ``standardize=False`` leaves the head's standardisation at the identity: for a
    random-initialised base whose BatchNorm trains, the untrained base's feature statistics (std ~1e-3 after six
    conv layers) say nothing about the trained one's, and dividing by them scales the logits up ~1000x."""
    objective = _objective(objective, n_classes)
    n_unfreeze = unfrozen_count(config.unfreeze, len(backbone.config.blocks))
    Y = objective.training_targets(np.asarray(y_index))
    trainable = copy_backbone(backbone)
    layer = backbone.config.resolve_layer(layer)
    features = trainable.feature_module(layer)
    dim = backbone.config.layers[layer]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = ClassifierNet(features, dim, objective.torch_head(dim), config.dropout)
    blocks = block_modules(trainable, layer)
    n_unfreeze = min(n_unfreeze, len(blocks))
    inputs, collate = prepare_inputs(trainable, X)
    split = (objective.validation_split(Y, config.validation_fraction, config.seed, MIN_PER_CLASS_FOR_VALIDATION)
             if validation and config.validation_fraction > 0 else None)
    if validation and config.validation_fraction > 0 and split is None:
        log.warning("fine-tuning: %s, so no validation split is carved and both stages run their full length "
                    "without early stopping; with this few labels feature extraction is often as good (compare the "
                    "strategies in the report)",
                    objective.too_small_for_validation(Y, config.validation_fraction, MIN_PER_CLASS_FOR_VALIDATION))
    tr, va = split if split is not None else (np.arange(len(Y)), np.zeros(0, dtype=np.int64))
    y_index = Y
    batch_size = config.batch_size or DEFAULT_BATCH_SIZE[backbone.modality]
    size = getattr(trainable, "image_size", None)
    augment = (make_augment(config.augment, size) if isinstance(trainable, ImageBackbone)
               else make_audio_augment(config.augment) if trainable.modality == "audio" else None)
    lengths = [len(t) for t in inputs] if trainable.modality == "text" else None  # token ids, padded per batch
    train = ItemBatches(subset(inputs, tr), y_index[tr], training_collate(trainable, collate, config.augment),
                        batch_size=batch_size, shuffle=True, seed=config.seed, transform=augment,
                        lengths=None if lengths is None else subset(lengths, tr))
    val = (ItemBatches(subset(inputs, va), y_index[va], collate, batch_size=max(batch_size, 64), shuffle=False)
           if len(va) else None)
    task = ObjectiveTask(net, blocks, objective, label_smoothing=config.label_smoothing, l2sp=config.l2sp,
                         layer_decay=config.layer_decay, weight_decay=config.weight_decay)
    # one pass of the frozen base over the (unaugmented) items: the head's standardisation, and stage 1's
    # inputs unless BatchNorm trains (then the base is not frozen in stage 1 and trains on the fly)
    plain = ItemBatches(subset(inputs, tr), y_index[tr], collate, batch_size=64, shuffle=False)
    f_train = frozen_features(net.features, plain)
    f_val = frozen_features(net.features, val) if val is not None else None
    if standardize:
        net.standardize.fit_(f_train)
    head_stage = None
    if not config.train_bn:
        head_stage = {
            "task": ObjectiveTask(HeadNet(net), [], objective, label_smoothing=config.label_smoothing,
                                  weight_decay=config.weight_decay),
            "train": ItemBatches(f_train, y_index[tr], stack_batch, batch_size=batch_size, shuffle=True, seed=config.seed),
            "val": (ItemBatches(f_val, y_index[va], stack_batch, batch_size=max(batch_size, 64), shuffle=False)
                    if f_val is not None else None),
        }
    every = ItemBatches(inputs, y_index, collate, batch_size=64, shuffle=False)
    return {"backbone": trainable, "net": net, "task": task, "blocks": blocks, "n_unfreeze": n_unfreeze,
            "train": train, "val": val, "every": every, "n_train": len(tr), "n_val": len(va), "batch_size": batch_size,
            "layer": layer, "dim": dim, "head_stage": head_stage, "objective": objective}


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
    validate: bool = True,
    objective: Any = None,
) -> FineTuneResult:
    """Two-stage fine-tuning of ``backbone`` (not modified: a copy is trained) on items ``X`` with integer
    labels ``y_index`` in ``0..n_classes-1``.

    Args:
        checkpoint_dir: save the training state there after every epoch (deleted after success).
        resume: continue from the checkpoint in ``checkpoint_dir`` (same data and options required).
        callbacks: extra training-loop callbacks.
        validate: check ``config`` first; ``False`` when it came from :func:`fine_tune_config`, which
            already did (the fine-tuning strategy), so a fit validates its configuration once.
        objective: what the head predicts (:mod:`transferkit.objectives`; default: classification, with
            ``y_index`` class indices); ``y_index`` then holds the objective's encoded targets.
    """
    config = config or FineTuneConfig()
    if validate:
        check_backbone(validated_config(**config.to_dict()), backbone.config)
    contrastive = None
    source = backbone
    if config.contrastive > 0:
        backbone, contrastive = contrastive_tune(backbone, X, y_index, config, config.contrastive, layer=layer,
                                                 progress=progress)
    s = build_setup(backbone, X, y_index, n_classes, config, layer=layer, objective=objective)
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
    if config.refit_head and s["objective"].can_refit(np.asarray(y_index)):
        result.head = refit_head(s["net"], s["every"], y_index, config.seed, s["objective"])
    return result


def refit_head(net: ClassifierNet, every: ItemBatches, y_index: np.ndarray, seed: int,
               objective: Any = None) -> HeadArrays:
    """The objective's feature-extraction head (classification: :func:`~transferkit.heads.fit_head`'s
    logistic regression) fitted on the fine-tuned network's features of every training item, unaugmented."""
    objective = _objective(objective, int(np.max(y_index)) + 1 if np.size(y_index) else 0)
    features = frozen_features(net.features, every).double().numpy()
    kind = objective.heads[0]
    head, _ = objective.fit_head(features, np.asarray(y_index), kind, None, random_state=seed, n_jobs=None)
    head.params["trained_by"] = f"{_HEAD_WORDS.get(kind, kind)} refitted on the fine-tuned features"
    return head


_HEAD_WORDS = {"logreg": "logistic regression", "ridge": "ridge regression"}


def train_network(s: dict[str, Any], stages: Sequence[Stage], config: FineTuneConfig, n_classes: int,
                  callbacks: Sequence[Any], *, fingerprint: dict[str, Any], checkpoint_dir: Any = None,
                  resume: bool = False, progress: bool = True) -> FineTuneResult:
    """Run the training loop on a :func:`build_setup` and package the trained network and head.

    Launched by ``torchrun`` (``transferkit fit --nproc N``), the processes train one model data-parallel
    (:mod:`transferkit.training.distributed`): each takes its share of every global batch, gradients are
    averaged, and only rank 0 writes the checkpoint and shows progress."""
    _, world_size = init_from_env()
    main = is_main()
    cbs: list[Any] = [*callbacks, ProgressBar(progress and main)]
    if s["val"] is not None:
        cbs.append(EarlyStopping("val_loss", "min", patience=config.patience))
    if lines_enabled(progress) and main:
        cbs.append(EpochLogger(stderr_line))
    checkpoint = None
    if checkpoint_dir is not None:
        fingerprint = {**fingerprint, "config": config.to_dict(), "stages": [st.describe() for st in stages],
                       "n_classes": int(n_classes), "data": _data_hash(s)}
        checkpoint = Checkpoint(checkpoint_dir, fingerprint, resume=resume, write=main)
        cbs.append(checkpoint)
    train = s["train"]
    if world_size > 1:
        cbs.append(GradientSync())
        train = shard(train)
        stages = [replace(st, train=shard(st.train)) if st.train is not None else st for st in stages]
    trainer = Trainer(cbs, seed=config.seed)
    epochs_log = trainer.fit(s["task"], train, s["val"], stages)

    net: ClassifierNet = s["net"]
    net.eval()
    tuned = s["backbone"]
    tuned.model.eval()
    tuned.weights_id = f"fine-tuned:{state_sha256(tuned.model)}"
    mean = net.standardize.mean.detach().double().numpy()
    scale = net.standardize.scale.detach().double().numpy()
    head = s["objective"].head_from_module(net.head, mean, scale,
                                           {"dropout": config.dropout, "trained_by": stages[-1].name})
    stopper = next((cb for cb in cbs if isinstance(cb, EarlyStopping)), None)
    history = make_history(epochs_log, stages, stopper.best_epochs if stopper else {})
    history.update({"n_train": s["n_train"], "n_val": s["n_val"], "batch_size": s["batch_size"],
                    "processes": world_size,
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
