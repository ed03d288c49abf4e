"""The embedding cache's key follows everything that changes the features: mean, std, interpolation and input
size of images, tokenizer files and token limit of text, and the version of the preprocessing code. Each key
below comes from a real config (a changed copy of a registered one), never from a hand-written description,
and each changed setting is also shown to change the features, so a stale cache entry would be served wrong."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import transferkit.data.items as items
from transferkit.backbones import get_config
from transferkit.extraction import Extractor, preprocessing_spec


def _image_extractor(config, **kw) -> Extractor:
    return Extractor(config, engine="torch", cache=False, show_progress=False, **kw)


@pytest.mark.parametrize("change", [
    {"mean": (0.4, 0.5, 0.5)},
    {"std": (0.25, 0.3, 0.25)},
    {"interpolation": "bicubic"},
    {"input_size": 24},
])
def test_image_preprocessing_changes_the_key_and_the_features(tiny_backbone: str, change) -> None:
    base = get_config(tiny_backbone)
    changed = dataclasses.replace(base, **change)
    a, b = _image_extractor(base), _image_extractor(changed)
    assert a.key != b.key
    # the key changed for a reason: the features do too (40 px images shrunk to 32, so the filter matters)
    X = np.random.default_rng(0).integers(0, 256, size=(6, 40, 40, 3), dtype=np.uint8)
    assert not np.allclose(a.extract(X), b.extract(X))


def test_the_same_config_gives_the_same_key(tiny_backbone: str) -> None:
    base = get_config(tiny_backbone)
    assert _image_extractor(base).key == _image_extractor(dataclasses.replace(base)).key == Extractor(tiny_backbone).key


def test_preprocessing_code_version_changes_every_key(tiny_backbone: str, tiny_text_backbone: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    before = [Extractor(tiny_backbone).key, Extractor(tiny_text_backbone).key]
    monkeypatch.setattr(items, "PREPROCESSING_VERSION", items.PREPROCESSING_VERSION + 1)
    after = [Extractor(tiny_backbone).key, Extractor(tiny_text_backbone).key]
    assert before[0] != after[0] and before[1] != after[1]


def test_text_max_length_changes_the_key_and_the_features(tiny_text_backbone: str) -> None:
    base = get_config(tiny_text_backbone)
    short = dataclasses.replace(base, max_length=4)
    a = Extractor(base, cache=False, engine="torch", show_progress=False)
    b = Extractor(short, cache=False, engine="torch", show_progress=False)
    assert a.key != b.key
    texts = ["the movie was good and great and lovely", "the film is bad"]
    assert not np.allclose(a.extract(texts), b.extract(texts))


def test_tokenizer_files_change_the_key_and_the_features(tiny_text_backbone: str, tmp_path: Path) -> None:
    """Same network weights (model.safetensors unchanged), another vocabulary: another key."""
    base = get_config(tiny_text_backbone)
    source = Path(base.weights.local_path)
    other = tmp_path / "other-tokenizer"
    shutil.copytree(source, other)
    if (other / "tokenizer.json").exists():  # transformers 5 saves the vocabulary there
        spec = json.loads((other / "tokenizer.json").read_text())
        vocab = spec["model"]["vocab"]
        words = sorted((w for w, i in vocab.items() if i >= 5), key=vocab.get)
        vocab.update({w: i for w, i in zip(words, sorted(vocab[w] for w in words)[::-1], strict=True)})
        (other / "tokenizer.json").write_text(json.dumps(spec))
    else:
        vocab = (other / "vocab.txt").read_text().splitlines()
        (other / "vocab.txt").write_text("\n".join(vocab[:5] + vocab[5:][::-1]) + "\n")  # same words, other ids
    a = Extractor(tiny_text_backbone, cache=False, engine="torch", show_progress=False)
    b = Extractor(tiny_text_backbone, weights=other, cache=False, engine="torch", show_progress=False)
    assert a.identity()["weights"] == b.identity()["weights"]
    assert a.key != b.key
    texts = ["the movie was good", "the film is bad"]
    assert not np.allclose(a.extract(texts), b.extract(texts))


def test_a_loaded_text_backbone_keys_like_its_name(tiny_text_backbone: str) -> None:
    """An extractor given the loaded network (as fine-tuning does) finds the tokenizer files it was built
    from, so it shares the key of the extractor built from the registry name."""
    from transferkit.backbones import load_backbone

    assert Extractor(load_backbone(tiny_text_backbone)).key == Extractor(tiny_text_backbone).key


def test_spec_reads_the_config() -> None:
    cfg = get_config("mobilenet_v2")
    spec = preprocessing_spec(cfg, None)
    assert spec["mean"] == list(cfg.mean) and spec["std"] == list(cfg.std)
    assert spec["interpolation"] == cfg.interpolation and spec["size"] == cfg.input_size
    assert spec["code_version"] == items.PREPROCESSING_VERSION
