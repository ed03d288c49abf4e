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


def test_large_jpeg_decodes_at_reduced_scale_never_below_the_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (24, 32, 3)), np.ones((32, 32, 1))).astype(np.uint8)  # 768×1024
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=92)
    Image.fromarray(smooth).save(tmp_path / "big.png")
    full = read_image(tmp_path / "big.jpg")
    assert full.size == (1024, 768)
    # decoded sizes keep at least twice min_size on both sides
    assert read_image(tmp_path / "big.jpg", min_size=90).size == (256, 192)  # 1/4: 1/8 would give 96 < 180
    assert read_image(tmp_path / "big.jpg", min_size=150).size == (512, 384)  # 1/2
    assert read_image(tmp_path / "big.jpg", min_size=224).size == (1024, 768)  # 1/2 would give 384 < 448
    assert read_image(tmp_path / "big.png", min_size=90).size == (1024, 768)  # only JPEG has DCT scaling
    paths = ImagePaths([tmp_path / "big.jpg"])
    assert paths.pixel_size(0) == (1024, 768) and paths.load_sized(0, 150).size == (512, 384)
    assert ImageArray(smooth[None]).load_sized(0, 90).size == (1024, 768)
    # what the consumer does next, resizing to the size it asked for: the two decodes nearly agree
    for size in (90, 96, 150):
        target = (round(1024 * size / 768), size)
        resized_full = np.asarray(full.resize(target, Image.Resampling.BILINEAR), dtype=np.int16)
        reduced = paths.load_sized(0, size).resize(target, Image.Resampling.BILINEAR)
        assert np.abs(resized_full - np.asarray(reduced, dtype=np.int16)).mean() < 1.5


def test_exif_orientation_turns_the_pixels_upright(tmp_path: Path) -> None:
    # stored 1024 wide × 768 high with a marker block in the top-left corner; orientation 6 says "turn 90°
    # clockwise to display", so the upright image is 768 wide × 1024 high with the marker top-right
    stored = np.full((768, 1024, 3), 40, np.uint8)
    stored[:128, :128] = 230
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    Image.fromarray(stored).save(tmp_path / "plain.jpg", quality=95)
    upright = read_image(tmp_path / "phone.jpg")
    assert upright.size == (768, 1024)
    arr = np.asarray(upright).astype(int)
    assert arr[:128, -128:].mean() > 200 and arr[:128, :128].mean() < 80
    assert np.array_equal(np.asarray(upright), np.asarray(read_image(tmp_path / "plain.jpg").transpose(Image.Transpose.ROTATE_270)))
    paths = ImagePaths([tmp_path / "phone.jpg", tmp_path / "plain.jpg"])
    assert paths.pixel_size(0) == (768, 1024) and paths.pixel_size(1) == (1024, 768)  # header only, turned
    assert paths.load_sized(0, 150).size == (384, 512)  # reduced-scale decode, then turned
    # a damaged orientation value is ignored rather than making the picture unreadable
    exif[0x0112] = 99
    Image.fromarray(stored).save(tmp_path / "odd.jpg", quality=95, exif=exif)
    assert read_image(tmp_path / "odd.jpg").size == (1024, 768)


def test_pixel_size_reads_the_header_and_names_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="bad.png"):
        ImagePaths([tmp_path / "bad.png"]).pixel_size(0)
