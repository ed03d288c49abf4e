"""Deep domain adaptation trained end to end through the shared training loop (:mod:`transferkit.training`).

The network is fine-tuning's :class:`~transferkit.strategies.fine_tuning.model.ClassifierNet` (a trainable
copy of the backbone, or a random-init small CNN, → standardise → dropout → linear); each step takes a
source batch (labelled) and a target batch (unlabelled) and minimises

    cross-entropy(source) + trade_off × transfer_loss(features_source, features_target)

with the transfer loss of :mod:`.losses` (TLlib's training-loop structure: ``dann``/``cdan`` reverse the
gradient into the features with the ``2/(1+exp(-10p))-1`` schedule; ``deep-coral``/``mmd`` are plain
penalties). ``source-only`` is the same network, loop and budget with no transfer loss: the baseline.
Image batches of both domains go through the network together, so BatchNorm sees both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...training import ItemBatches, ProgressBar, Stage, StepOutput, Trainer
from .losses import (
    ConditionalDomainAdversarialLoss,
    CoralLoss,
    DomainAdversarialLoss,
    MultiKernelMMD,
    dann_coefficient,
)

DEEP_METHODS = ("dann", "cdan", "deep-coral", "mmd")


def transfer_loss(method: str, dim: int, n_classes: int, seed: int) -> nn.Module | None:
    if method == "source-only":
        return None
    if method == "dann":
        return DomainAdversarialLoss(dim)
    if method == "cdan":
        return ConditionalDomainAdversarialLoss(dim, n_classes, seed=seed)
    if method == "deep-coral":
        return CoralLoss()
    if method == "mmd":
        return MultiKernelMMD()
    raise ValueError(f"unknown deep method {method!r}")


class PairedBatches:
    """Source batches ``(inputs, y)`` paired with target batches: ``(inputs_s, y_s, inputs_t)``. An epoch is
    one pass over the *larger* domain, the smaller one cycled (reshuffled each round), so every item of both
    domains is seen each epoch — with a small source and a large target (1,437 digits → 5,000 MNIST) an epoch
    over the source alone would show a third of the target."""

    def __init__(self, source: ItemBatches, target: ItemBatches) -> None:
        self.source, self.target = source, target

    def __len__(self) -> int:
        return max(len(self.source), len(self.target))

    @staticmethod
    def _cycle(batches: ItemBatches, epoch: int, offset: int) -> Iterator[Any]:
        rounds = 0
        while True:
            yield from batches.epoch(epoch * 1000 + offset + rounds)
            rounds += 1

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any, Any]]:
        source = iter(self.source.epoch(epoch)) if len(self.source) >= len(self.target) else \
            self._cycle(self.source, epoch, 500)
        target = self._cycle(self.target, epoch, 0)
        for _ in range(len(self)):
            (xs, ys), (xt, _) = next(source), next(target)
            yield xs, ys, xt


class AdaptNet(nn.Module):
    """The classifier network and the transfer loss's own parameters (a discriminator), trained together."""

    def __init__(self, net: nn.Module, align: nn.Module | None) -> None:
        super().__init__()
        self.net = net
        self.align = align


