"""Dataset loaders: folders, CSV, bundled and well-known sets, and their errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from transferkit.data import (
    load_csv,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_fashion_mnist_sample,
    load_image_folder,
)
from transferkit.data.datasets import check_labels
from transferkit.exceptions import DataError


def test_image_folder(image_folder: Path) -> None:
    ds = load_image_folder(image_folder)
    assert ds.modality == "image" and len(ds) == 30
    assert sorted(set(ds.y)) == ["blob", "horizontal", "vertical"]
    assert all(Path(p).exists() for p in ds.X)


def test_empty_missing_and_flat_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in class subfolders"):
        load_image_folder(tmp_path / "empty")
    flat = tmp_path / "flat"
    flat.mkdir()
    from PIL import Image

    Image.new("RGB", (4, 4)).save(flat / "a.png")
    with pytest.raises(DataError, match="1 loose images: move them into one subfolder per class"):
        load_image_folder(flat)


def test_one_class_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "only").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "only" / "a.png")
    ds = load_image_folder(tmp_path)
    with pytest.raises(DataError, match=r"1 class \('only'\).*at least 2"):
        check_labels(ds.y)


def test_labels_validation() -> None:
    with pytest.raises(DataError, match=r"y\[1\] is NaN"):
        check_labels(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(DataError, match="missing"):
        check_labels(np.array(["a", None, "b"], dtype=object))
    with pytest.raises(DataError, match="1-D"):
        check_labels(np.zeros((2, 2)))


def test_csv_text_and_column_errors(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\ngreat film,pos\nawful,neg\n\"fine, really\",pos\n")
    ds = load_csv(path, label_column="sentiment")
    assert ds.modality == "text" and ds.X == ["great film", "awful", "fine, really"]
    assert ds.y.tolist() == ["pos", "neg", "pos"]
    with pytest.raises(DataError, match=r"no label column 'label'.*columns are: review, sentiment.*--label-column"):
        load_csv(path)
    with pytest.raises(DataError, match=r"no text column 'reviw'.*did you mean 'review'"):
        load_csv(path, text_column="reviw", label_column="sentiment")
    empty_label = tmp_path / "e.csv"
    empty_label.write_text("text,label\na,x\nb,\n")
    with pytest.raises(DataError, match="row 3 .* empty label"):
        load_csv(empty_label)


def test_csv_columns_are_guessed_when_unambiguous(image_folder: Path, tmp_path: Path) -> None:
    texts = tmp_path / "t.csv"
    texts.write_text("body,Category\nhello world,x\nbye now,y\n")
    ds = load_csv(texts)  # no 'label' column: 'Category' is; the one other column is the text
    assert ds.modality == "text" and ds.X == ["hello world", "bye now"] and ds.y.tolist() == ["x", "y"]
    assert load_csv(texts, require_labels=False).X == ["hello world", "bye now"]  # as `predict` reads it
    files = sorted(image_folder.rglob("*.png"))[:3]
    listing = image_folder / "files.csv"
    listing.write_text("picture,target\n" + "".join(f"{f.relative_to(image_folder)},{f.parent.name}\n" for f in files))
    ds = load_csv(listing)  # the lone column holds image file names: image paths
    assert ds.modality == "image" and ds.X == [str(f) for f in files]
    both = tmp_path / "b.csv"
    both.write_text("body,topic\nhello,x\nbye,y\n")
    with pytest.raises(DataError, match=r"no text or path column and no label column .*--label-column"):
        load_csv(both)
    assert load_csv(both, label_column="topic").X == ["hello", "bye"]
    three = tmp_path / "c.csv"
    three.write_text("body,note,topic\nhello,a,x\nbye,b,y\n")
    with pytest.raises(DataError, match=r"no text or path column \(columns: body, note, topic\)"):
        load_csv(three, label_column="topic")  # two candidates: no guess
    assert load_csv(three, label_column="topic", id_column="note").X == ["hello", "bye"]


def test_csv_with_image_paths(image_folder: Path, tmp_path: Path) -> None:
    files = sorted(image_folder.rglob("*.png"))[:4]
    csv_path = image_folder / "list.csv"
    csv_path.write_text("path,label\n" + "".join(f"{f.relative_to(image_folder)},{f.parent.name}\n" for f in files))
    ds = load_csv(csv_path)
    assert ds.modality == "image" and all(Path(p).is_file() for p in ds.X)
    (image_folder / "bad.csv").write_text("path,label\nmissing.png,a\n")
    with pytest.raises(DataError, match="do not exist, e.g."):
        load_csv(image_folder / "bad.csv")


def test_load_dataset_dispatch(image_folder: Path, tmp_path: Path) -> None:
    assert load_dataset(str(image_folder)).modality == "image"
    with pytest.raises(DataError, match=r"not a folder, a CSV file or a built-in dataset \(did you mean 'digits'"):
        load_dataset("digitz")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not a .csv"):
        load_dataset(str(tmp_path / "notes.txt"))


def test_bundled_fashion_mnist_sample() -> None:
    ds = load_fashion_mnist_sample()
    assert ds.X.shape == (3000, 28, 28) and ds.X.dtype == np.uint8
    assert np.bincount(ds.y).tolist() == [300] * 10
    assert (ds.extra["split"] == 0).sum() == 2000
    assert ds.display_labels([0, 9]) == ["T-shirt/top", "Ankle boot"]
    notice = Path(__import__("transferkit").__file__).parent / "data" / "bundled" / "FASHION_MNIST_LICENSE.txt"
    assert "Zalando" in notice.read_text()


def test_idx_reader(tmp_path: Path) -> None:
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([1, 7], dtype=np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 0x0803, 2, 3, 4) + imgs.tobytes())
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 0x0801, 2) + labels.tobytes())
    ds = load_fashion_mnist("train", tmp_path)
    assert np.array_equal(ds.X, imgs) and ds.y.tolist() == [1, 7]
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", tmp_path)


def test_digits_are_mnist_like() -> None:
    ds = load_digits()
    assert ds.X.shape == (1797, 28, 28) and ds.X.dtype == np.uint8
    assert ds.X[:, :4, :].max() == 0 and ds.X[:, 4:24, 4:24].max() > 200  # 20x20 box, padded
