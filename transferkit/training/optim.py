"""Parameter groups for the optimiser: weight decay where it belongs, discriminative learning rates.

:func:`block_param_groups` orders groups as the training loop expects them to stay ordered: the head first,
then the base's blocks from the top (output side) down. Block ``d`` below the top trains at
``layer_decay ** d`` times the stage's learning rate (discriminative, or layer-wise, learning rates). Biases
and normalisation parameters (every 0-/1-D tensor) never get weight decay. Only parameters that require
grad at the time of the call take part; the loop asks again whenever blocks are unfrozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn


def _split(named: list[tuple[str, nn.Parameter]]) -> tuple[list, list]:
    decay = [(n, p) for n, p in named if p.ndim > 1]
    no_decay = [(n, p) for n, p in named if p.ndim <= 1]
    return decay, no_decay


def block_param_groups(
    model: nn.Module,
    head: nn.Module,
    blocks: Sequence[tuple[str, nn.Module]],
    *,
    layer_decay: float = 1.0,
    head_weight_decay: float = 0.01,
    base_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Groups ``{"name", "params": [(name, param)], "lr_scale", "weight_decay"}`` for the trainable
    parameters of ``head`` and of ``blocks`` (input → output order) inside ``model``."""
    names = {id(p): n for n, p in model.named_parameters()}

    def named(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
        return [(names[id(p)], p) for p in module.parameters() if p.requires_grad and id(p) in names]

    groups: list[dict[str, Any]] = []
    decay, no_decay = _split(named(head))
    groups.append({"name": "head", "params": decay, "lr_scale": 1.0, "weight_decay": head_weight_decay})
    groups.append({"name": "head/no-decay", "params": no_decay, "lr_scale": 1.0, "weight_decay": 0.0})
    for depth, (block_name, block) in enumerate(reversed(list(blocks))):
        scale = float(layer_decay) ** depth
        decay, no_decay = _split(named(block))
        groups.append({"name": block_name, "params": decay, "lr_scale": scale, "weight_decay": base_weight_decay})
        groups.append({"name": f"{block_name}/no-decay", "params": no_decay, "lr_scale": scale, "weight_decay": 0.0})
    return groups
