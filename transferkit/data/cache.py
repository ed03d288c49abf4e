"""On-disk embedding cache.

Layout under ``<cache root>/embeddings/``::

    <key>/meta.json                 what produced the features (backbone, weights sha256, preprocessing, layer)
    <key>/shard-<sha>.safetensors   tensors ``hashes`` (n, 16) uint8 and ``features`` (n, D) float32

``key`` is a hash of the feature identity (backbone + weights hash + preprocessing + layer); each row is
keyed by the 16-byte content hash of its item. Shards are written to a temporary file and renamed, so a
killed run leaves either a complete shard or none; each shard carries a sha256 of its tensors in its
metadata and a shard that fails the check (truncated, bit-flipped) is deleted instead of served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path, atomic_write_json, cache_root, sha256_json
from ..exceptions import CacheError

log = logging.getLogger(__name__)

HASH_BYTES = 16


_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # make_key gives 32 hex digits; never a separator or a dot


def _checksum(hashes: np.ndarray, features: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(hashes).tobytes())
    h.update(np.ascontiguousarray(features).tobytes())
    return h.hexdigest()


@dataclass
class CacheEntry:
    key: str
    path: Path
    meta: dict[str, Any]
    items: int
    bytes: int


class EmbeddingCache:
    """Content-addressed store of feature vectors, safe against partial writes."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "embeddings"
        # per key: {shard file name: hashes array}, refreshed when the directory listing changes
        self._index: dict[str, dict[str, np.ndarray]] = {}

    @staticmethod
    def make_key(identity: dict[str, Any]) -> str:
        return sha256_json(identity)[:32]

    def _dir(self, key: str) -> Path:
        """The entry's folder: a direct child of the root, whatever ``key`` holds (a key is a plain name, 32
        hex digits from :meth:`make_key`; ``../..`` given to ``cache clear --key`` is refused before any path
        is built)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise CacheError(f"no cache entry {key!r}; a key is a name like the 32 hex digits `transferkit cache info` "
                             "lists")
        return self.root / key

    def _shards(self, key: str) -> list[Path]:
        d = self._dir(key)
        return sorted(d.glob("shard-*.safetensors")) if d.is_dir() else []

    def _load_index(self, key: str) -> dict[str, np.ndarray]:
        from safetensors import safe_open

        index = self._index.setdefault(key, {})
        shards = self._shards(key)
        names = {p.name for p in shards}
        for stale in set(index) - names:
            del index[stale]
        for path in shards:
            if path.name in index:
                continue
            try:
                with safe_open(str(path), framework="numpy") as fh:
                    index[path.name] = fh.get_tensor("hashes")
            except Exception as exc:  # safetensors raises its own error types for truncated headers
                self._discard(path, f"unreadable ({type(exc).__name__})")
        return index

    def _discard(self, path: Path, why: str) -> None:
        log.warning("embedding cache: dropping %s: %s", path, why)
        self._index.get(path.parent.name, {}).pop(path.name, None)
        try:
            path.unlink()
        except OSError:
            pass

    def lookup(self, key: str, hashes: Sequence[bytes], dim: int | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        """Return ``(features, found)``: rows for the hashes found (others zero) and a boolean mask."""
        from safetensors.numpy import load_file

        n = len(hashes)
        found = np.zeros(n, dtype=bool)
        index = self._load_index(key)
        if not index or n == 0:
            return None, found
        wanted: dict[bytes, list[int]] = {}
        for i, h in enumerate(hashes):
            wanted.setdefault(h, []).append(i)
        out: np.ndarray | None = None
        for name, shard_hashes in list(index.items()):
            rows = [r for r, h in enumerate(shard_hashes) if (hb := h.tobytes()) in wanted and not found[wanted[hb][0]]]
            if not rows:
                continue
            path = self._dir(key) / name
            try:
                tensors = load_file(str(path))
                meta = _read_metadata(path)
            except Exception as exc:
                self._discard(path, f"unreadable ({type(exc).__name__})")
                continue
            feats, shard_h = tensors.get("features"), tensors.get("hashes")
            if feats is None or shard_h is None or meta.get("sha256") != _checksum(shard_h, feats):
                self._discard(path, "checksum mismatch")
                continue
            if dim is not None and feats.shape[1] != dim:
                self._discard(path, f"feature dim {feats.shape[1]} != {dim}")
                continue
            if out is None:
                out = np.zeros((n, feats.shape[1]), dtype=np.float32)
            for r in rows:
                for i in wanted[shard_h[r].tobytes()]:
                    out[i] = feats[r]
                    found[i] = True
        return out, found

    def store(self, key: str, hashes: Sequence[bytes], features: np.ndarray, identity: dict[str, Any]) -> Path:
        """Write one shard atomically (and ``meta.json`` the first time)."""
        from safetensors import SafetensorError
        from safetensors.numpy import save_file

        if len(hashes) != len(features):
            raise CacheError(f"{len(hashes)} hashes for {len(features)} feature rows")
        d = self._dir(key)
        try:
            d.mkdir(parents=True, exist_ok=True)
            meta_path = d / "meta.json"
            if not meta_path.exists():
                atomic_write_json(meta_path, {"identity": identity, "created": time.time()})
            hash_arr = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), HASH_BYTES)
            feats = np.ascontiguousarray(features, dtype=np.float32)
            digest = _checksum(hash_arr, feats)
            path = d / f"shard-{digest[:24]}.safetensors"
            with atomic_path(path) as tmp:
                save_file(
                    {"hashes": hash_arr, "features": feats},
                    str(tmp),
                    metadata={"sha256": digest, "count": str(len(hashes))},
                )
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk as SafetensorError
            reason = getattr(exc, "strerror", None) or str(exc)
            raise CacheError(
                f"cannot write the embedding cache at {str(d)!r} ({reason}); "
                "free disk space, set TRANSFERKIT_CACHE_DIR to a writable directory, or disable the cache"
            ) from exc
        self._index.setdefault(key, {})[path.name] = hash_arr
        return path

    def entries(self) -> list[CacheEntry]:
        out = []
        if not self.root.is_dir():
            return out
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, ValueError):
                meta = {}
            items = 0
            size = 0
            for shard in d.glob("shard-*.safetensors"):
                size += shard.stat().st_size
                try:
                    items += int(_read_metadata(shard).get("count", 0))
                except Exception:
                    pass
            out.append(CacheEntry(key=d.name, path=d, meta=meta, items=items, bytes=size))
        return out

    def clear(self, key: str | None = None) -> int:
        """Delete one entry (or all); return the number of bytes freed."""
        targets = [self._dir(key)] if key else ([p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else [])
        freed = 0
        for d in targets:
            if not d.exists():
                raise CacheError(f"no cache entry {key!r}; see `transferkit cache info` for the keys")
            freed += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
            shutil.rmtree(d, ignore_errors=True)
            self._index.pop(d.name, None)
        return freed


def _read_metadata(path: Path) -> dict[str, str]:
    """Read the ``__metadata__`` of a safetensors file from its header alone."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise CacheError(f"{path} is truncated")
        n = int.from_bytes(head, "little")
        if n <= 0 or n > 100_000_000:
            raise CacheError(f"{path} has a corrupt header")
        header = json.loads(fh.read(n))
    return dict(header.get("__metadata__", {}))
