"""The deep candidates of a :class:`~.strategy.DomainAdaptation` fit: one network per method (a trainable
copy of the backbone, or a random-init small CNN), all on the same items, split, budget and seed."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ...training import ItemBatches
from ..network import copy_backbone, state_sha256
from .deep import network_outputs, train_deep
from .selection import candidate_scores, map_sample

#: image side for a pretrained backbone's deep adaptation unless ``image_size`` is given (as fine-tuning)
PRETRAINED_SIZE_CAP = 112


def _base(strategy: Any, X: Any) -> tuple[Any, Any, str, float]:
    """``(loaded backbone, its config, layer, lr scale of its features)``."""
    from ...backbones import load_backbone
    from ...data.items import native_square_size
    from ..from_scratch import smallcnn_config

    ctx, c = strategy.context, strategy.config
    if c.trunk == "small-cnn":
        size = int(ctx.image_size or native_square_size(X) or 32)
        trunk = smallcnn_config(tuple(c.widths), size)
        return load_backbone(trunk, pretrained=False, image_size=size, seed=ctx.seed), trunk, trunk.default_layer, 1.0
    trunk = ctx.config
    size = None
    if trunk.modality == "image":
        size = int(ctx.image_size or min(trunk.input_size, PRETRAINED_SIZE_CAP))
    return ctx.load_backbone(image_size=size), trunk, trunk.resolve_layer(ctx.layer), 0.1


def fit_deep_candidates(strategy: Any, methods: list[str], X: Any, y_index: np.ndarray, X_target: Any) -> None:
    from ..fine_tuning.data import prepare_inputs, subset
    from ..fine_tuning.model import ClassifierNet, frozen_features

    c, ctx = strategy.config, strategy.context
    base, trunk, layer, lr_scale = _base(strategy, X)
    tr, va = strategy.split
    inputs_s, collate = prepare_inputs(base, X)
    inputs_t, _ = prepare_inputs(base, X_target)
    y = np.asarray(y_index)
    bs = c.batch_size
    train_inputs, train_y = subset(inputs_s, tr), y[tr]
    if getattr(strategy, "target_labelled", None) is not None:  # semi-supervised: labelled target items train too
        idx, y_lab = strategy.target_labelled
        extra = subset(inputs_t, idx)
        train_inputs = torch.cat([train_inputs, extra]) if isinstance(extra, torch.Tensor) else [*train_inputs, *extra]
        train_y = np.r_[train_y, y_lab]
    augment = None
    if c.augment == "affine" and isinstance(train_inputs, torch.Tensor):  # images: (N, S, S, 3) uint8
        from ...data.augment import make_affine_augment

        augment = make_affine_augment()
    source = ItemBatches(train_inputs, train_y, collate, batch_size=bs, shuffle=True, seed=ctx.seed, transform=augment)
    target = ItemBatches(inputs_t, np.zeros(len(inputs_t), dtype=np.int64), collate, batch_size=bs, shuffle=True,
                         seed=ctx.seed + 7)
    plain = {name: ItemBatches(subset(inputs_s, idx), y[idx], collate, batch_size=128, shuffle=False)
             for name, idx in (("train", tr), ("val", va))}
    plain["target"] = ItemBatches(inputs_t, np.zeros(len(inputs_t), dtype=np.int64), collate, batch_size=128,
                                  shuffle=False)
    strategy.histories = getattr(strategy, "histories", {})
    for method in methods:
        t0 = time.perf_counter()
        trainable = copy_backbone(base)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(ctx.seed)
            net = ClassifierNet(trainable.feature_module(layer), trunk.layers[layer], strategy.n_classes, 0.1)
        if c.trunk != "small-cnn":  # a random-init trunk has no meaningful statistics to standardise by
            net.standardize.fit_(frozen_features(net.features, plain["train"]))
        history = train_deep(method.replace("deep-source-only", "source-only"), net, source, target, plain["val"],
                             n_classes=strategy.n_classes, epochs=c.epochs, lr=c.lr, trade_off=c.trade_off,
                             features_lr_scale=lr_scale, seed=ctx.seed, progress=ctx.progress, optimizer=c.optimizer)
        seconds = time.perf_counter() - t0
        trainable.model.eval()
        trainable.weights_id = f"fine-tuned:{state_sha256(trainable.model)}"
        mean = net.standardize.mean.detach().double().numpy()
        scale_np = net.standardize.scale.detach().double().numpy()
        head = ctx.objective.head_from_module(net.head, mean, scale_np, {"trained_by": method, "dropout": 0.1})
        v_tr, _ = network_outputs(net, plain["train"])
        v_va, p_va = network_outputs(net, plain["val"])
        v_t, p_t = network_outputs(net, plain["target"])
        scores = candidate_scores(v_tr, v_va, v_t, p_va, y[va], p_t, seed=ctx.seed,
                                  clusters=getattr(strategy, "clusters", None))
        strategy.candidates[method] = {"head": head, "network": trainable, "trunk": trunk, "layer": layer,
                                       "map": map_sample(v_tr, v_t, ctx.seed)}
        strategy.histories[method] = [{k: e[k] for k in e if k in ("epoch", "train_loss", "train_accuracy",
                                                                   "train_domain_acc", "train_transfer_loss",
                                                                   "val_loss", "val_accuracy")} for e in history]
        strategy.table.append({"method": method, "kind": "deep", **scores, "fit_s": round(seconds, 3)})
