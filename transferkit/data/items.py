"""Item sources: a uniform, lazily loaded view over what users pass as ``X``.

``X`` may be a list of image paths, an array of images ``(N, H, W)`` or ``(N, H, W, C)`` uint8, a list of
per-image arrays or PIL images, or a list of strings (text). Each source answers ``len``, ``load(i)`` (a
RGB ``PIL.Image`` or a ``str``), ``content_hash(i)`` (16 bytes identifying the content, used as cache key)
and ``describe(i)`` (for error messages). Nothing is decoded until asked, so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..exceptions import ConfigError, DataError, ImageReadError

#: version of the code that turns items into model inputs (image decoding, EXIF orientation, JPEG draft
#: decoding, grey/alpha/16-bit conversion, resize + center crop here; tokenisation in ``backbones/text.py``).
#: It is part of every cache key: bump it with any change that alters the pixels or tokens a model sees.
PREPROCESSING_VERSION = 2

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_ORIENTATION = 0x0112  # the EXIF tag saying how the stored pixels must be turned to stand upright
_SWAPS_SIDES = (5, 6, 7, 8)  # orientations that transpose (90° / 270° turns): width and height swap


def _digest(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()[:16]


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL image (grey, palette, RGBA, 16-bit, CMYK) to 8-bit RGB.

    Transparent pixels are composited onto white, 16-bit and float images are rescaled to 0..255.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / hi if hi > 255 else 1.0
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _is_grey(img: Image.Image) -> bool:
    """Whether an RGB image has three identical channels (checked on the first row first: photos fail fast)."""
    if img.mode != "RGB":
        return False
    arr = np.asarray(img)
    first = arr[0]
    if not (np.array_equal(first[:, 0], first[:, 1]) and np.array_equal(first[:, 0], first[:, 2])):
        return False
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


def resize_center_crop(img: Image.Image, size: int,
                       resample: Image.Resampling = Image.Resampling.BILINEAR) -> np.ndarray:
    """Resize an RGB image's shorter side to ``size`` and center-crop a square; uint8 ``(size, size, 3)``.

    The sizes and offsets follow torchvision's ``Resize(S)`` + ``CenterCrop(S)`` exactly (the long side is
    rounded down, the crop offsets to the nearest pixel), so the pixels equal what the usual torchvision
    pipeline gives. A grey picture in RGB clothing (the three channels equal, as loaders make of grey
    images) is resized as one channel and repeated: the same bytes, a third of the resampling work.
    """
    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    grey = (new_w, new_h) != (w, h) and _is_grey(img)
    if grey:
        img = img.getchannel(0)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), resample)
    if (new_w, new_h) != (size, size):
        left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.uint8)
    return np.repeat(arr[:, :, None], 3, axis=2) if grey else arr


def array_to_image(arr: np.ndarray, where: str = "array") -> Image.Image:
    """Turn one uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) into an RGB PIL image."""
    if arr.dtype != np.uint8:
        raise ConfigError(
            f"{where} has dtype {arr.dtype}; images must be uint8 in 0..255 "
            "(convert with (x * 255).round().astype('uint8') if they are floats in 0..1)"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L").convert("RGB")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return to_rgb(Image.fromarray(arr, mode="RGB" if arr.shape[2] == 3 else "RGBA"))
    raise ConfigError(f"{where} has shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation of an opened image (1, upright, when it has no tag or an unreadable one)."""
    try:
        value = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block must not make the pixels unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


#: the most pixels one image may decode to (after JPEG reduced-scale decoding), checked from the file's
#: header before any pixel is decoded: a 17 KB PNG can declare 170 megapixels (a decompression bomb), which
#: would take over a gigabyte to decode. Well below Pillow's own limit (89 MP warns, 179 MP fails);
#: ``$TRANSFERKIT_MAX_IMAGE_PIXELS`` changes it.
MAX_IMAGE_PIXELS = 64_000_000
PIXELS_ENV = "TRANSFERKIT_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    value = os.environ.get(PIXELS_ENV)
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(float(value))
    except ValueError:
        limit = 0
    if limit <= 0:
        raise ConfigError(f"{PIXELS_ENV}={value!r} must be a positive number of pixels, e.g. 100000000")
    return limit


