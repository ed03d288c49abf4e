"""A toy task for loop tests: a 2-layer MLP on a linearly separable 2-class problem."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.training import FreezeUnfreeze, ItemBatches, StepOutput, block_param_groups


def toy_data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def stack(batch: list[torch.Tensor]) -> tuple[torch.Tensor]:
    return (torch.stack(batch),)


def toy_batches(n: int = 96, seed: int = 0, batch_size: int = 16, shuffle: bool = True) -> ItemBatches:
    x, y = toy_data(n, seed)
    return ItemBatches(x, y, stack, batch_size=batch_size, shuffle=shuffle, seed=seed)


class ToyTask:
    """``model = [Linear(4,16), ReLU, Dropout, Linear(16,2)]``; the first Linear is the "base" block."""

    def __init__(self, seed: int = 0, dropout: float = 0.3) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))
        self.blocks = [("base", self.model[0])]

    def _step(self, batch: Any) -> StepOutput:
        (x,), y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, {"loss": float(loss.detach()), "acc": float((logits.argmax(1) == y).float().mean())}, len(y))

    training_step = validation_step = _step

    def param_groups(self) -> list[dict[str, Any]]:
        return block_param_groups(self.model, self.model[3], self.blocks, head_weight_decay=0.01)

    def freeze(self, unfreeze: list[int], gradual: bool = False) -> FreezeUnfreeze:
        return FreezeUnfreeze(self.model[0], self.blocks, unfreeze, gradual=gradual)
