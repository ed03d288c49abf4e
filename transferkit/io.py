"""The model folder: written as a whole and atomically, read back with its integrity checked, never pickled.

A model folder holds::

    model.json          format version, estimator parameters, backbone config, classes, the strategy's state
    *.safetensors       tensors (the head's arrays; a trained network's weights)
    manifest.json       every other file with its sha256 and size, and the transferkit version
    results.json, report.html    (written by ``transferkit fit`` next to the model)

:func:`write_folder` writes everything into a temporary sibling folder and swaps it into place in one step
(``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames), so a killed or failed write leaves the old
folder intact, or nothing. :func:`read_model` verifies the manifest (a changed, missing or extra tensor file
is named) and reads only JSON and safetensors. This module knows the folder's format, not the estimators
or strategies that fill it; folders written before the strategy registry (format 1) are upgraded in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from . import __version__
from ._utils import _FILE_MODE, _json_default, _write_failed, sha256_bytes, sha256_file
from .exceptions import ModelFileError

FORMAT = "transferkit-model"
FORMAT_VERSION = 2
MODEL_JSON = "model.json"
MANIFEST = "manifest.json"
#: files transferkit writes into an output folder; anything else found there is the user's and is kept
#: out of harm's way by refusing the folder (see :func:`check_output_folder`)
OWN_NAMES = re.compile(r"^(model\.json|manifest\.json|results\.json|report\.html|[A-Za-z0-9_.-]+\.safetensors|checkpoint)$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that ``path`` can become a model folder: it is a new path or a folder
    holding only files transferkit writes. Raises :class:`ModelFileError` with the fix."""
    out = Path(path)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == out else f"is under {str(parent)!r}, which is a file"
            raise ModelFileError(f"output folder {str(out)!r} {where}; choose a folder path (e.g. --out model/)")
        if parent.exists():
            break
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not OWN_NAMES.fullmatch(p.name) and not p.name.startswith("."))
        if foreign:
            listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ModelFileError(f"output folder {str(out)!r} already holds files that transferkit did not write "
                                 f"({listed}); choose a new or empty folder, since the folder is replaced as a whole")
    probe = out if out.is_dir() else next(p for p in out.parents if p.exists())
    if not os.access(probe, os.W_OK):
        raise ModelFileError(f"cannot write to {str(probe)!r} (permission denied); choose another --out folder")
    return out


def _check_name(name: str) -> str:
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ModelFileError(f"file name {name!r} in a model folder must be a plain name (letters, digits, '_', '.', "
                             "'-'; no path separators or '..')")
    return name


