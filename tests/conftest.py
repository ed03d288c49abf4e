"""Shared fixtures: an isolated cache, seeded RNGs, a tiny CNN backbone and tiny learnable datasets.

The tiny backbone ``tiny-cnn`` is a 2-block SmallCNN with 4 and 8 channels at 32 px whose "pretrained"
weights are a seeded random initialisation saved to a safetensors file: it runs the whole weights path
(file → sha256 → strict load) in milliseconds. Its random features are enough to separate the synthetic
stripe/blob images below.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TRANSFERKIT_PROGRESS", "0")


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own embedding cache and never pip-installs anything unless it asks to."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("TRANSFERKIT_CACHE_DIR", str(cache))
    monkeypatch.setenv("TRANSFERKIT_CONFIG_DIR", str(cache / "config"))  # backbones a test registers stay in it
    if not os.environ.get("TRANSFERKIT_TEST_ALLOW_INSTALL"):
        monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", os.environ.get("TRANSFERKIT_AUTO_INSTALL", "0"))
    random.seed(0)
    np.random.seed(0)
    import torch

    torch.manual_seed(0)


TINY_NAME = "tiny-cnn"
TINY_SIZE = 32


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test: tiny networks train faster on one than on two, and are immune to other
    jobs competing for the cores (OpenMP threads spin-wait under contention)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from safetensors.torch import save_file

    from transferkit.backbones.vision import SmallCNN

    torch.manual_seed(1234)
    model = SmallCNN(widths=(4, 8), num_classes=5)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_backbone(tiny_weights: Path) -> str:
    """Register ``tiny-cnn`` once per session and return its name."""
    return register_tiny_backbone(tiny_weights)


def register_tiny_backbone(tiny_weights: Path) -> str:
    """Register ``tiny-cnn`` with the weights file ``tiny_weights`` (also in spawned worker processes)."""
    from transferkit._utils import sha256_file
    from transferkit.backbones import BACKBONES, BackboneConfig, WeightsSource, register_backbone

    if TINY_NAME not in BACKBONES:
        register_backbone(
            BackboneConfig(
                name=TINY_NAME,
                family="smallcnn",
                architecture="smallcnn",
                modality="image",
                description="tiny test CNN",
                weights=WeightsSource(sha256=sha256_file(tiny_weights), local_path=str(tiny_weights), license="MIT"),
                layers={"features.0": 4, "features.1": 8},
                blocks=("features.0", "features.1"),
                input_size=TINY_SIZE,
                mean=(0.5, 0.5, 0.5),
                std=(0.25, 0.25, 0.25),
                num_source_classes=5,
                license="MIT",
                extra={"widths": [4, 8]},
            )
        )
    return TINY_NAME


def make_images(n_per_class: int = 20, size: int = TINY_SIZE, seed: int = 0, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic grey images: horizontal stripes, vertical stripes, a bright blob — plus noise.

    Returns uint8 images (N, size, size) and integer labels (N,), classes interleaved.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for _ in range(n_per_class):
        for c in range(n_classes):
            phase = rng.uniform(0, 2 * np.pi)
            period = rng.uniform(4, 8)
            if c == 0:
                base = np.sin(2 * np.pi * yy / period + phase)
            elif c == 1:
                base = np.sin(2 * np.pi * xx / period + phase)
            else:
                cy, cx = rng.uniform(size * 0.3, size * 0.7, size=2)
                base = 2 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 6) ** 2)) - 1
            img = 127.5 + 90 * base + rng.normal(0, 20, size=(size, size))
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(c)
    return np.stack(images), np.asarray(labels)


@pytest.fixture
def tiny_images() -> tuple[np.ndarray, np.ndarray]:
    return make_images()


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A folder with class subfolders of PNG files (mixed modes: grey, RGB, RGBA, palette)."""
    from PIL import Image

    X, y = make_images(n_per_class=10)
    names = ["horizontal", "vertical", "blob"]
    root = tmp_path / "photos"
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        d = root / names[label]
        d.mkdir(parents=True, exist_ok=True)
        im = Image.fromarray(img, mode="L")
        mode = ["L", "RGB", "RGBA", "P"][i % 4]
        im = im.convert(mode)
        im.save(d / f"img_{i:03d}.png")
    return root


# -- text: a tiny random BERT with a word-level vocabulary -------------------------------------------

POS = "good great fine nice lovely superb".split()
NEG = "bad awful poor dull boring weak".split()


@pytest.fixture(scope="session")
def tiny_text_backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register ``tiny-bert`` once per session (a random 2-layer BERT, 16 wide, word-level vocabulary of the
    words below; its directory holds vocab.txt, the tokenizer config and model.safetensors)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from transferkit._utils import sha256_file
    from transferkit.backbones import BACKBONES, BackboneConfig, WeightsSource, register_backbone

    name = "tiny-bert"
    if name not in BACKBONES:
        d = tmp_path_factory.mktemp("tiny-bert")
        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *POS, *NEG, "the", "movie", "was", "is", "a", "film"]
        vocab = {w: i for i, w in enumerate(words)}
        try:
            tokenizer = BertTokenizer(vocab=vocab)
        except TypeError:  # transformers 4: a vocabulary file
            (d / "vocab.txt").write_text("\n".join(words) + "\n")
            tokenizer = BertTokenizer(vocab_file=str(d / "vocab.txt"))
        tokenizer.save_pretrained(str(d))
        config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=64)
        torch.manual_seed(0)
        BertModel(config).save_pretrained(str(d))
        layers = {"embeddings": 16, "encoder.layer.0": 16, "encoder.layer.1": 16}
        register_backbone(BackboneConfig(
            name=name, family="transformers", architecture="bert", modality="text", description="tiny test BERT",
            weights=WeightsSource(sha256=sha256_file(d / "model.safetensors"), local_path=str(d), is_directory=True,
                                  main_file="model.safetensors", license="MIT"),
            layers=layers, blocks=tuple(layers), max_length=32, license="MIT"))
    return name


def make_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` short reviews, alternately positive ("fresh") and negative ("rotten") words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        words = POS if i % 2 == 0 else NEG
        texts.append(f"the {rng.choice(['movie', 'film'])} was {rng.choice(words)} and {rng.choice(words)}")
        labels.append("fresh" if i % 2 == 0 else "rotten")
    return texts, np.asarray(labels)


def run_cli(*args: object) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``transferkit ARGS`` run in this process; an exception that is not
    the command's own exit is raised, so a traceback fails the test instead of passing as a non-zero code."""
    from typer.testing import CliRunner

    from transferkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def run_onnx(path: str | os.PathLike[str], feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The first output of an exported graph, run by a fresh onnxruntime session (not the exporter's)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in session.get_inputs()) == sorted(feeds), [i.name for i in session.get_inputs()]
    return session.run(None, feeds)[0]