class AdaptationTask:
    """One step of a deep adaptation method (see the module docstring); logs the source loss and accuracy,
    the transfer loss and, for adversarial methods, the discriminator's accuracy (``domain_acc``)."""

    def __init__(self, model: AdaptNet, trade_off: float, total_steps: int, features_lr_scale: float,
                 weight_decay: float = 5e-4) -> None:
        self.model = model
        self.weight_decay = float(weight_decay)
        self.trade_off = float(trade_off)
        self.total_steps = max(1, int(total_steps))
        self.features_lr_scale = features_lr_scale
        self.steps_done = 0

    def _features(self, xs: tuple, xt: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.model.net
        if len(xs) == 1 and xs[0].shape[1:] == xt[0].shape[1:]:
            f = net.standardize(net.features(torch.cat([xs[0], xt[0]])))
            return f[: len(xs[0])], f[len(xs[0]):]
        return net.standardize(net.features(*xs)), net.standardize(net.features(*xt))

    def training_step(self, batch: Any) -> StepOutput:
        xs, ys, xt = batch
        net, align = self.model.net, self.model.align
        progress = self.steps_done / self.total_steps
        self.steps_done += 1
        f_s, f_t = self._features(xs, xt)
        g_s, g_t = net.head(net.dropout(f_s)), net.head(net.dropout(f_t))
        cls = F.cross_entropy(g_s, ys)
        metrics = {"loss": float(cls.detach()), "accuracy": float((g_s.argmax(1) == ys).float().mean())}
        loss = cls
        if align is not None:
            coeff = dann_coefficient(progress)
            if hasattr(align, "grl"):
                align.grl.coeff = coeff
                transfer = align(f_s, f_t, g_s, g_t)
                loss = cls + self.trade_off * transfer
                metrics["domain_acc"] = float(align.domain_accuracy)
            else:  # plain penalties ramp up with the same schedule
                transfer = align(f_s, f_t, g_s, g_t)
                loss = cls + self.trade_off * coeff * transfer
            metrics["transfer_loss"] = float(transfer.detach())
        return StepOutput(loss, metrics, len(ys))

    def validation_step(self, batch: Any) -> StepOutput:
        inputs, y = batch
        logits = self.model.net(*inputs)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, {"loss": float(loss), "accuracy": float((logits.argmax(1) == y).float().mean())}, len(y))

    def param_groups(self) -> list[dict[str, Any]]:
        net = self.model.net
        feats = [(f"net.features.{n}", p) for n, p in net.features.named_parameters() if p.requires_grad]
        rest = [(f"net.head.{n}", p) for n, p in net.head.named_parameters() if p.requires_grad]
        if self.model.align is not None:
            rest += [(f"align.{n}", p) for n, p in self.model.align.named_parameters() if p.requires_grad]
        wd = self.weight_decay
        return [{"name": "features", "params": feats, "lr_scale": self.features_lr_scale, "weight_decay": wd},
                {"name": "head", "params": rest, "lr_scale": 1.0, "weight_decay": wd}]


def train_deep(method: str, net: nn.Module, source: ItemBatches, target: ItemBatches, val: ItemBatches | None, *,
               n_classes: int, epochs: int, lr: float, trade_off: float, features_lr_scale: float, seed: int,
               progress: bool, optimizer: str = "adamw") -> list[dict[str, Any]]:
    """Train ``net`` (in place) with ``method``; returns the per-epoch history.

    ``optimizer``: ``"adamw"`` (5 % warm-up, cosine decay to 5 %, weight decay 5e-4) or ``"sgd"`` — TLlib's
    recipe: momentum 0.9, Nesterov, L2 weight decay 1e-3, no warm-up, ``lr × (1 + 10 p)^-0.75``."""
    dim = int(net.standardize.mean.numel())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        align = transfer_loss(method, dim, n_classes, seed)
    model = AdaptNet(net, align)
    batches = PairedBatches(source, target)
    sgd = optimizer == "sgd"
    task = AdaptationTask(model, trade_off, epochs * len(batches), features_lr_scale, 1e-3 if sgd else 5e-4)
    trainer = Trainer([ProgressBar(progress)], seed=seed, grad_clip=5.0, optimizer=optimizer)
    stage = (Stage(method, epochs, lr, schedule="inverse") if sgd
             else Stage(method, epochs, lr, warmup=0.05, end_factor=0.05))
    history = trainer.fit(task, batches, val, [stage])
    net.eval()
    return [dict(e) for e in history]


@torch.no_grad()
def network_outputs(net: nn.Module, batches: ItemBatches) -> tuple[np.ndarray, np.ndarray]:
    """``(standardised features, softmax probabilities)`` of every item, in order, in inference mode."""
    net.eval()
    feats, probs = [], []
    for inputs, _ in batches.epoch(0):
        f = net.standardize(net.features(*inputs))
        feats.append(f)
        probs.append(F.softmax(net.head(f), dim=1))
    return torch.cat(feats).double().numpy(), torch.cat(probs).double().numpy()