def _save_tensors(path: Path, tensors: dict[str, Any]) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    arrays = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):  # a torch tensor
            v = v.detach().cpu().contiguous().numpy()
        arrays[k] = np.ascontiguousarray(v)
    save_file(arrays, str(path), metadata={"format": FORMAT})


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_folder(path: str | os.PathLike[str], doc: dict[str, Any], tensors: dict[str, dict[str, Any]],
                 texts: dict[str, str] | None = None) -> Path:
    """Write a model folder as one step: ``model.json`` (``doc``), one safetensors file per entry of
    ``tensors`` (file name → name → array), the ``texts`` (file name → content, e.g. ``results.json``) and
    the manifest, into a temporary sibling that then replaces ``path`` whole."""
    out = check_output_folder(path)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        _write_into(tmp, out, doc, tensors, texts)
    except OSError as exc:  # disk full, permissions ...: one line, and the old folder is as it was
        raise _write_failed(out, exc, "the previous model folder there is intact") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_into(tmp: Path, out: Path, doc: dict[str, Any], tensors: dict[str, dict[str, Any]],
                texts: dict[str, str] | None) -> None:
    for name, arrays in tensors.items():
        _save_tensors(tmp / _check_name(name), arrays)
    model_text = json.dumps(doc, indent=2, sort_keys=True, default=_json_default) + "\n"
    (tmp / MODEL_JSON).write_text(model_text, encoding="utf-8")
    for name, text in (texts or {}).items():
        (tmp / _check_name(name)).write_text(text, encoding="utf-8")
    manifest = {"format": FORMAT, "transferkit_version": __version__,
                "files": {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                          for name in sorted([*tensors, *(texts or {}), MODEL_JSON])}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for f in tmp.iterdir():
        os.chmod(f, _FILE_MODE)
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(tmp)
    if not out.exists():
        os.replace(tmp, out)
    elif _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # after the swap, tmp holds the old folder
    else:  # two renames: between them the old folder sits at a sibling name, intact
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(out.parent)


def read_model_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``model.json`` of a model folder, checked to be one (format and version), upgraded to the current
    layout in memory."""
    d = Path(path)
    meta_path = d / MODEL_JSON
    if not d.exists():
        raise ModelFileError(f"model directory {str(d)!r} does not exist; pass the --out folder of `transferkit fit`")
    if not meta_path.is_file():
        raise ModelFileError(f"{str(d)!r} has no model.json; it is not a transferkit model directory (or is incomplete)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{str(meta_path)!r} is not valid JSON ({exc}); the model directory is corrupt") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{str(meta_path)!r} is not a transferkit model file")
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{str(meta_path)!r} has no valid format_version; the model directory is corrupt")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"model {str(d)!r} uses format version {version}, newer than this transferkit "
                             f"({FORMAT_VERSION}); upgrade transferkit")
    return _upgrade_v1(doc) if version == 1 else doc


def _upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A format-1 ``model.json`` (before the strategy registry) in the current layout."""
    try:
        params = dict(doc["params"])
        state: dict[str, Any] = {"head": doc["head"], "layer": doc["layer"], "weights_id": doc["weights_id"],
                                 "n_features": doc["n_features"]}
        if doc.get("fine_tune"):
            ft = dict(doc["fine_tune"])
            state["history"] = ft.pop("history", None)
            state["network"] = ft
        return {**doc, "format_version": FORMAT_VERSION, "params": params,
                "strategy": {"name": params.get("strategy") or "feature-extraction", "state": state},
                "legacy_format": 1}
    except (KeyError, TypeError) as exc:
        raise ModelFileError(f"model.json (format 1) lacks {exc}; the model directory is corrupt; re-save the model "
                             "with this transferkit (fit it again, or load it with the version that wrote it and "
                             "save it again)") from exc


def _verify_manifest(d: Path) -> dict[str, Any]:
    path = d / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        listed = manifest["files"] if isinstance(manifest, dict) else None
        if not isinstance(listed, dict) or not all(isinstance(e, dict) for e in listed.values()):
            raise ValueError("no 'files' table")
    except FileNotFoundError as exc:
        raise ModelFileError(f"{str(d)!r} has no manifest.json; the model folder is incomplete or was altered "
                             "(fit or save it again)") from exc
    except (ValueError, KeyError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{str(path)!r} is not a valid manifest; the model folder is corrupt") from exc
    for name, entry in listed.items():
        f = d / _check_name(str(name))
        if not f.is_file():
            raise ModelFileError(f"{str(f)!r} is listed in the manifest but missing; the model folder is incomplete")
        want = entry.get("sha256") if isinstance(entry, dict) else None
        if sha256_file(f) != want:
            raise ModelFileError(f"{str(f)!r} differs from the file the model was saved with (sha256 mismatch); "
                                 "the model folder was altered or corrupted")
    return manifest


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(model.json, tensors)`` of a model folder: the manifest verified first (format 2), then every
    listed safetensors file read as numpy arrays (file name → name → array). No pickle, no code."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    d = Path(path)
    doc = read_model_json(d)
    if doc.get("legacy_format") == 1:
        names = sorted(p.name for p in d.iterdir() if p.suffix == ".safetensors")
    else:
        manifest = _verify_manifest(d)
        if sha256_bytes((d / MODEL_JSON).read_bytes()) != manifest["files"].get(MODEL_JSON, {}).get("sha256"):
            raise ModelFileError(f"{str(d / MODEL_JSON)!r} is not listed in the manifest; the model folder was altered")
        names = sorted(n for n in manifest["files"] if n.endswith(".safetensors"))
    tensors: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            tensors[name] = load_file(str(d / _check_name(name)))
        except (OSError, SafetensorError) as exc:
            raise ModelFileError(f"cannot read {str(d / name)!r} ({exc}); the model directory is corrupt") from exc
    return doc, tensors


def classes_to_json(classes: Any) -> dict[str, Any]:
    kind = classes.dtype.kind
    if kind in ("i", "u"):
        return {"dtype": "int", "values": [int(c) for c in classes]}
    if kind == "b":
        return {"dtype": "bool", "values": [bool(c) for c in classes]}
    if kind == "f":
        return {"dtype": "float", "values": [float(c) for c in classes]}
    return {"dtype": "str", "values": [str(c) for c in classes]}


def classes_from_json(data: dict[str, Any]) -> Any:
    import numpy as np

    dtypes = {"int": np.int64, "bool": bool, "float": np.float64, "str": str}
    try:
        return np.asarray(data["values"], dtype=dtypes[data["dtype"]])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"model.json's classes are malformed ({exc}); the model directory is corrupt") from exc
