"""Backbones a user registers (``transferkit backbones add NAME --arch resnet50 --weights FILE``).

Kept in ``<config>/backbones.json`` (``$TRANSFERKIT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/transferkit`` or
``~/.config/transferkit``), written atomically. Each entry records the architecture, the absolute path of
the weights file (or Hugging Face directory), its sha256 and any preprocessing override; the config is
rebuilt from them, so a later command can say ``--backbone NAME``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .._utils import atomic_write_json
from ..exceptions import ConfigError
from .config import BackboneConfig, check_name

log = logging.getLogger(__name__)

CONFIG_ENV = "TRANSFERKIT_CONFIG_DIR"
HF_ARCH = "hf"


def config_dir() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "transferkit"


def registry_file() -> Path:
    return config_dir() / "backbones.json"


def read_entries() -> dict[str, dict[str, Any]]:
    path = registry_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    return data.get("backbones", {}) if isinstance(data, dict) else {}


def write_entries(entries: dict[str, dict[str, Any]]) -> None:
    atomic_write_json(registry_file(), {"format": 1, "backbones": entries})


def entry_config(name: str, entry: dict[str, Any]) -> BackboneConfig:
    """Rebuild a registered backbone's config from its entry."""
    from .dynamic import arch_config, find_architecture, hf_config

    check_name(name)
    arch = str(entry.get("arch", ""))
    if arch == HF_ARCH:
        config = hf_config(name, entry["weights"])
        import dataclasses

        return dataclasses.replace(config, description=f"registered: {config.description}")
    found = find_architecture(arch)
    if found is None:
        raise ConfigError(f"registered backbone {name!r} names an unknown architecture {arch!r}")
    return arch_config(name, *found, weights=entry.get("weights"), sha256=str(entry.get("sha256", "")),
                       input_size=entry.get("input_size"), mean=entry.get("mean"), std=entry.get("std"),
                       description=f"registered: {found[0]} {found[1]} from {entry.get('weights')}")


def make_entry(arch: str, weights: str | os.PathLike[str], input_size: int | None = None,
               mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> dict[str, Any]:
    from .weights import file_sha256

    path = Path(weights).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"--weights {str(weights)!r} does not exist; pass the weights file (or model directory)")
    entry: dict[str, Any] = {"arch": arch, "weights": str(path)}
    if arch != HF_ARCH:
        if not path.is_file():
            raise ConfigError(f"--weights {str(weights)!r} is a directory; an {arch} needs a weights file "
                              "(use --arch hf for a Hugging Face directory)")
        entry["sha256"] = file_sha256(path)
    for key, value, n in (("mean", mean, 3), ("std", std, 3)):
        if value is not None:
            if len(value) != n or (key == "std" and min(value) <= 0):
                raise ConfigError(f"--{key} {value!r} must be three numbers (0..1 scale){', all > 0' if key == 'std' else ''}")
            entry[key] = [float(v) for v in value]
    if input_size is not None:
        if int(input_size) < 16:
            raise ConfigError(f"--input-size {input_size} is too small; use at least 16 pixels")
        entry["input_size"] = int(input_size)
    return entry
