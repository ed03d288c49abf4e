"""Contrastive pre-tuning of the encoder before the two stages (SetFit, Tunstall et al. 2022)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch.nn.functional as F
from torch import nn

from ...backbones import Backbone
from ...training import (
    EpochLogger,
    FreezeUnfreeze,
    ItemBatches,
    ProgressBar,
    Stage,
    StepOutput,
    Trainer,
    block_param_groups,
)
from ..network import block_modules, copy_backbone, state_sha256
from .config import CONTRASTIVE_BATCH_SIZE, CONTRASTIVE_LR_RATIO, DEFAULT_LR, FineTuneConfig, unfrozen_count
from .data import prepare_inputs
from .progress import lines_enabled, stderr_line


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
    n_unfreeze = unfrozen_count(config.unfreeze, len(backbone.config.blocks)) or len(backbone.config.blocks)
    tuned = copy_backbone(backbone)
    encoder = tuned.feature_module(layer)
    blocks = block_modules(tuned, layer)
    inputs, collate = prepare_inputs(tuned, X)
    pairs = contrastive_pairs(y_index, rounds, config.seed)
    batches = pair_batches(inputs, collate, pairs, batch_size=CONTRASTIVE_BATCH_SIZE, seed=config.seed)
    freeze = FreezeUnfreeze(encoder, blocks, [min(n_unfreeze, len(blocks))], train_bn=config.train_bn)
    cbs: list[Any] = [freeze, ProgressBar(progress)]
    if lines_enabled(progress):
        cbs.append(EpochLogger(stderr_line))
    logs = Trainer(cbs, seed=config.seed).fit(PairTask(encoder, blocks), batches, None,
                                               [Stage("contrastive", 1, lr, warmup=0.1, end_factor=0.0)])
    tuned.model.eval()
    tuned.weights_id = f"contrastive:{state_sha256(tuned.model)}"
    return tuned, {"rounds": rounds, "pairs": len(pairs), "lr": lr,
                   "loss": logs[-1].get("train_loss") if logs else None,
                   "time_s": logs[-1].get("time_s") if logs else None}
