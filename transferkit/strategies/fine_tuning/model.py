"""The network fine-tuning trains: the pretrained base pooled to features, standardised, dropout, a linear
head; the head alone (stage 1 on cached features); and the classification task of the training loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...training import ItemBatches, StepOutput, block_param_groups


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
