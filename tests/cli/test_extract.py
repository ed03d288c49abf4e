"""`transferkit extract`: Parquet / .npy from a folder or CSV, labels when known, resume, bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from typer.testing import CliRunner

from transferkit.cli import app
from transferkit.extraction import Extractor
from transferkit.extraction.writer import read_metadata

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_extract_folder_to_parquet_with_labels_then_rerun_skips(tiny_backbone: str, image_folder: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    result = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", out, "--chunk-size", "7")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 30 and table.column_names == ["id", "label", "embedding"]
    ids = table.column("id").to_pylist()
    assert all(Path(p).exists() for p in ids)
    assert table.column("label").to_pylist() == [Path(p).parent.name for p in ids]
    emb = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(30, -1)
    np.testing.assert_allclose(emb, Extractor(tiny_backbone, cache=False).extract(ids), atol=1e-6)
    assert read_metadata(out)["backbone"] == tiny_backbone
    again = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", out)
    assert again.exit_code == 0
    summary = json.loads(again.stdout)
    assert summary["skipped"] == 30 and summary["computed"] == 0 and summary["rows"] == 30


def test_extract_unlabelled_csv_to_npy(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in image_folder.rglob("*.png"))
    csv = tmp_path / "items.csv"
    csv.write_text("path\n" + "\n".join(files) + "\n")
    out = tmp_path / "emb.npy"
    result = _run("extract", csv, "--backbone", tiny_backbone, "--layer", "features.0", "--out", out)
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (len(files), 4)
    side = json.loads((tmp_path / "emb.ids.json").read_text())
    assert side["labels"] is None and side["meta"]["layer"] == "features.0" and len(side["ids"]) == len(files)


def test_extract_bad_input_is_one_line_exit_2(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    bad = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", tmp_path / "emb.csv")
    assert bad.exit_code == 2 and "use .parquet or .npy" in bad.output and "Traceback" not in bad.output
    missing = _run("extract", tmp_path / "nope", "--backbone", tiny_backbone, "--out", tmp_path / "e.parquet")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_extract_output_paths_are_checked_before_any_work(tiny_backbone: str, image_folder: Path,
                                                          tmp_path: Path) -> None:
    w = tmp_path / "outputs"
    w.mkdir()
    (w / "f").write_text("x")
    (w / "dir.parquet").mkdir()
    for out, says in ((w / "f" / "e.parquet", "which is a file"), (w / "dir.parquet", "is a folder")):
        r = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", out, "--no-progress")
        assert r.exit_code == 2 and says in r.stderr and "Traceback" not in r.output, r.output
        assert r.stderr.strip().startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in w.iterdir()) == ["dir.parquet", "f"]  # no parts folder, no file
    assert not any((w / "dir.parquet").iterdir())


def test_extract_text_file_not_utf8_is_one_line(tiny_backbone: str, tmp_path: Path) -> None:
    txt = tmp_path / "t.txt"
    txt.write_bytes("caf\xe9\n".encode("latin-1"))
    r = _run("extract", txt, "--backbone", tiny_backbone, "--out", tmp_path / "e.parquet")
    assert r.exit_code == 2 and "not UTF-8 text" in r.stderr and "byte 3" in r.stderr, r.output


def test_extract_csv_paths_stay_in_the_csv_folder_unless_allowed(tiny_backbone: str, image_folder: Path,
                                                                 tmp_path: Path) -> None:
    csv = tmp_path / "sub" / "items.csv"
    csv.parent.mkdir()
    files = sorted(image_folder.rglob("*.png"))[:4]
    csv.write_text("path\n" + "\n".join(str(p) for p in files) + "\n")  # absolute paths outside the CSV's folder
    refused = _run("extract", csv, "--backbone", tiny_backbone, "--out", tmp_path / "e.parquet", "--no-progress")
    assert refused.exit_code == 2 and "outside the CSV's folder" in refused.stderr, refused.output
    assert not (tmp_path / "e.parquet").exists()
    allowed = _run("extract", csv, "--backbone", tiny_backbone, "--out", tmp_path / "e.parquet", "--no-progress",
                   "--allow-outside-paths")
    assert allowed.exit_code == 0, allowed.output
    assert pq.read_table(tmp_path / "e.parquet").column("id").to_pylist() == [str(p) for p in files]


def test_extract_int8_calibrates_on_the_items_and_resumes(tiny_backbone: str, image_folder: Path,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    result = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", out, "--precision", "int8")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    ids, labels = table.column("id").to_pylist(), table.column("label").to_pylist()
    emb = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
    meta = read_metadata(out)
    assert meta["precision"] == "int8" and meta["calibration"]
    # the int8 graph calibrated on the same items (stratified by their labels) gives the same embeddings
    own = Extractor(tiny_backbone, cache=False, precision="int8").calibrate(ids, labels)
    assert own.identity() == {k: v for k, v in meta.items() if k not in ("dim", "labels", "schema")}
    np.testing.assert_allclose(emb, own.extract(ids), atol=1e-5)
    fp32 = Extractor(tiny_backbone, cache=False).extract(ids)
    assert not np.allclose(emb, fp32, atol=1e-6)  # quantized, not the fp32 graph
    cos = (emb * fp32).sum(1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(fp32, axis=1))
    assert cos.min() > 0.95
    again = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", out, "--precision", "int8")
    assert again.exit_code == 0 and json.loads(again.stdout)["skipped"] == 30
    ray = _run("extract", image_folder, "--backbone", tiny_backbone, "--out", tmp_path / "r", "--ray",
               "--precision", "int8")
    assert ray.exit_code == 2 and "--precision int8 is not available with --ray" in ray.output
