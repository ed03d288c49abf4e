"""Checkpoint files without pickle: tensors in safetensors, everything else in JSON.

A checkpoint directory holds::

    state.json                    the commit point: position, history, config fingerprint, scalars, and the
                                  name of the tensor file it belongs to
    state-e0007.safetensors       every tensor of the state (model, optimizer moments, RNG, best weights)

:func:`save_state` writes a new tensor file first, then ``state.json`` atomically, then deletes older tensor
files; a run killed at any instant leaves either the previous complete checkpoint or the new one, never a
mix. Nested state dictionaries are flattened: each tensor leaf is replaced in the JSON by
``{"__tensor__": "<key>"}`` and stored under that key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .._utils import atomic_path, atomic_write_json
from ..exceptions import ConfigError

STATE_JSON = "state.json"
FORMAT = "transferkit-checkpoint"
FORMAT_VERSION = 1
_TENSOR = "__tensor__"


def split_tensors(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Separate the tensor leaves of a nested dict/list structure from the JSON-able rest."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            tensors[path] = x.detach().cpu().contiguous()
            return {_TENSOR: path}
        if isinstance(x, dict):
            return {str(k): walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(x)]
        return x

    return walk(obj, prefix), tensors


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`split_tensors`."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def save_state(directory: str | os.PathLike[str], state: dict[str, Any], tag: str) -> Path:
    """Write ``state`` (nested dicts of JSON values and tensors) as the directory's current checkpoint."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    doc, tensors = split_tensors(state)
    tensor_file = f"state-{tag}.safetensors"
    # shared or overlapping storage is not allowed by safetensors: give every tensor its own copy
    with atomic_path(directory / tensor_file) as tmp:
        save_file({k: v.clone() for k, v in tensors.items()}, str(tmp), metadata={"format": FORMAT})
    atomic_write_json(directory / STATE_JSON, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                               "tensor_file": tensor_file, "state": doc})
    for old in directory.glob("state-*.safetensors"):
        if old.name != tensor_file:
            old.unlink(missing_ok=True)
    return directory / STATE_JSON


def has_state(directory: str | os.PathLike[str]) -> bool:
    return (Path(directory) / STATE_JSON).is_file()


def load_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the current checkpoint of ``directory`` (see :func:`save_state`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    path = directory / STATE_JSON
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"no checkpoint in {str(directory)!r} to resume from; run without --resume") from exc
    except ValueError as exc:
        raise ConfigError(f"checkpoint {str(path)!r} is not valid JSON ({exc}); delete {str(directory)!r} "
                          "and run without --resume") from exc
    if doc.get("format") != FORMAT or int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise ConfigError(f"{str(path)!r} is not a checkpoint this transferkit can read; delete it and run "
                          "without --resume")
    try:
        tensors = load_file(str(directory / doc["tensor_file"]))
    except (OSError, SafetensorError) as exc:
        raise ConfigError(f"checkpoint tensors {doc['tensor_file']!r} in {str(directory)!r} are missing or corrupt "
                          f"({exc}); delete the directory and run without --resume") from exc
    return join_tensors(doc["state"], tensors)


def clear_state(directory: str | os.PathLike[str]) -> None:
    """Remove the checkpoint files of ``directory`` (and the directory if it is then empty)."""
    directory = Path(directory)
    (directory / STATE_JSON).unlink(missing_ok=True)
    for old in directory.glob("state-*.safetensors"):
        old.unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass
