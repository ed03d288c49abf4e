"""Decompression bombs: an image declaring more pixels than the budget is refused from its header with a
one-line error naming the file (never Pillow's DecompressionBombError traceback, never a gigabyte decode);
a large JPEG decodes at reduced scale instead."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from transferkit.data.items import MAX_IMAGE_PIXELS, ImagePaths, read_image
from transferkit.exceptions import ConfigError, ImageReadError


def png_bomb(path: Path, width: int, height: int, valid: bool = True) -> Path:
    """A grey PNG of ``width`` x ``height`` zeros: a few KB on disk however many pixels it declares
    (``valid=False``: the pixel data is cut short — only the header matters to the check)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(z.compress(row) for _ in range(height if valid else 1)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_bomb_under_pillows_limit_is_refused_by_ours_before_decoding(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png", 9000, 9000)  # 81 MP: Pillow would not even warn
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ImageReadError, match=r"bomb.png.*9000x9000 = 81 megapixels, over the limit of 64"):
        read_image(bomb)
    assert ImagePaths([bomb]).pixel_size(0) == (9000, 9000)  # the header alone, nothing decoded


def test_a_bomb_over_pillows_limit_is_a_one_line_error_not_a_traceback(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "huge.png", 40000, 40000, valid=False)  # 1.6 GP: Pillow's own error
    for call in (lambda: read_image(bomb), lambda: ImagePaths([bomb]).pixel_size(0)):
        with pytest.raises(ImageReadError, match="huge.png") as info:
            call()
        assert "\n" not in str(info.value)


def test_the_budget_is_configurable_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "small.png"
    Image.new("RGB", (200, 100)).save(img)
    assert read_image(img).size == (200, 100)
    monkeypatch.setenv("TRANSFERKIT_MAX_IMAGE_PIXELS", "10000")
    with pytest.raises(ImageReadError, match="0.02 megapixels, over the limit of 0.01"):
        read_image(img)
    monkeypatch.setenv("TRANSFERKIT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match="TRANSFERKIT_MAX_IMAGE_PIXELS='lots'"):
        read_image(img)
    assert MAX_IMAGE_PIXELS < Image.MAX_IMAGE_PIXELS  # well below Pillow's own warning threshold


def test_a_jpeg_over_the_budget_decodes_at_reduced_scale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (800, 1000, 3), dtype=np.uint8)).save(path, quality=90)
    monkeypatch.setenv("TRANSFERKIT_MAX_IMAGE_PIXELS", "300000")  # 0.8 MP photo, 0.3 MP budget
    img = read_image(path)
    assert img.size == (500, 400)  # DCT-scaled 1/2: within the budget, no error
    monkeypatch.setenv("TRANSFERKIT_MAX_IMAGE_PIXELS", "1000")  # not even 1/8 fits (125x100)
    with pytest.raises(ImageReadError, match="photo.jpg"):
        read_image(path)


def test_predict_on_a_folder_with_a_bomb_names_the_file(tiny_backbone: str, tmp_path: Path) -> None:
    from transferkit import TransferClassifier
    from transferkit.cli import app

    from ..conftest import make_images

    X, y = make_images(6)
    model = TransferClassifier(tiny_backbone, cache=False, progress=False).fit(X, y).save(tmp_path / "m")
    (tmp_path / "in").mkdir()
    Image.fromarray(X[0]).save(tmp_path / "in" / "ok.png")
    png_bomb(tmp_path / "in" / "zz-bomb.png", 9000, 9000)
    result = CliRunner().invoke(app, ["predict", str(model), str(tmp_path / "in"), "--no-progress"])
    assert result.exit_code == 2 and not (result.exception and not isinstance(result.exception, SystemExit))
    assert "zz-bomb.png" in result.stderr and "megapixels" in result.stderr and "Traceback" not in result.stderr
