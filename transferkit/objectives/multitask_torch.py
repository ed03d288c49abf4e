"""The torch side of the multi-task objective (:mod:`transferkit.objectives.multitask`): the output layer
with one run of logits per task, the masked per-task losses, their weighting, and PCGrad."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MISSING = -1


class MultiTaskHead(nn.Linear):
    """A linear layer whose outputs are the tasks' logits side by side (``segments``: classes per task),
    with the learned log-variances ``log_vars`` of uncertainty weighting when ``learn_log_vars``."""

    def __init__(self, dim: int, segments: list[int], *, learn_log_vars: bool = False) -> None:
        super().__init__(dim, int(sum(segments)))
        self.segments = list(segments)
        self.log_vars = nn.Parameter(torch.zeros(len(segments))) if learn_log_vars else None


def task_losses(parts: list[torch.Tensor], targets: torch.Tensor, label_smoothing: float = 0.0) -> list[torch.Tensor]:
    """Cross-entropy of each task over the items labelled for it; a task with no label in the batch
    contributes an exact zero (and so no gradient)."""
    out = []
    for t, z in enumerate(parts):
        y = targets[:, t]
        labelled = y != MISSING
        if bool(labelled.any()):
            out.append(F.cross_entropy(z[labelled], y[labelled], label_smoothing=label_smoothing))
        else:
            out.append(z.sum() * 0.0)
    return out


def _accuracies(parts: list[torch.Tensor], targets: torch.Tensor) -> list[float | None]:
    accs: list[float | None] = []
    for t, z in enumerate(parts):
        labelled = targets[:, t] != MISSING
        accs.append(float((z[labelled].argmax(1) == targets[labelled, t]).float().mean()) if bool(labelled.any()) else None)
    return accs


def _logs(objective: Any, parts: list[torch.Tensor], targets: torch.Tensor, plain: list[torch.Tensor],
          weights: list[float]) -> dict[str, float]:
    accs = _accuracies(parts, targets)
    known = [a for a in accs if a is not None]
    logs = {"loss": float(sum(float(w) * float(p.detach()) for w, p in zip(weights, plain, strict=True)) if objective.weighting == "fixed"
                          else sum(float(p.detach()) for p in plain)),
            "acc": float(sum(known) / len(known)) if known else 0.0}
    for task, p, a, w in zip(objective.tasks, plain, accs, weights, strict=True):
        logs[f"loss_{task}"] = float(p.detach())
        if a is not None:
            logs[f"acc_{task}"] = a
        logs[f"w_{task}"] = float(w)
    return logs


def combined_loss(objective: Any, head: nn.Module, z: torch.Tensor, targets: torch.Tensor,
                  label_smoothing: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the task losses (``fixed`` or ``uncertainty``; PCGrad's plain sum outside
    training) and the logs: the plain per-task losses, accuracies and the weights in force."""
    parts = objective._split(z)
    losses = task_losses(parts, targets, label_smoothing)
    plain = losses if label_smoothing == 0 else task_losses(parts, targets)
    log_vars = getattr(head, "log_vars", None)
    if objective.weighting == "uncertainty" and log_vars is not None:
        total = torch.stack([torch.exp(-s) * L + 0.5 * s for s, L in zip(log_vars, losses, strict=True)]).sum()
        weights = [float(torch.exp(-s).detach()) for s in log_vars]
    else:
        weights = [objective.weight_of(t) if objective.weighting == "fixed" else 1.0 for t in objective.tasks]
        total = torch.stack([w * L for w, L in zip(weights, losses, strict=True)]).sum()
    return total, _logs(objective, parts, targets, plain, weights)


def _pre_head(net: nn.Module, inputs: tuple) -> torch.Tensor:
    """What ``net``'s head reads: pooled, standardised, dropped-out features (a fine-tuning network, or its
    head alone on cached features)."""
    x = net.features(*inputs) if hasattr(net, "features") else inputs[0]
    return net.dropout(net.standardize(x))


def pcgrad_step(objective: Any, net: nn.Module, inputs: tuple, targets: torch.Tensor,
                label_smoothing: float) -> tuple[torch.Tensor, dict[str, float]]:
    """PCGrad (Yu et al. 2020): each task's gradient on the shared parameters loses its component along
    another task's gradient when the two conflict (negative inner product), tasks taken in random order;
    the projected gradients are summed. Returned as a surrogate loss whose gradient is exactly that on the
    shared parameters and the plain task gradients on the head, so any loop's ``loss.backward()`` applies it."""
    h = _pre_head(net, inputs)
    parts = objective._split(net.head(h))
    losses = task_losses(parts, targets, label_smoothing)
    plain = losses if label_smoothing == 0 else [L.detach() for L in task_losses(parts, targets)]
    shared = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("head.")]
    conflicts, pairs = 0, 0
    if shared and h.requires_grad:
        flat = []
        for L in losses:
            grads = torch.autograd.grad(L, shared, retain_graph=True, allow_unused=True)
            flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                   for g, p in zip(grads, shared, strict=True)]))
        projected = []
        for i, g in enumerate(flat):
            g = g.clone()
            for j in torch.randperm(len(flat)).tolist():
                if j == i:
                    continue
                dot = torch.dot(g, flat[j])
                pairs += 1
                if dot < 0:
                    conflicts += 1
                    g -= dot / flat[j].pow(2).sum().clamp_min(1e-20) * flat[j]
            projected.append(g)
        total_grad = torch.stack(projected).sum(0)
        surrogate, offset = torch.zeros(()), 0
        for p in shared:
            n = p.numel()
            surrogate = surrogate + (p * total_grad[offset:offset + n].view_as(p)).sum()
            offset += n
        detached = objective._split(net.head(h.detach()))
        total = surrogate + torch.stack(task_losses(detached, targets, label_smoothing)).sum()
    else:  # nothing shared is trained (the head alone): the plain sum
        total = torch.stack(losses).sum()
    logs = _logs(objective, parts, targets, plain, [1.0] * len(losses))
    logs["conflicts"] = conflicts / pairs if pairs else 0.0
    return total, logs
