"""Image backbone families: torchvision, timm, and the small from-scratch CNN.

Each family function builds the network, loads the weights (strict, with a one-line error for truncated or
mismatched files) and cuts the network into the stages named in the config's ``layers``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from ..exceptions import WeightsError
from .base import ImageBackbone
from .config import BackboneConfig, check_architecture
from .weights import ResolvedWeights


def load_state_dict_file(path: Path, config: BackboneConfig) -> dict[str, torch.Tensor]:
    """Read a third-party weights file safely (safetensors, or ``torch.load(weights_only=True)``)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"weights file {str(path)!r} holds pickled Python objects besides tensors and transferkit never "
            "unpickles code; save the model's state_dict with safetensors (or torch.save(model.state_dict()))"
        ) from exc
    except Exception as exc:  # torch raises RuntimeError/EOFError/UnpicklingError/zipfile errors
        raise WeightsError(
            f"cannot read weights file {str(path)!r} for {config.name!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'truncated or corrupt'}); "
            "the file is truncated or corrupt: download or reinstall it"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {str(path)!r} does not hold a state dict of tensors")
    return state


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], config: BackboneConfig, path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise WeightsError(
            f"weights file {str(path)!r} does not fit {config.architecture} ({first[:160]}); "
            f"pass weights saved from a {config.architecture}"
        ) from exc


def _construct(factory, seed: int) -> nn.Module:
    """Build a network with its own initialisation drawn from ``seed``, leaving the global RNG untouched.

    With pretrained weights the initialisation is overwritten; without, this is the seeded random-init
    negative control.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def build_torchvision(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> ImageBackbone:
    if config.extra.get("layout") == "graph":
        return build_graph(config, weights, pretrained=pretrained, image_size=image_size, seed=seed)
    import torchvision

    check_architecture(config.family, config.architecture)
    model = _construct(lambda: torchvision.models.get_model(config.architecture), seed)
    if pretrained and weights is not None:
        load_strict(model, load_state_dict_file(weights.path, config), config, weights.path)
        weights_id = weights.sha256
    else:
        weights_id = f"random-init:{seed}"
    if config.architecture.startswith("mobilenet"):
        stages = [(f"features.{i}", block) for i, block in enumerate(model.features)]
    else:  # pragma: no cover - only mobilenet is registered
        raise WeightsError(f"no stage layout for torchvision architecture {config.architecture!r}")
    return ImageBackbone(config, stages, model, weights_id, image_size)


def build_timm(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> ImageBackbone:
    if config.extra.get("layout") == "graph":
        return build_graph(config, weights, pretrained=pretrained, image_size=image_size, seed=seed)
    import timm

    check_architecture(config.family, config.architecture)
    model = _construct(lambda: timm.create_model(config.architecture, pretrained=False), seed)
    if pretrained and weights is not None:
        state = load_state_dict_file(weights.path, config)
        target = model.state_dict()
        if config.extra.get("map_keys_in_order") and set(state) != set(target):
            if len(state) != len(target):
                raise WeightsError(
                    f"weights file {str(weights.path)!r} has {len(state)} tensors, {config.architecture} "
                    f"needs {len(target)}; pass weights of a {config.architecture}"
                )
            state = dict(zip(target.keys(), state.values(), strict=True))
        load_strict(model, state, config, weights.path)
        weights_id = weights.sha256
    else:
        weights_id = f"random-init:{seed}"
    stages: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(model.conv_stem, model.bn1))]
    stages += [(f"blocks.{i}", block) for i, block in enumerate(model.blocks)]
    stages.append(("conv_head", nn.Sequential(model.conv_head, model.bn2)))
    return ImageBackbone(config, stages, model, weights_id, image_size)


def build_graph(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> ImageBackbone:
    """Any torchvision/timm classification network, its layers cut from the traced graph (:mod:`.graph`)."""
    from .graph import GraphImageBackbone, construct, load_graph_weights

    model = _construct(lambda: construct(config.family, config.architecture), seed)
    if pretrained and weights is not None:
        load_graph_weights(model, load_state_dict_file(weights.path, config), config, weights.path)
        weights_id = weights.sha256
    else:
        weights_id = f"random-init:{seed}"
    return GraphImageBackbone(config, model, weights_id, image_size)


class SmallCNN(nn.Module):
    """A small VGG-style CNN: ``widths`` conv blocks (conv-BN-ReLU ×2, max-pool), then a linear classifier.

    Used as the from-scratch baseline and, with a few channels, as the tiny backbone in tests.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), num_classes: int = 1000) -> None:
        super().__init__()
        blocks = []
        in_ch = 3
        for w in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_ch, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(w, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
            in_ch = w
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def build_smallcnn(
    config: BackboneConfig, weights: ResolvedWeights | None, *, pretrained: bool, image_size: int | None, seed: int
) -> ImageBackbone:
    widths = tuple(config.extra.get("widths", (32, 64, 128)))
    model = _construct(lambda: SmallCNN(widths, num_classes=max(config.num_source_classes, 1)), seed)
    if pretrained and weights is not None:
        load_strict(model, load_state_dict_file(weights.path, config), config, weights.path)
        weights_id = weights.sha256
    else:
        weights_id = f"random-init:{seed}"
    stages = [(f"features.{i}", block) for i, block in enumerate(model.features)]
    return ImageBackbone(config, stages, model, weights_id, image_size)
