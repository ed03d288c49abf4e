"""Parquet tables of paths (or texts) as input, like CSVs: same Dataset, same path confinement, same errors,
and `transferkit extract` reads them (the 'Parquet of paths' input of the scale-out issue)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from transferkit.cli import app
from transferkit.data.datasets import load_csv, load_dataset
from transferkit.exceptions import DataError

runner = CliRunner()


def _table_beside(image_folder: Path, tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """The image folder copied under tmp_path/data with a Parquet table of relative paths and labels."""
    data = tmp_path / "data"
    shutil.copytree(image_folder, data / "imgs")
    paths = sorted(str(p.relative_to(data)) for p in (data / "imgs").rglob("*.png"))
    labels = [Path(p).parent.name for p in paths]
    table = data / "items.parquet"
    pq.write_table(pa.table({"path": paths, "label": labels, "n": list(range(len(paths)))}), table)
    return table, paths, labels


def test_a_parquet_table_loads_as_the_same_csv_would(image_folder: Path, tmp_path: Path) -> None:
    table, paths, labels = _table_beside(image_folder, tmp_path)
    csv_file = table.with_suffix(".csv")
    csv_file.write_text("path,label\n" + "".join(f"{p},{lab}\n" for p, lab in zip(paths, labels, strict=True)))
    from_parquet, from_csv = load_dataset(table), load_dataset(csv_file)
    assert from_parquet.modality == from_csv.modality == "image"
    assert from_parquet.X == from_csv.X and all(Path(p).is_file() for p in from_parquet.X)
    assert list(from_parquet.y) == list(from_csv.y) == labels


def test_parquet_paths_stay_in_the_tables_folder_unless_allowed(image_folder: Path, tmp_path: Path) -> None:
    outside = next(image_folder.rglob("*.png"))
    table = tmp_path / "data" / "items.parquet"
    table.parent.mkdir()
    pq.write_table(pa.table({"path": [str(outside), str(outside)], "label": ["a", "b"]}), table)
    with pytest.raises(DataError, match="outside"):
        load_csv(table)
    assert load_csv(table, allow_outside_paths=True).X == [str(outside)] * 2


def test_a_file_that_is_not_parquet_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "items.parquet"
    bad.write_bytes(b"path,label\na.png,x\n")
    with pytest.raises(DataError, match="cannot read Parquet file") as err:
        load_dataset(bad)
    assert "\n" not in str(err.value)
    result = runner.invoke(app, ["extract", str(bad), "--backbone", "mobilenet_v2", "--out", str(tmp_path / "e.npy")])
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "e.npy").exists()


def test_extract_reads_a_parquet_table_of_paths(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    table, paths, labels = _table_beside(image_folder, tmp_path)
    out = tmp_path / "emb.parquet"
    result = runner.invoke(app, ["extract", str(table), "--backbone", tiny_backbone, "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pq.read_table(out)
    assert written.num_rows == len(paths) and json.loads(result.stdout)["rows"] == len(paths)
    assert written.column("label").to_pylist() == labels
    from_folder = tmp_path / "folder.parquet"
    assert runner.invoke(app, ["extract", str(table.parent / "imgs"), "--backbone", tiny_backbone,
                               "--out", str(from_folder)]).exit_code == 0
    by_id = {Path(i).resolve(): e for i, e in zip(pq.read_table(from_folder).column("id").to_pylist(),
                                                 pq.read_table(from_folder).column("embedding").to_pylist(),
                                                 strict=True)}
    for i, e in zip(written.column("id").to_pylist(), written.column("embedding").to_pylist(), strict=True):
        np.testing.assert_array_equal(np.asarray(e), np.asarray(by_id[Path(i).resolve()]))
