"""Uploads to `transferkit serve` under the pixel budget: a decompression bomb is a 400 naming the upload
and its size (never decoded); the decoded images of one request are bounded in total (413)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from PIL import Image  # noqa: E402

from tests.data.test_image_limits import png_bomb  # noqa: E402
from tests.serving.test_app import image_model, running  # noqa: E402, F401
from transferkit.serving import Predictor, create_app  # noqa: E402


def test_a_bomb_upload_is_refused_by_size_and_one_request_is_bounded_in_total(
        image_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001, F811
    path, _, _ = image_model
    bomb = png_bomb(tmp_path / "bomb.png", 9000, 9000).read_bytes()  # 81 MP in ~80 KB
    buf = io.BytesIO()
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(buf, format="PNG")
    small = buf.getvalue()
    app = create_app(Predictor(path), max_upload_mb=1, max_items=8)
    with running(app) as url:
        r = httpx.post(f"{url}/predict", files={"file": ("bomb.png", bomb, "image/png")})
        assert r.status_code == 400 and "upload 'bomb.png' is 9000x9000 = 81 megapixels" in r.json()["error"]
        monkeypatch.setenv("TRANSFERKIT_MAX_IMAGE_PIXELS", "25000")  # each 100x100 image fits, three do not
        r = httpx.post(f"{url}/predict", files=[("file", (f"{i}.png", small, "image/png")) for i in range(3)])
        assert r.status_code == 413 and "0.025 megapixels in total" in r.json()["error"]
        r = httpx.post(f"{url}/predict", files=[("file", (f"{i}.png", small, "image/png")) for i in range(2)])
        assert r.status_code == 200
