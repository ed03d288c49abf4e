"""The embedding cache key: any feature identity maps to a 32-hex-digit key, deterministically, and no key
string — even one a user types to `cache clear --key` — can name a folder outside the cache."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from transferkit.data.cache import EmbeddingCache  # noqa: E402
from transferkit.exceptions import CacheError  # noqa: E402

EXAMPLES = int(os.environ.get("TK_FUZZ_EXAMPLES", "100"))
IDENTITY = st.dictionaries(st.text(max_size=10), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6),
    max_size=5)


@settings(max_examples=EXAMPLES, deadline=None)
@given(a=IDENTITY, b=IDENTITY)
def test_keys_are_32_hex_deterministic_and_order_free(a: dict, b: dict) -> None:
    key = EmbeddingCache.make_key(a)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert EmbeddingCache.make_key(dict(reversed(list(a.items())))) == key  # key order does not matter
    if a != b:
        assert EmbeddingCache.make_key(b) != key


@settings(max_examples=EXAMPLES, deadline=None)
@given(key=st.one_of(st.text(max_size=40), st.sampled_from(["..", "../..", "/", "/etc", "a/../../b", "", "."])))
def test_no_key_string_leaves_the_cache(key: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("cache")
    outside = root.parent / "keep-me"
    outside.mkdir(exist_ok=True)
    cache = EmbeddingCache(root / "embeddings")
    try:
        d = cache._dir(key)
    except CacheError as exc:
        assert "\n" not in str(exc)
    else:
        assert d.parent == cache.root and re.fullmatch(r"[A-Za-z0-9_-]+", d.name)
    for call in (lambda: cache.clear(key), lambda: cache.lookup(key, [b"0" * 16])):
        try:
            call()
        except CacheError:
            pass
    assert outside.is_dir()


def test_cache_clear_with_a_traversal_key_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from transferkit.cli import app

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("x")
    result = CliRunner().invoke(app, ["cache", "clear", "--key", str(Path("..") / ".." / victim)])
    assert result.exit_code == 2 and "hex digits" in result.stderr
    assert (victim / "precious.txt").exists()


def test_a_full_disk_while_caching_is_a_cache_error_and_leaves_no_shard(tmp_path: Path) -> None:
    """safetensors reports a failed write as its own SafetensorError, not OSError: it must still become the
    one-line CacheError (found by bench/fault_matrix.py, 'predict: disk full while writing predictions')."""
    import resource

    import numpy as np

    cache = EmbeddingCache(tmp_path / "cache")
    key = EmbeddingCache.make_key({"backbone": "x"})
    hashes = [bytes([i]) * 16 for i in range(64)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # writes past 4 KB fail with EFBIG
    try:
        with pytest.raises(CacheError, match="cannot write the embedding cache.*File too large"):
            cache.store(key, hashes, np.ones((64, 256), np.float32), {"backbone": "x"})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert not list((tmp_path / "cache").rglob("shard-*.safetensors"))
