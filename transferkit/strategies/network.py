"""Trained networks as a strategy's trunk: a trainable copy of a loaded backbone, its blocks, a hash of its
weights, and its state for the model folder (safetensors tensors + JSON metadata; rebuilt from the
backbone config without any download).

Shared by every strategy that trains a network (fine-tuning, the from-scratch CNN, ...).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones import Backbone, BackboneConfig
from ..backbones.base import ImageBackbone
from ..backbones.text import TextEncoderBackbone
from ..exceptions import ConfigError, ModelFileError

NETWORK_FILE = "network.safetensors"


def copy_backbone(backbone: Backbone) -> Backbone:
    """A trainable deep copy of a loaded backbone (loaded backbones are shared through an in-process cache)."""
    if hasattr(backbone, "trainable_copy"):  # backbones that know how to copy themselves (graph-cut networks)
        return backbone.trainable_copy()
    if isinstance(backbone, ImageBackbone):
        model, stages = copy.deepcopy((backbone.model, backbone.stages))
        return ImageBackbone(backbone.config, stages, model, backbone.weights_id, backbone.image_size)
    if isinstance(backbone, TextEncoderBackbone):
        out = TextEncoderBackbone(backbone.config, copy.deepcopy(backbone.model), backbone.tokenizer,
                                  backbone.weights_id, backbone.weights_dir)
        out.max_length = backbone.max_length
        return out
    if backbone.modality == "audio":  # Whisper / CREPE: the network is ``model``, the rest is preprocessing
        out = copy.copy(backbone)
        out.model = copy.deepcopy(backbone.model)
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


def network_state(backbone: Backbone) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, tensors)`` of a trained network for the model folder: its weights as numpy arrays (for
    ``network.safetensors``) and what ``model.json`` keeps to rebuild it."""
    tensors = {k: v.detach().cpu().contiguous().numpy().copy() for k, v in backbone.model.state_dict().items()}
    return ({"file": NETWORK_FILE, "weights_id": backbone.weights_id, "image_size": getattr(backbone, "image_size", None)},
            tensors)


def load_network(config: BackboneConfig, tensors: dict[str, Any], meta: dict[str, Any]) -> Backbone:
    """Rebuild the architecture from ``config`` (random initialisation, no download) and load the saved
    weights strictly; their sha256 must match the one recorded at save time."""
    from ..backbones import load_backbone

    state = {k: torch.as_tensor(np.asarray(v)) for k, v in tensors.items()}
    fresh = load_backbone(config, pretrained=False, image_size=meta.get("image_size"))
    net = copy_backbone(fresh)
    try:
        net.model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{meta.get('file', NETWORK_FILE)!r} does not fit a {config.architecture} "
                             f"({str(exc).splitlines()[0][:160]}); the model directory was written by another "
                             "version or for another backbone") from exc
    net.model.eval()
    net.weights_id = f"fine-tuned:{state_sha256(net.model)}"
    if net.weights_id != meta.get("weights_id"):
        raise ModelFileError(f"{meta.get('file', NETWORK_FILE)!r} does not hold the weights model.json records "
                             "(sha256 differs); the model directory is corrupt or its files are mixed up")
    return net
