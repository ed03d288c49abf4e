"""The candidates of a ranking: a registry backbone of the data's modality at one of its layers,
pretrained or a random-initialised copy (a negative control), and the named layer sets to rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..backbones import BackboneConfig, get_config, list_backbones
from ..backbones.config import SOURCE_PROBS
from ..exceptions import ConfigError, DataError

#: Named layer sets: the last layer of each backbone, the end of each stage in the deeper half of the
#: network (:func:`stage_layers`), or every selectable layer.
LAYER_SETS = ("last", "stages", "all")


@dataclass(frozen=True)
class Candidate:
    """A backbone at one layer; ``pretrained=False`` is a random-initialised copy drawn from ``seed``."""

    backbone: str
    layer: str
    pretrained: bool = True
    seed: int = 0

    @property
    def control(self) -> bool:
        return not self.pretrained

    @property
    def label(self) -> str:
        return f"{self.backbone}:{self.layer}" + ("" if self.pretrained else " (random init)")


def stage_layers(config: BackboneConfig) -> list[str]:
    """The curated intermediate layers of a backbone: stage outputs in the deeper half, plus the last layer.

    A stage ends where the feature width changes (the last block at each resolution/width of a CNN; for
    MobileNetV2 these are blocks 4, 7, 11, 14, 17, 18 and 19 counted from 1). When fewer than three widths
    exist (transformer layers all have the same width) every layer counts as a stage end. Of these, the
    deeper half is kept: early stages hold generic edges and textures that rarely beat later ones. A
    config may list its own in ``extra["rank_layers"]``.
    """
    custom = config.extra.get("rank_layers")
    if custom:
        return [config.resolve_layer(name) for name in custom]
    names = list(config.layers)
    ends = [n for i, n in enumerate(names) if i == len(names) - 1 or config.layers[names[i + 1]] != config.layers[n]]
    if len(ends) < 3:
        ends = names
    return ends[len(ends) // 2 :]


def select_layers(config: BackboneConfig, layers: str | Sequence[str]) -> list[str]:
    """Layers of ``config`` for a layer set (``last``, ``stages``, ``all``) or an explicit list of names."""
    if isinstance(layers, str):
        if layers == "last":
            return [config.default_layer]
        if layers == "stages":
            return stage_layers(config)
        if layers == "all":
            return list(config.layers)
        raise ConfigError(f"layers={layers!r} is not one of {', '.join(LAYER_SETS)} (or a list of layer names)")
    out = [config.resolve_layer(name) for name in layers]
    if SOURCE_PROBS in out:
        raise ConfigError(f"{SOURCE_PROBS!r} is not a feature layer to rank; LEEP and NCE read it on their own")
    return list(dict.fromkeys(out))


def control_layers(selected: Sequence[str]) -> list[str]:
    """Layers that get a random-init control: the last ranked layer and, when several are ranked, the middle one."""
    return list(dict.fromkeys([selected[(len(selected) - 1) // 2], selected[-1]])) if selected else []


def resolve_backbones(modality: str, backbones: str | Sequence[str] | None = None) -> list[BackboneConfig]:
    """The backbone configs to rank: every registered one of ``modality`` (``None`` or ``"all"``) or the named ones."""
    if backbones is None or backbones == "all" or (not isinstance(backbones, str) and list(backbones) == ["all"]):
        configs = list_backbones(modality)
        if not configs:
            raise ConfigError(f"no {modality} backbone is registered; see `transferkit backbones`")
        return configs
    names = [b.strip() for b in backbones.split(",")] if isinstance(backbones, str) else [str(b).strip() for b in backbones]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("no backbone named; pass names such as mobilenet_v2,tf_efficientnet_lite0 or 'all'")
    configs: list[BackboneConfig] = []
    for name in names:
        config = get_config(name)
        if config.modality != modality:
            raise DataError(
                f"backbone {config.name!r} takes {config.modality} input but the data is {modality}; "
                f"rank {modality} backbones ({', '.join(c.name for c in list_backbones(modality)) or 'none registered'})"
            )
        if config.name not in {c.name for c in configs}:
            configs.append(config)
    return configs


def make_candidates(
    modality: str,
    backbones: str | Sequence[str] | None = None,
    layers: str | Sequence[str] = "last",
    *,
    controls: bool = True,
    seed: int = 0,
) -> list[Candidate]:
    """Every chosen backbone × selected layer, then the random-init controls (see :func:`control_layers`)."""
    out: list[Candidate] = []
    for config in resolve_backbones(modality, backbones):
        chosen = select_layers(config, layers)
        out += [Candidate(config.name, layer, True, seed) for layer in chosen]
        if controls:
            out += [Candidate(config.name, layer, False, seed) for layer in control_layers(chosen)]
    return out


__all__ = ["LAYER_SETS", "Candidate", "control_layers", "make_candidates", "resolve_backbones", "select_layers",
           "stage_layers"]
