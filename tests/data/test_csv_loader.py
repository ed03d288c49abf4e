"""CSV files as hostile input: paths confined to the CSV's folder, huge cells refused with the right advice,
empty texts warned and counted — and property tests: any bytes in a CSV give a Dataset or a one-line
DataError, never a traceback."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from transferkit.data.csv_checks import FIELD_LIMIT
from transferkit.data.datasets import load_csv, load_dataset
from transferkit.exceptions import DataError, TransferKitError


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture
def outside_image(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (8, 8)).save(secret)
    return secret


@pytest.mark.parametrize("value", ["../elsewhere/secret.png", "imgs/../../elsewhere/secret.png", "ABS"])
def test_paths_outside_the_csv_folder_are_refused_unless_allowed(tmp_path: Path, outside_image: Path, value: str) -> None:
    d = tmp_path / "data"
    (d / "imgs").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(d / "imgs" / "a.png")
    value = str(outside_image) if value == "ABS" else value
    f = write_csv(d / "train.csv", [["path", "label"], ["imgs/a.png", "x"], [value, "y"]])
    with pytest.raises(DataError, match=r"row 3 of 'train.csv': path .* is outside the CSV's folder.*--allow-outside-paths"):
        load_csv(f)
    ds = load_csv(f, allow_outside_paths=True)
    assert Path(ds.X[1]).resolve() == outside_image.resolve()
    # the CLI: one line naming the value and the flag, exit 2; with the flag it reads the file
    from transferkit.cli import app

    result = CliRunner().invoke(app, ["fit", str(f), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "--allow-outside-paths" in result.stderr and value in result.stderr
    assert result.stderr.count("\n") == 1


def test_paths_inside_the_folder_still_work_including_dotdot_that_stays_inside(tmp_path: Path) -> None:
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "a.png")
    f = write_csv(tmp_path / "t.csv", [["path", "label"], ["imgs/sub/../a.png", "x"], ["./imgs/a.png", "y"]])
    assert len(load_csv(f).X) == 2
    f = write_csv(tmp_path / "t.csv", [["path", "label"], [str(tmp_path / "imgs" / "a.png"), "x"]])
    assert load_csv(f, require_labels=False).X == [str(tmp_path / "imgs" / "a.png")]  # absolute, but inside


def test_a_cell_over_the_limit_gets_honest_advice(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text("text,label\n\"" + "a" * (FIELD_LIMIT + 10) + "\",x\nshort,y\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"cell over 8 MiB.*unclosed quote") as info:
        load_csv(f)
    assert "UTF-8" not in str(info.value)
    # a 1 MB document (over Python's 128 KiB default) is fine
    f.write_text("text,label\n\"" + "word " * 200_000 + "\",x\nshort,y\n", encoding="utf-8")
    assert len(load_csv(f).X[0]) == 1_000_000
    assert csv.field_size_limit() == 131072  # the process-wide setting is restored


def test_empty_texts_are_warned_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = write_csv(tmp_path / "t.csv", [["text", "label"], ["good", "a"], ["", "b"], ["   ", "a"], ["fine", "b"]])
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        ds = load_csv(f)
    assert ds.extra["empty_texts"] == 2 and len(ds.X) == 4
    assert "2 of 4 texts in t.csv (column 'text') are empty (rows 3, 4)" in caplog.text


def test_not_utf8_names_the_byte(tmp_path: Path) -> None:
    f = tmp_path / "latin.csv"
    f.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text .* at byte \d+\); save it as UTF-8"):
        load_csv(f)


# -- property tests ------------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: more examples for a longer hunt: TK_FUZZ_EXAMPLES=2000 python -m pytest tests/data/test_csv_loader.py
EXAMPLES = int(os.environ.get("TK_FUZZ_EXAMPLES", "100"))
CELLS = st.one_of(st.text(max_size=20), st.sampled_from(["../x.png", "/etc/passwd", "a.png", "", "\"", "\x00",
                                                         "label", "text", "path", "ÿ", "\r\n", ","]))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=6),
       raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_any_csv_is_a_dataset_or_a_one_line_data_error(rows: list[list[str]], raw: bytes | None) -> None:
    root = Path(tempfile.mkdtemp(prefix="tk-csv-"))
    try:
        d = root / "data"
        d.mkdir()
        Image.new("RGB", (8, 8)).save(d / "a.png")
        f = d / "in.csv"
        if raw is not None:
            f.write_bytes(raw)
        else:
            with open(f, "w", newline="", encoding="utf-8", errors="surrogatepass") as fh:
                csv.writer(fh).writerows(rows)
        for kwargs in ({}, {"require_labels": False}):
            try:
                ds = load_csv(f, **kwargs)
            except TransferKitError as exc:
                assert isinstance(exc, DataError) and "\n" not in str(exc), repr(exc)
                continue
            assert len(ds.X) >= 1
            if ds.modality == "image":  # every path read is inside the CSV's folder
                assert all(Path(p).resolve().is_relative_to(d.resolve()) for p in ds.X)
            if ds.y is not None:
                assert len(ds.y) == len(ds.X)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(layout=st.lists(st.tuples(st.text(alphabet="abc._- ", min_size=1, max_size=6).filter(lambda n: n.strip(".")),
                                 st.text(alphabet="xyz.", min_size=1, max_size=6).filter(lambda n: n.strip(".")),
                                 st.sampled_from([".png", ".jpg", ".txt", ".PNG", ""]),
                                 st.sampled_from(["image", "garbage", "empty"])), max_size=6))
def test_any_image_folder_is_a_dataset_or_a_one_line_error(layout: list[tuple[str, str, str, str]]) -> None:
    from transferkit.data.items import ImagePaths

    root = Path(tempfile.mkdtemp(prefix="tk-folder-"))
    try:
        for cls, name, ext, kind in layout:
            p = root / cls / (name + ext)
            p.parent.mkdir(parents=True, exist_ok=True)
            if kind == "image" and ext:
                Image.new("L", (4, 4)).save(p, format="PNG")
            else:
                p.write_bytes(b"" if kind == "empty" else b"\x89PNG garbage")
        try:
            ds = load_dataset(root)
        except TransferKitError as exc:
            assert "\n" not in str(exc)
            return
        src = ImagePaths(ds.X)
        for i in range(len(src)):
            try:
                assert src.load(i).mode == "RGB"
            except TransferKitError as exc:
                assert "\n" not in str(exc) and str(src.paths[i]) in str(exc)
    finally:
        shutil.rmtree(root, ignore_errors=True)
