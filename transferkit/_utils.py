"""Small shared helpers: atomic file writes, hashing, seeding, the cache root, progress bars."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "TRANSFERKIT_CACHE_DIR"


def _file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def cache_root() -> Path:
    """The directory holding embeddings, exported ONNX graphs and hash records.

    ``$TRANSFERKIT_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/transferkit`` or ``~/.cache/transferkit``.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "transferkit"


def onnx_dir() -> Path:
    """Where exported ONNX feature graphs (``<key>.onnx``) and the records of their checks are kept."""
    return cache_root() / "onnx"


def onnx_files(key: str | None = None) -> list[Path]:
    """The files in :func:`onnx_dir` (of one cache key, or all of them)."""
    d = onnx_dir()
    if not d.is_dir():
        return []
    return sorted(f for f in d.iterdir() if f.is_file() and (key is None or f.name.split(".")[0] == key))


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """Check, before any work, that ``path`` can become an output file: not a folder, not under a file,
    in a writable folder. Raises :class:`~transferkit.exceptions.OutputError` naming ``flag`` and the fix."""
    from .exceptions import OutputError

    out = Path(path).expanduser()
    if out.is_dir():
        raise OutputError(f"{flag} {str(out)!r} is a folder; name a file in it, e.g. {flag} {str(out / 'out')!r}")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{flag} {str(out)!r} is under {str(parent)!r}, which is a file; choose another path")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write {flag} {str(out)!r}: {str(parent)!r} is not writable (permission "
                                  "denied); choose another path")
            break
    return out


def _write_failed(path: Path, exc: OSError, what: str = "the previous file is unchanged") -> Exception:
    from .exceptions import OutputError, TransferKitError

    if isinstance(exc, TransferKitError):
        return exc
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"could not write {str(path)!r} ({reason}); {what}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the same directory; move it onto ``path`` only if the block succeeds.

    A reader never sees a half-written file: either the old content, or the complete new one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_failed(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _FILE_MODE)  # mkstemp creates 0600; finished files get the usual permissions
        os.replace(tmp_path, path)
    except OSError as exc:  # disk full, a folder in the way ...: the old file stays, the error is one line
        raise _write_failed(path, exc) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=_json_default).encode("utf-8"))


def progress(iterable: Any = None, *, total: int | None = None, desc: str = "", enabled: bool = True) -> Any:
    """A tqdm progress bar on stderr that disappears when ``enabled`` is false or stderr is not a TTY
    and ``TRANSFERKIT_PROGRESS`` is not ``1``."""
    from tqdm.auto import tqdm

    force = os.environ.get("TRANSFERKIT_PROGRESS")
    disable = not enabled or force == "0" or (force != "1" and None)
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
