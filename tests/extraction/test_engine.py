"""Extraction engine: ONNX equals PyTorch, streaming in shards, duplicates, determinism, frozen weights."""

from __future__ import annotations

import numpy as np
import pytest

import transferkit.extraction.engine as extraction
from transferkit.extraction import Extractor


def test_onnx_features_equal_pytorch(tiny_backbone: str, tiny_images) -> None:
    X, _ = tiny_images
    for layer in ("features.0", "last"):
        onnx = Extractor(tiny_backbone, layer, engine="onnx", cache=False)
        ref = Extractor(tiny_backbone, layer, engine="torch", cache=False)
        a, b = onnx.extract(X), ref.extract(X)
        assert onnx.engine_used_ == "onnx" and ref.engine_used_ == "torch"
        assert a.shape == (len(X), onnx.feature_dim)
        assert np.max(np.abs(a - b)) <= 1e-4


def test_auto_engine_prefers_onnx_for_images(tiny_backbone: str, tiny_images) -> None:
    e = Extractor(tiny_backbone, cache=False)
    e.extract(tiny_images[0][:4])
    assert e.engine_used_ == "onnx"


def test_a_verified_onnx_graph_runs_without_building_the_network(tiny_backbone: str, tiny_images,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The first extraction checks the exported graph against PyTorch and records the check next to it; a
    later extractor (a new process, as `predict` is) then runs the graph without building the network. A
    graph that no longer matches its record is checked again."""
    import json

    from transferkit._utils import sha256_file
    from transferkit.backbones import clear_loaded

    X = tiny_images[0][:6]
    first = Extractor(tiny_backbone, cache=False)
    a = first.extract(X)
    marker = first._marker_path()
    assert first.engine_used_ == "onnx" and marker.exists()
    assert json.loads(marker.read_text())["sha256"] == sha256_file(first._onnx_path())
    clear_loaded()
    built: list[str] = []
    real = extraction.load_backbone
    monkeypatch.setattr(extraction, "load_backbone", lambda *args, **kw: built.append("built") or real(*args, **kw))
    second = Extractor(tiny_backbone, cache=False)
    b = second.extract(X)
    assert second.engine_used_ == "onnx" and second._backbone is None and not built
    assert np.max(np.abs(a - b)) <= 1e-6
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "sha256": "0" * 64}))  # graph ≠ record
    third = Extractor(tiny_backbone, cache=False)
    c = third.extract(X)
    assert built and third._backbone is not None and third.engine_used_ == "onnx"
    assert json.loads(marker.read_text())["sha256"] == sha256_file(third._onnx_path())  # checked, recorded again
    assert np.max(np.abs(a - c)) <= 1e-6


def test_broken_onnx_falls_back_to_torch(tiny_backbone: str, tiny_images, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(extraction, "export_feature_onnx", broken)
    e = Extractor(tiny_backbone, engine="auto", cache=False)
    feats = e.extract(tiny_images[0][:4])
    assert e.engine_used_ == "torch" and feats.shape == (4, 8)
    with pytest.raises(RuntimeError, match="exploded"):
        Extractor(tiny_backbone, engine="onnx", cache=False).extract(tiny_images[0][:4])


def test_streaming_in_small_shards_gives_the_same_features(tiny_backbone: str, tiny_images, monkeypatch: pytest.MonkeyPatch) -> None:
    X, _ = tiny_images
    whole = Extractor(tiny_backbone, cache=False, batch_size=64).extract(X)
    monkeypatch.setattr(extraction, "SHARD_SIZE", 7)
    e = Extractor(tiny_backbone, batch_size=3)
    streamed = e.extract(X)
    shards = list((e.cache.root / e.key).glob("shard-*.safetensors"))
    assert len(shards) == -(-len(X) // 7)
    assert np.max(np.abs(whole - streamed)) <= 1e-5


def test_interrupted_extraction_keeps_finished_shards(tiny_backbone: str, tiny_images, monkeypatch: pytest.MonkeyPatch) -> None:
    X, _ = tiny_images
    monkeypatch.setattr(extraction, "SHARD_SIZE", 10)
    e = Extractor(tiny_backbone)
    calls = {"n": 0}
    real = Extractor._run_chunk

    def dies_on_third(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Extractor, "_run_chunk", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        e.extract(X)
    monkeypatch.setattr(Extractor, "_run_chunk", real)
    again = Extractor(tiny_backbone)
    feats = again.extract(X)
    assert again.stats_["cached"] == 20 and again.stats_["computed"] == len(X) - 20
    assert np.max(np.abs(feats - Extractor(tiny_backbone, cache=False).extract(X))) <= 1e-5


def test_duplicates_are_computed_once(tiny_backbone: str, tiny_images) -> None:
    X, _ = tiny_images
    doubled = np.concatenate([X[:5], X[:5]])
    e = Extractor(tiny_backbone)
    feats = e.extract(doubled)
    assert np.array_equal(feats[:5], feats[5:])
    assert [entry.items for entry in e.cache.entries()] == [5]  # five rows computed and stored, not ten


def test_extraction_is_deterministic_and_leaves_weights_untouched(tiny_backbone: str, tiny_images) -> None:
    import torch

    X, _ = tiny_images
    e = Extractor(tiny_backbone, engine="torch", cache=False)
    before = {k: v.clone() for k, v in e.backbone.model.state_dict().items()}
    a, b = e.extract(X), e.extract(X)
    assert np.array_equal(a, b)
    after = e.backbone.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_paths_and_arrays_give_the_same_features(tiny_backbone: str, tmp_path) -> None:
    from PIL import Image

    from tests.conftest import make_images

    X, _ = make_images(4)
    paths = []
    for i, img in enumerate(X):
        p = tmp_path / f"{i}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    e = Extractor(tiny_backbone, cache=False)
    assert np.max(np.abs(e.extract(paths) - e.extract(X))) <= 1e-6


@pytest.mark.parametrize("shape", [(9, 13), (40, 30), (16, 16), (23, 40), (50, 21)])
def test_resize_equals_torchvision_and_grey_images_resize_as_one_channel(tiny_backbone: str, shape) -> None:
    """Images are resized and cropped exactly as torchvision's Resize(S) + CenterCrop(S) do (long side rounded
    down, crop offsets rounded); the grey fast path (resample one channel, repeat it) gives the same bytes.
    The raw-pixel baseline uses the same resize."""
    from PIL import Image
    from torchvision.transforms import CenterCrop, InterpolationMode, Resize

    from transferkit.backbones import load_backbone
    from transferkit.evaluation.baselines import RawPixelClassifier

    backbone = load_backbone(tiny_backbone, image_size=24)
    torchvision_pipeline = [Resize(24, interpolation=InterpolationMode(backbone.config.interpolation)), CenterCrop(24)]
    rng = np.random.default_rng(0)
    grey = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert("RGB")
    colour = Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    for img in (grey, colour):
        want = img
        for step in torchvision_pipeline:
            want = step(want)
        got = backbone.prepare_item(img)
        assert got.dtype == np.uint8 and got.shape == (24, 24, 3)
        np.testing.assert_array_equal(got, np.asarray(want))
        # the raw-pixel baseline resizes with the same arithmetic (bilinear)
        bilinear = CenterCrop(24)(Resize(24, interpolation=InterpolationMode.BILINEAR)(img))
        pixels, _ = RawPixelClassifier(size=24)._pixels([np.asarray(img)], 24, False)
        np.testing.assert_array_equal(pixels.reshape(24, 24, 3), np.asarray(bilinear, dtype=np.float32) / 255.0)


def test_hflip_tta_averages_each_image_with_its_mirror_in_both_engines(tiny_backbone: str, tiny_images,
                                                                         tmp_path) -> None:
    from transferkit.data.cache import EmbeddingCache

    X = tiny_images[0][:12]
    mirror = X[:, :, ::-1].copy()
    plain = Extractor(tiny_backbone, engine="torch", cache=False)
    want = 0.5 * (plain.extract(X) + plain.extract(mirror))
    assert np.max(np.abs(want - plain.extract(X))) > 1e-3  # the stripes and blobs are not mirror-symmetric
    for engine in ("torch", "onnx"):
        tta = Extractor(tiny_backbone, engine=engine, cache=False, tta="hflip")
        got = tta.extract(X)
        assert tta.engine_used_ == engine
        assert np.max(np.abs(got - want)) <= 1e-4
        assert np.max(np.abs(got - tta.extract(mirror))) <= 1e-4  # flip-invariant
    cache = EmbeddingCache(tmp_path / "cache")
    keys = {Extractor(tiny_backbone, cache=cache, tta=t).key for t in ("none", "hflip")}
    assert len(keys) == 2 and Extractor(tiny_backbone, cache=cache).key in keys  # 'none' keeps the old key


def test_tta_errors_name_the_fix(tiny_backbone: str) -> None:
    from transferkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"tta='vflip' is not allowed.*expected one of none, hflip"):
        Extractor(tiny_backbone, tta="vflip")
    with pytest.raises(ConfigError, match=r"tta='hflip' flips images but 'glove-6b-50d' is a text backbone"):
        Extractor("glove-6b-50d", tta="hflip")
