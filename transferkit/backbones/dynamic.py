"""Backbone configs made on demand: any torchvision / timm classification architecture by name, and any
local Hugging Face text-encoder directory as ``hf:PATH``.

``resnet50`` resolves to torchvision's architecture (``timm:resnet50`` / ``torchvision:resnet50`` choose
explicitly; a name only timm knows goes to timm). The config is derived from the architecture itself: its
layers (stage ends found by tracing one forward pass), the classifier, the input size and normalisation of
its known pretrained configuration (torchvision weight metadata, timm ``pretrained_cfg``). Weights always
come from a file the user passes (``--weights``) or registers (``transferkit backbones add``).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, WeightsError
from .config import HF_SCHEME, BackboneConfig, WeightsSource, check_name

PRE_LOGITS = "pre_logits"  # same value as graph.PRE_LOGITS (graph imports torch)


@lru_cache(maxsize=1)
def _torchvision_names() -> frozenset[str]:
    import torchvision

    return frozenset(torchvision.models.list_models(module=torchvision.models))


def _timm_known(name: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    return bool(timm.is_model(name))


def find_architecture(name: str) -> tuple[str, str] | None:
    """``(family, architecture)`` for a torchvision/timm classification model name, else None."""
    for prefix in ("torchvision:", "timm:"):
        if name.startswith(prefix):
            arch = name[len(prefix):]
            family = prefix[:-1]
            ok = arch in _torchvision_names() if family == "torchvision" else _timm_known(arch)
            if not ok:
                raise ConfigError(f"{family} has no classification model {arch!r}; see "
                                  f"{'torchvision.models.list_models()' if family == 'torchvision' else 'timm.list_models()'}")
            return family, arch
    try:
        if name in _torchvision_names():
            return "torchvision", name
    except ImportError:
        pass
    if _timm_known(name):
        return "timm", name
    return None


def _known_preprocessing(family: str, arch: str, model: Any) -> tuple[int, tuple, tuple, str]:
    if family == "timm":
        cfg = getattr(model, "pretrained_cfg", None) or {}
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        return (size, tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225))),
                str(cfg.get("interpolation", "bilinear")))
    import torchvision

    try:
        transforms = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
        return (int(transforms.crop_size[0]), tuple(transforms.mean), tuple(transforms.std),
                str(transforms.interpolation.value))
    except (ValueError, AttributeError, KeyError):
        return 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear"


def _layers(family: str, model: Any, size: int, classifier: str | None) -> dict[str, int]:
    """Stage ends: timm models list them in ``feature_info``; otherwise, for feature maps, the last module
    output at each spatial resolution, and for tokens, each block of the longest stack. Then ``pre_logits``."""
    import torch

    from .graph import GraphFeatureNet, node_extractor, pool

    if family == "timm" and getattr(model, "feature_info", None):
        layers = {str(f["module"]): int(f["num_chs"]) for f in model.feature_info}
    else:
        from torchvision.models.feature_extraction import get_graph_node_names

        modules = dict(model.named_modules())
        stacks = [(n, m) for n, m in modules.items() if isinstance(m, torch.nn.Sequential | torch.nn.ModuleList)]
        longest = max(stacks, key=lambda nm: len(nm[1]))[0] if stacks else None
        top_names = []
        for top, child in model.named_children():  # the top-level modules, a top-level Sequential's children
            top_names.append(top)
            if isinstance(child, torch.nn.Sequential):
                top_names += [f"{top}.{c}" for c, _ in child.named_children()]
        skip = (classifier or "~").split(".")[0]
        graph_nodes = get_graph_node_names(model)[1]

        def trace(candidates: list[str]) -> tuple[list[str], dict[str, Any]]:
            order: dict[int, str] = {}  # last graph node → the shortest module name ending on it
            for n in dict.fromkeys(candidates):
                if n.split(".")[0] == skip or n.startswith(("AuxLogits", "aux")):
                    continue
                hits = [i for i, g in enumerate(graph_nodes) if g == n or g.startswith(n + ".")]
                if hits and (max(hits) not in order or len(n) < len(order[max(hits)])):
                    order[max(hits)] = n
            found = [order[i] for i in sorted(order)]
            with torch.no_grad():
                outputs = node_extractor(family, model, found)(torch.zeros(1, 3, size, size))
            return [n for n in found if n in outputs], outputs

        names, outputs = trace(top_names)
        tokens = longest is not None and any(outputs[n].dim() == 3 for n in names)
        if tokens:  # a transformer: its blocks are the layers
            names, outputs = trace(top_names + [f"{longest}.{c}" for c, _ in modules[str(longest)].named_children()])
        chosen: dict[tuple, str] = {}
        for n in names:
            t = outputs[n]
            if t.dim() == 4:
                channels_last = t.shape[2] != t.shape[3] and t.shape[1] == t.shape[2]
                h, w = (t.shape[1], t.shape[2]) if channels_last else (t.shape[2], t.shape[3])
                if h * w > 1:
                    chosen[("map", h, w)] = n
            elif t.dim() == 3 and tokens and n.startswith(f"{longest}."):
                chosen[("tokens", n)] = n
        picked = set(chosen.values())
        layers = {n: int(pool(outputs[n]).shape[-1]) for n in names if n in picked}
    net = GraphFeatureNet(_pre_logits_body(family, model, classifier), (0, 0, 0), (1, 1, 1))
    with torch.no_grad():
        layers[PRE_LOGITS] = int(net(torch.zeros(1, size, size, 3, dtype=torch.uint8)).shape[-1])
    return layers


def _pre_logits_body(family: str, model: Any, classifier: str | None) -> Any:
    from .graph import TimmPreLogits, _without

    if family == "timm":
        return TimmPreLogits(model)
    if classifier is None:
        raise ConfigError("the architecture has no Linear classifier to cut off")
    return _without(model, classifier)


@lru_cache(maxsize=32)
def _arch_layout(family: str, arch: str) -> str:
    import torch

    from .graph import classifier_name, construct

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = construct(family, arch).eval()
    classifier = classifier_name(family, model)
    size, mean, std, interpolation = _known_preprocessing(family, arch, model)
    layers = _layers(family, model, size, classifier)
    n_classes = int(model.get_submodule(classifier).out_features) if classifier else 0
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return json.dumps({"layers": layers, "classifier": classifier, "size": size, "mean": mean, "std": std,
                       "interpolation": interpolation, "classes": n_classes, "params": round(params, 2)})


def arch_config(name: str, family: str, arch: str, *, weights: str | None = None, sha256: str = "",
                input_size: int | None = None, mean: tuple | None = None, std: tuple | None = None,
                description: str = "") -> BackboneConfig:
    """The config of ``family``/``arch`` under ``name`` (weights: an optional registered local file)."""
    info = json.loads(_arch_layout(family, arch))
    layers = {str(k): int(v) for k, v in info["layers"].items()}
    interpolation = info["interpolation"] if info["interpolation"] in ("bilinear", "bicubic", "nearest") else "bilinear"
    return BackboneConfig(
        name=name, family=family, architecture=arch, modality="image",
        description=description or f"{family} {arch} (weights from a local file)",
        weights=WeightsSource(sha256=sha256, local_path=weights, license="of the weights file"),
        layers=layers, blocks=tuple(n for n in layers if n != PRE_LOGITS),
        input_size=int(input_size or info["size"]), mean=tuple(mean or info["mean"]), std=tuple(std or info["std"]),
        interpolation=interpolation, num_source_classes=info["classes"], license="of the weights file",
        params_millions=info["params"], extra={"layout": "graph", "classifier": info["classifier"]},
    )


# --- Hugging Face directories ------------------------------------------------------------------------------

_HF_LAYER_PREFIX = {"distilbert": "transformer.layer"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def hf_config(name: str, path: str | None = None) -> BackboneConfig:
    """The config of a local Hugging Face encoder directory (``hf:PATH``): layers from ``config.json``,
    pooling from a sentence-transformers ``1_Pooling/config.json`` (else mean), L2 normalisation when
    ``modules.json`` lists it, max length from ``sentence_bert_config.json`` or the position embeddings."""
    check_name(name)
    directory = Path(os.path.expanduser(path if path is not None else name[len(HF_SCHEME):]))
    cfg_file = directory / "config.json"
    if not cfg_file.is_file():
        raise WeightsError(f"{str(directory)!r} is not a Hugging Face model directory (no config.json); pass the "
                           "folder holding config.json, the tokenizer files and model.safetensors")
    try:
        cfg = json.loads(cfg_file.read_text())
    except ValueError as exc:
        raise WeightsError(f"{cfg_file} is not valid JSON ({exc})") from exc
    main = next((f for f in _WEIGHT_FILES if (directory / f).is_file()), None)
    if main is None:
        raise WeightsError(f"{str(directory)!r} holds no model.safetensors or pytorch_model.bin")
    model_type = str(cfg.get("model_type", ""))
    n_layers = int(cfg.get("num_hidden_layers", cfg.get("n_layers", 0)))
    dim = int(cfg.get("hidden_size", cfg.get("dim", 0)))
    if n_layers <= 0 or dim <= 0:
        raise WeightsError(f"{cfg_file} names no num_hidden_layers/hidden_size; is it a text encoder?")
    prefix = _HF_LAYER_PREFIX.get(model_type, "encoder.layer")
    layers = {"embeddings": dim, **{f"{prefix}.{i}": dim for i in range(n_layers)}}
    pooling, normalize = "mean", False
    pool_file = directory / "1_Pooling" / "config.json"
    if pool_file.is_file():
        p = json.loads(pool_file.read_text())
        pooling = "cls" if p.get("pooling_mode_cls_token") else "max" if p.get("pooling_mode_max_tokens") else "mean"
    modules_file = directory / "modules.json"
    if modules_file.is_file():
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in json.loads(modules_file.read_text()))
    st_file = directory / "sentence_bert_config.json"
    max_length = json.loads(st_file.read_text()).get("max_seq_length") if st_file.is_file() else None
    if not max_length:
        positions = int(cfg.get("max_position_embeddings", 512))
        max_length = min(512, positions - 2 if model_type in ("roberta", "xlm-roberta", "mpnet") else positions)
    from .weights import file_sha256

    return BackboneConfig(
        name=name, family="transformers", architecture=model_type or "transformer", modality="text",
        description=f"Hugging Face {model_type or 'encoder'} from {directory} ({pooling} pooling)",
        weights=WeightsSource(sha256=file_sha256(directory / main), local_path=str(directory.resolve()),
                              is_directory=True, main_file=main, license="of the model directory"),
        layers=layers, blocks=tuple(layers), max_length=int(max_length), license="of the model directory",
        extra={"pooling": pooling, "normalize": normalize},
    )


def dynamic_config(name: str) -> BackboneConfig | None:
    """A config for ``hf:PATH`` or a torchvision/timm architecture name, or None for anything else."""
    if name.startswith(HF_SCHEME):
        return hf_config(name)
    if "/" in name or "\\" in name:
        return None
    found = find_architecture(name)
    if found is None:
        return None
    return arch_config(check_name(name), *found)