def _too_big(shown: str, size: tuple[int, int], limit: int) -> ImageReadError:
    w, h = size
    return ImageReadError(
        f"image {shown} is {w}x{h} = {w * h / 1e6:.3g} megapixels, over the limit of {limit / 1e6:g} "
        f"(a decompression bomb, or a huge scan); shrink the file, or raise the limit with {PIXELS_ENV}=N")


@contextlib.contextmanager
def _open_image(path: str | os.PathLike[str], shown: str | None = None) -> Iterator[Image.Image]:
    """``Image.open`` with Pillow's own decompression-bomb check turned into our one-line error (the header
    is read, no pixels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ImageReadError(f"image {shown or repr(str(path))} is over Pillow's decompression-bomb limit ({exc}); shrink "
                                 "the file") from exc
    with img:
        yield img


def _check_pixels(img: Image.Image, path: Any, min_size: int | None) -> None:
    """Shrink a JPEG's decode (DCT scaling) as far as the consumer allows, or to fit the pixel budget; refuse
    any other image whose decoded size is over the budget — before decoding it."""
    limit = max_image_pixels()
    w, h = img.size
    if img.format == "JPEG":
        if min_size:
            img.draft(img.mode, (2 * int(min_size), 2 * int(min_size)))
        for k in (2, 4, 8):
            if img.size[0] * img.size[1] <= limit:
                break
            img.draft(img.mode, (max(1, w // k), max(1, h // k)))
    if img.size[0] * img.size[1] > limit:
        raise _too_big(path, (w, h), limit)


def read_image(path: str | os.PathLike[str], min_size: int | None = None, name: str | None = None) -> Image.Image:
    """Open an image file as RGB, raising :class:`ImageReadError` naming the file if it is unreadable.

    ``min_size``: the consumer shrinks the image so its shorter side is ``min_size`` pixels. A JPEG then
    decodes at 1/2, 1/4 or 1/8 scale through the JPEG decoder's own DCT scaling (as ``Image.thumbnail``
    does), keeping at least twice ``min_size`` on both sides so the consumer's resize still does the final
    filtering: a 12-megapixel photo decodes about seven times faster, and after the resize the pixels are
    within about one grey level of a full decode on average.

    The image is turned upright as its EXIF orientation tag says (phone and camera photos store the
    pixels as the sensor saw them and record the turn in the tag), as an image viewer shows it.

    ``name``: how messages call the image (default: the path; e.g. an upload's file name).

    An image that would decode to more than :func:`max_image_pixels` pixels (64 MP by default) is refused
    from its header, before decoding; a JPEG over it decodes at 1/2, 1/4 or 1/8 scale if that fits.
    """
    shown = name if name is not None else repr(str(path))  # as messages show it
    try:
        with _open_image(path, shown) as img:
            _check_pixels(img, shown, min_size)
            img.load()
            if _orientation(img) != 1:
                img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except (ImageReadError, ConfigError):
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"image file {shown} does not exist") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"cannot read image {shown} (not a recognised image format); remove or replace the file"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        detail = str(exc).replace(str(path), "").strip(" :'\"") or type(exc).__name__
        raise ImageReadError(
            f"cannot read image {shown} ({detail}; truncated or corrupt?); remove or replace the file"
        ) from exc


class ItemSource(Sequence):
    """Base class: a lazily loaded sequence of items of one modality."""

    modality: str = ""

    def load(self, i: int) -> Any:
        raise NotImplementedError

    def content_hash(self, i: int) -> bytes:
        raise NotImplementedError

    def describe(self, i: int) -> str:
        return f"item {i}"

    def load_sized(self, i: int, size: int | None) -> Any:
        """``load(i)`` for a consumer that resizes images to ``size`` pixels on the shorter side; image files
        may then be decoded at a reduced scale no smaller than that (see :func:`read_image`)."""
        return self.load(i)

    def pixel_size(self, i: int) -> tuple[int, int]:
        """``(width, height)`` of image ``i`` (image files: from the header, without decoding the pixels)."""
        return self.load(i).size

    def __getitem__(self, i: Any) -> Any:  # Sequence protocol: items load lazily
        if isinstance(i, slice):
            return [self.load(j) for j in range(*i.indices(len(self)))]
        return self.load(i)


class ImagePaths(ItemSource):
    modality = "image"

    def __init__(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.paths = [Path(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, i: int) -> Image.Image:
        return read_image(self.paths[i])

    def load_sized(self, i: int, size: int | None) -> Image.Image:
        return read_image(self.paths[i], min_size=size)

    def pixel_size(self, i: int) -> tuple[int, int]:
        try:
            with _open_image(self.paths[i]) as img:
                w, h = img.size
                return (h, w) if _orientation(img) in _SWAPS_SIDES else (w, h)
        except (OSError, ValueError, SyntaxError, ImageReadError):
            return read_image(self.paths[i]).size  # raises the one-line error naming the file

    def content_hash(self, i: int) -> bytes:
        try:
            return _digest(b"file:", self.paths[i].read_bytes())
        except FileNotFoundError as exc:
            raise ImageReadError(f"image file {str(self.paths[i])!r} does not exist") from exc
        except OSError as exc:
            raise ImageReadError(f"cannot read image {str(self.paths[i])!r} ({exc.strerror or exc})") from exc

    def describe(self, i: int) -> str:
        return str(self.paths[i])


class ImageArray(ItemSource):
    """Images stacked in one uint8 array (N, H, W) or (N, H, W, C), or given as a list of arrays/PIL images."""

    modality = "image"

    def __init__(self, images: np.ndarray | Sequence[Any]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def _array(self, i: int) -> np.ndarray:
        item = self.images[i]
        if isinstance(item, Image.Image):
            return np.asarray(to_rgb(item))
        return np.asarray(item)

    def load(self, i: int) -> Image.Image:
        item = self.images[i]
        if isinstance(item, Image.Image):
            return to_rgb(item)
        return array_to_image(np.asarray(item), where=f"image {i}")

    def content_hash(self, i: int) -> bytes:
        arr = np.ascontiguousarray(self._array(i))
        return _digest(b"array:", str(arr.shape).encode(), str(arr.dtype).encode(), arr.tobytes())

    def describe(self, i: int) -> str:
        return f"image {i} of the array"


class Texts(ItemSource):
    modality = "text"

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        for i, t in enumerate(self.texts):
            if not isinstance(t, str):
                raise DataError(
                    f"text item {i} is {t!r} ({type(t).__name__}); every text must be a string "
                    "(drop or fill missing values first)"
                )

    def __len__(self) -> int:
        return len(self.texts)

    def load(self, i: int) -> str:
        return self.texts[i]

    def content_hash(self, i: int) -> bytes:
        return _digest(b"text:", self.texts[i].encode("utf-8"))

    def describe(self, i: int) -> str:
        t = self.texts[i]
        return f"text {i} ({t[:40]!r}{'…' if len(t) > 40 else ''})"


def _looks_like_path(x: Any) -> bool:
    return isinstance(x, os.PathLike) or (
        isinstance(x, str) and x.lower().endswith(IMAGE_EXTENSIONS) and "\n" not in x
    )


#: the largest side at which images that share one square size are used as they are (native size)
MAX_NATIVE_SIZE = 64


def native_square_size(X: Any, max_size: int = MAX_NATIVE_SIZE, sample: int = 256) -> int | None:
    """The side of the images in ``X`` when the first ``sample`` of them share one square size of at most
    ``max_size`` pixels (read from file headers), else ``None``: small native images (28×28 digits) are then
    used as they are instead of being resized."""
    items = as_items(X, "image")
    sizes: set[tuple[int, int]] = set()
    for i in range(min(len(items), sample)):
        sizes.add(items.pixel_size(i))
        if len(sizes) > 1:
            return None
    if not sizes:
        return None
    ((w, h),) = sizes
    return int(w) if w == h and w <= max_size else None


#: sound-file extensions (libsndfile reads them; mp3 where the platform's libsndfile does)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au")
#: builds the item source of audio input; set by :mod:`transferkit.data.audio` (imported with the package)
AUDIO_ITEMS: list[Any] = []


def _audio_paths(X: Any) -> bool:
    return isinstance(X, (list, tuple)) and len(X) > 0 and isinstance(X[0], (str, os.PathLike)) \
        and str(X[0]).lower().endswith(AUDIO_EXTENSIONS)


def as_items(X: Any, modality: str | None = None) -> ItemSource:
    """Wrap ``X`` in the matching :class:`ItemSource`.

    ``modality`` (``"image"`` or ``"text"``) resolves the one ambiguity: a list of strings is image paths
    for an image backbone and texts for a text backbone. Without it, strings ending in an image extension
    are taken as paths.
    """
    if isinstance(X, ItemSource):
        source = X
    elif modality == "audio" or (modality is None and _audio_paths(X)):
        source = AUDIO_ITEMS[0](X)
    elif isinstance(X, np.ndarray):
        if X.dtype.kind in ("U", "S", "O") and X.ndim == 1:
            return as_items(X.tolist(), modality)
        if X.ndim not in (3, 4):
            raise ConfigError(
                f"image array has shape {X.shape}; expected (N, H, W) or (N, H, W, C) uint8 images"
            )
        if X.dtype != np.uint8:
            if X.dtype.kind == "f" and np.isnan(X).any():
                raise DataError("image array contains NaN values; clean or drop those images")
            raise ConfigError(
                f"image array has dtype {X.dtype}; expected uint8 in 0..255 "
                "(convert with (x * 255).round().astype('uint8') if the values are in 0..1)"
            )
        if X.ndim == 4 and X.shape[3] not in (1, 3, 4):
            raise ConfigError(
                f"image array has shape {X.shape}; channels must be last, with 1, 3 or 4 of them"
            )
        source = ImageArray(X)
    elif isinstance(X, (list, tuple)) or hasattr(X, "__len__") and hasattr(X, "__getitem__"):
        seq = list(X) if not isinstance(X, list) else X
        if len(seq) == 0:
            raise DataError("X is empty; pass at least one item per class")
        first = seq[0]
        if isinstance(first, (np.ndarray, Image.Image)):
            source = ImageArray(seq)
        elif modality == "image" or (modality is None and _looks_like_path(first)):
            if not all(isinstance(p, (str, os.PathLike)) for p in seq):
                raise ConfigError("X mixes image paths with other values; pass only file paths")
            head = seq[:5]
            if not any(_looks_like_path(p) or Path(p).exists() for p in head):
                raise ConfigError(
                    f"this backbone takes image input but X holds text (strings that are not image files, e.g. "
                    f"{str(first)[:40]!r}); pick a text backbone (see `transferkit backbones`) or pass image paths"
                )
            source = ImagePaths(seq)
        elif all(isinstance(t, str) for t in seq):
            source = Texts(seq)
        else:
            bad = next(i for i, t in enumerate(seq) if not isinstance(t, str))
            raise DataError(
                f"X[{bad}] is {seq[bad]!r}; expected strings (texts or image paths), arrays or PIL images"
            )
    else:
        raise ConfigError(
            f"X of type {type(X).__name__} is not supported; pass a list of image paths, a uint8 image array "
            "(N, H, W[, C]) or a list of strings"
        )
    if len(source) == 0:
        raise DataError("X is empty; pass at least one item per class")
    if modality is not None and source.modality != modality:
        raise ConfigError(
            f"this backbone takes {modality} input but X holds {source.modality} items; "
            f"pick a {source.modality} backbone (see `transferkit backbones`)"
        )
    return source
