"""Embedding cache: round trip, atomic writes, corrupt shards, reruns served from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transferkit.data.cache import EmbeddingCache
from transferkit.extraction import Extractor


def _hashes(n: int, salt: bytes = b"") -> list[bytes]:
    import hashlib

    return [hashlib.sha256(salt + str(i).encode()).digest()[:16] for i in range(n)]


def test_store_then_lookup_round_trips(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    feats = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    hashes = _hashes(10)
    cache.store("k", hashes[:6], feats[:6], {"backbone": "x"})
    cache.store("k", hashes[6:], feats[6:], {"backbone": "x"})
    fresh = EmbeddingCache(tmp_path)  # a new process sees the same content
    out, found = fresh.lookup("k", hashes[::-1] + _hashes(2, b"other"))
    assert found.tolist() == [True] * 10 + [False, False]
    assert np.array_equal(out[:10], feats[::-1])
    assert fresh.entries()[0].items == 10 and fresh.entries()[0].meta["identity"] == {"backbone": "x"}


def test_a_killed_write_leaves_nothing_that_is_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.numpy as stn

    cache = EmbeddingCache(tmp_path)
    real_save = stn.save_file

    def dies_half_way(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        real_save(tensors, filename, metadata=metadata)
        data = Path(filename).read_bytes()
        Path(filename).write_bytes(data[: len(data) // 2])  # half a file on disk …
        raise KeyboardInterrupt  # … and the process is interrupted

    monkeypatch.setattr(stn, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        cache.store("k", _hashes(3), np.ones((3, 2), np.float32), {})
    monkeypatch.undo()
    assert list((tmp_path / "k").glob("shard-*")) == []
    assert list((tmp_path / "k").glob(".*tmp")) == []
    out, found = EmbeddingCache(tmp_path).lookup("k", _hashes(3))
    assert not found.any()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_shards_are_dropped_not_served(tmp_path: Path, damage: str) -> None:
    cache = EmbeddingCache(tmp_path)
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    path = cache.store("k", _hashes(4), feats, {})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 7]
    else:
        data[-5] ^= 0xFF  # one flipped bit pattern inside the feature values
    path.write_bytes(bytes(data))
    out, found = EmbeddingCache(tmp_path).lookup("k", _hashes(4))
    assert not found.any()
    assert not path.exists()


def test_cache_clear(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.store("a", _hashes(2), np.ones((2, 2), np.float32), {})
    cache.store("b", _hashes(2), np.ones((2, 2), np.float32), {})
    assert cache.clear("a") > 0 and [e.key for e in cache.entries()] == ["b"]
    assert cache.clear() > 0 and cache.entries() == []


def test_rerun_and_second_head_read_from_cache(tiny_backbone: str, tiny_images, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = tiny_images
    first = Extractor(tiny_backbone)
    f1 = first.extract(X)
    assert first.stats_ == {"items": len(X), "cached": 0, "computed": len(X)}
    again = Extractor(tiny_backbone)
    monkeypatch.setattr(Extractor, "runner", lambda self: pytest.fail("the network ran on a cached rerun"))
    f2 = again.extract(X)
    assert again.stats_["cached"] == len(X)
    assert np.array_equal(f1, f2)
    # a different layer or image size is a different cache entry, not a wrong hit
    assert Extractor(tiny_backbone, "features.0").key != again.key
    assert Extractor(tiny_backbone, image_size=48).key != again.key


def test_cache_key_tracks_the_weights(tiny_backbone: str, tiny_weights: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_weights))
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in state.items()}
    other = tmp_path / "other.safetensors"
    save_file(state, str(other))
    assert Extractor(tiny_backbone, weights=other).key != Extractor(tiny_backbone).key
    assert Extractor(tiny_backbone, pretrained=False).key != Extractor(tiny_backbone).key
    assert torch.is_tensor(next(iter(state.values())))
