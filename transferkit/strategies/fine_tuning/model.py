"""The network fine-tuning trains: the pretrained base pooled to features, standardised, dropout, a linear
head; the head alone (stage 1 on cached features); and the classification task of the training loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...training import ItemBatches, StepOutput, block_param_groups


class Standardize(nn.Module):
    """``(x - mean) / scale`` with fixed buffers: the training features' statistics under the frozen base,
    so one learning rate suits every backbone whatever the scale of its features."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def fit_(self, features: torch.Tensor) -> None:
        """Set the buffers to the mean and std of ``features`` ``(N, dim)``; a std that is not finite or below
        1e-6 (one item, a constant feature) stays 1."""
        scale = features.std(0) if len(features) > 1 else torch.ones_like(self.scale)
        self.mean.copy_(features.mean(0))
        self.scale.copy_(torch.where(torch.isfinite(scale) & (scale > 1e-6), scale, torch.ones_like(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class ClassifierNet(nn.Module):
    """``features`` (the pretrained base, pooled to ``(N, dim)``) → standardise → dropout → ``head`` (the
    objective's output layer; an int ``n`` is a linear layer to ``n`` logits)."""

    def __init__(self, features: nn.Module, dim: int, head: nn.Module | int, dropout: float) -> None:
        super().__init__()
        self.features = features
        self.standardize = Standardize(dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, head) if isinstance(head, int) else head

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


class ObjectiveTask:
    """The objective's loss (:meth:`~transferkit.objectives.Objective.step`) + L2-SP on a
    :class:`ClassifierNet` (or a :class:`HeadNet`); logs what the objective logs.

    The logged training ``loss`` is the plain loss (no label smoothing, no penalty), the same quantity as the
    validation loss, so the learning curves compare like with like.
    """

    def __init__(self, net: nn.Module, blocks: Sequence[tuple[str, nn.Module]], objective: Any = None, *,
                 label_smoothing: float = 0.0, l2sp: float = 0.0, layer_decay: float = 1.0,
                 weight_decay: float = 0.01, base_weight_decay: float = 0.0) -> None:
        if objective is None:
            from ...objectives import Classification

            objective = Classification()
        self.model = net
        self.objective = objective
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
        loss, logs = self.objective.step(self.model, inputs, y, label_smoothing=self.label_smoothing, training=True)
        if self.l2sp > 0:
            loss = loss + self.l2sp_penalty()
        return StepOutput(loss, logs, len(y))

    def validation_step(self, batch: Any) -> StepOutput:
        inputs, y = batch
        loss, logs = self.objective.step(self.model, inputs, y, label_smoothing=0.0, training=False)
        return StepOutput(loss, logs, len(y))

    def param_groups(self) -> list[dict[str, Any]]:
        return block_param_groups(self.model, self.model.head, self.blocks, layer_decay=self.layer_decay,
                                  head_weight_decay=self.weight_decay, base_weight_decay=self.base_weight_decay)


#: the classification objective's task (cross-entropy with label smoothing, accuracy logged)
ClassificationTask = ObjectiveTask
