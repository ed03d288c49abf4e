"""Item sources: image modes, arrays, texts, and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferkit.data.items import ImageArray, ImagePaths, Texts, array_to_image, as_items, read_image, to_rgb
from transferkit.exceptions import ConfigError, DataError, ImageReadError


def test_every_pil_mode_becomes_rgb(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((5, 6), 100, np.uint8), mode="L")
    rgba = Image.new("RGBA", (6, 5), (10, 20, 30, 0))  # fully transparent → white background
    pal = grey.convert("P")
    i16 = Image.fromarray(np.full((5, 6), 4000, np.uint16))
    for img in (grey, rgba, pal, i16, grey.convert("CMYK"), grey.convert("LA")):
        out = to_rgb(img)
        assert out.mode == "RGB" and out.size == (6, 5)
    assert np.asarray(to_rgb(rgba))[0, 0].tolist() == [255, 255, 255]
    assert np.asarray(to_rgb(grey))[0, 0].tolist() == [100, 100, 100]
    assert np.asarray(to_rgb(i16)).max() == 255  # rescaled, not clipped to garbage


def test_arrays_of_each_layout(tiny_images: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = tiny_images
    for arr in (X, X[..., None], np.repeat(X[..., None], 3, axis=3), np.concatenate([np.repeat(X[..., None], 3, 3), np.full(X.shape + (1,), 255, np.uint8)], 3)):
        items = as_items(arr, "image")
        assert isinstance(items, ImageArray) and len(items) == len(X)
        assert items.load(0).mode == "RGB"
        assert np.asarray(items.load(0))[..., 0].tolist() == X[0].tolist()


def test_content_hash_depends_on_content_only(tiny_images: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = tiny_images
    a, b = as_items(X), as_items(X.copy())
    assert a.content_hash(0) == b.content_hash(0)
    assert a.content_hash(0) != a.content_hash(1)
    assert Texts(["a"]).content_hash(0) != Texts(["b"]).content_hash(0)


def test_float_arrays_and_nan_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"dtype float32.*uint8"):
        as_items(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(DataError, match="NaN"):
        as_items(np.full((2, 8, 8), np.nan, np.float32))
    with pytest.raises(ConfigError, match="shape"):
        as_items(np.zeros((2, 8, 8, 7), np.uint8))
    with pytest.raises(ConfigError, match="shape"):
        array_to_image(np.zeros((2, 2, 2, 2), np.uint8))


def test_strings_are_paths_or_texts_by_modality(tmp_path: Path) -> None:
    assert isinstance(as_items(["a.png", "b.jpg"]), ImagePaths)
    assert isinstance(as_items(["hello world", "bye"]), Texts)
    assert isinstance(as_items(["a.png"], "text"), Texts)
    (tmp_path / "photo_without_extension").write_bytes(b"")
    assert isinstance(as_items([str(tmp_path / "photo_without_extension")], "image"), ImagePaths)
    with pytest.raises(ConfigError, match="takes image input but X holds text"):
        as_items(["a review of a film"], "image")
    with pytest.raises(ConfigError, match="takes text input but X holds image items"):
        as_items(np.zeros((2, 8, 8), np.uint8), "text")


def test_empty_and_missing_text_values() -> None:
    with pytest.raises(DataError, match="empty"):
        as_items([])
    with pytest.raises(DataError, match=r"text item 1 is None"):
        Texts(["ok", None])  # type: ignore[list-item]


def test_corrupt_and_missing_image_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ImageReadError, match=r"broken\.png.*remove or replace"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="does not exist"):
        read_image(tmp_path / "gone.png")
    with pytest.raises(ImageReadError, match="gone.png"):
        ImagePaths([tmp_path / "gone.png"]).content_hash(0)
