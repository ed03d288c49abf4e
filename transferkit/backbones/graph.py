"""Any torchvision or timm classification architecture as a backbone, its layers cut from the traced graph.

Layer names are torch.fx node names (torchvision's ``feature_extraction``; timm's own wrapper of it, which
knows timm's untraceable modules): a module name such as ``layer3`` selects the last node inside that
module. The default layer, ``pre_logits``, is what the model's classifier reads (the network with its last
classifier replaced by an identity; timm's ``forward_head(pre_logits=True)``). Outputs are pooled to
``(N, D)``: a feature map ``(N, C, H, W)`` over space, a token sequence ``(N, T, C)`` over tokens.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn

from ..exceptions import WeightsError
from .base import ImageBackbone, ImageInputs, Normalize, SourceProbsNet
from .config import SOURCE_PROBS, BackboneConfig

log = logging.getLogger(__name__)

#: the default layer of a graph-cut backbone: the classifier's input
PRE_LOGITS = "pre_logits"

#: constructor arguments torchvision's own builders use with pretrained weights
_TORCHVISION_KWARGS = {
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": False},
    "googlenet": {"aux_logits": True, "transform_input": True, "init_weights": False},
}


def construct(family: str, architecture: str) -> nn.Module:
    """A randomly initialised network (the caller seeds the RNG)."""
    if family == "timm":
        import timm

        return timm.create_model(architecture, pretrained=False)
    import torchvision

    return torchvision.models.get_model(architecture, weights=None, **_TORCHVISION_KWARGS.get(architecture, {}))


def classifier_name(family: str, model: nn.Module) -> str | None:
    """Qualified name of the network's final classifier (timm records it; torchvision: the last Linear)."""
    if family == "timm":
        name = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
        if name:
            try:
                if isinstance(model.get_submodule(name), nn.Linear):
                    return str(name)
            except AttributeError:
                pass
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not name.startswith("AuxLogits") and not name.startswith("aux"):
            last = name
    return last


def _without(module: nn.Module, qualname: str) -> nn.Module:
    """A shallow copy of ``module`` whose submodule ``qualname`` is an identity (parameters stay shared)."""
    head, _, rest = qualname.partition(".")
    clone = copy.copy(module)
    clone._modules = type(module._modules)(module._modules)
    clone._modules[head] = nn.Identity() if not rest else _without(module._modules[head], rest)  # type: ignore[index]
    return clone


class TimmPreLogits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


class FirstOutput(nn.Module):
    """The tensor of a module that may return a tuple (Inception's aux logits in training) or a dict (fx)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        if isinstance(out, tuple | list):
            out = out[0]
        return out


def pool(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → mean over space; (N, T, C) → mean over tokens; (N, D) unchanged. Inputs are square, so
    a channels-last map (N, H, W, C), as Swin's, is told apart by its two equal leading sizes."""
    if x.dim() == 4:
        if x.shape[2] != x.shape[3] and x.shape[1] == x.shape[2]:
            return x.mean(dim=(1, 2))
        return x.mean(dim=(2, 3))
    if x.dim() == 3:
        return x.mean(dim=1)
    return x.flatten(1)


class GraphFeatureNet(nn.Module):
    """uint8 pixels → normalise → the network up to one node → pooled (N, D)."""

    def __init__(self, body: nn.Module, mean, std, pool: bool = True) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.body = FirstOutput(body)
        self.pool = pool

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.body(self.normalize(pixels))
        return pool(x) if self.pool else x


def node_extractor(family: str, model: nn.Module, nodes: list[str]) -> nn.Module:
    """An fx graph module returning ``{node: tensor}`` for ``nodes`` (module names select their last node)."""
    if family == "timm":
        from timm.models._features_fx import create_feature_extractor
    else:
        from torchvision.models.feature_extraction import create_feature_extractor
    import warnings

    with warnings.catch_warnings():  # torchvision notes that train-mode graphs may hold more nodes
        warnings.simplefilter("ignore", UserWarning)
        return create_feature_extractor(model, return_nodes={n: n for n in nodes})


class GraphImageBackbone(ImageBackbone):
    """A torchvision/timm network whose layers are graph nodes (see the module docstring)."""

    def __init__(self, config: BackboneConfig, model: nn.Module, weights_id: str, image_size: int | None = None) -> None:
        ImageInputs.__init__(self, config, image_size)
        self.stages = []
        self.model = model.eval()
        self.weights_id = weights_id

    def body(self, layer: str) -> nn.Module:
        family = self.config.family
        if layer == PRE_LOGITS:
            if family == "timm":
                return TimmPreLogits(self.model)
            return _without(self.model, self.config.extra["classifier"])
        return node_extractor(family, self.model, [layer])

    def feature_module(self, layer: str | None = None, pool: bool = True) -> nn.Module:
        layer = self.config.resolve_layer(layer)
        if layer == SOURCE_PROBS:
            return SourceProbsNet(self.feature_module(self.config.default_layer), self.source_classifier()).eval()
        return GraphFeatureNet(self.body(layer), self.config.mean or (0.0, 0.0, 0.0),
                               self.config.std or (1.0, 1.0, 1.0), pool=pool).eval()

    def source_classifier(self) -> nn.Module:
        from ..exceptions import ConfigError

        name = self.config.extra.get("classifier")
        if not name or not self.config.has_source_classifier:
            raise ConfigError(f"backbone {self.config.name!r} has no source classifier to give {SOURCE_PROBS!r}")
        return self.model.get_submodule(name)

    def trainable_copy(self) -> GraphImageBackbone:
        return GraphImageBackbone(self.config, copy.deepcopy(self.model), self.weights_id, self.image_size)


def _strip_prefix(state: dict[str, torch.Tensor], target: set[str]) -> dict[str, torch.Tensor]:
    """Undo the ``module.`` prefix of DataParallel checkpoints (and ``model.``) when that makes keys fit."""
    for prefix in ("module.", "model."):
        if state and not (set(state) & target) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_graph_weights(model: nn.Module, state: dict[str, torch.Tensor], config: BackboneConfig, path: Path) -> None:
    """Strict load with a message naming the first missing and unexpected keys; a classifier of another size
    (a checkpoint fine-tuned on another label set) is dropped, keeping the network's own."""
    target = model.state_dict()
    state = _strip_prefix(dict(state), set(target))
    head = config.extra.get("classifier")
    if head:
        other = [k for k in state if k.startswith(head + ".") and k in target and state[k].shape != target[k].shape]
        if other:
            log.warning("%s: the classifier in %s has another size (%s); it is dropped", config.name, path,
                        tuple(state[other[0]].shape))
            state.update({k: target[k] for k in target if k.startswith(head + ".")})
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    shapes = [k for k in target if k in state and state[k].shape != target[k].shape]

    def first(keys: list[str]) -> str:
        return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

    if missing or unexpected or shapes:
        parts = ([f"missing keys: {first(missing)}"] if missing else []) + \
            ([f"unexpected keys: {first(unexpected)}"] if unexpected else []) + \
            ([f"shape mismatch: {first(shapes)}"] if shapes else [])
        raise WeightsError(f"weights file {str(path)!r} does not fit {config.family} {config.architecture} "
                           f"({'; '.join(parts)}); pass the state dict of a {config.architecture}")
    model.load_state_dict(state, strict=True)
