"""The command line: every command end to end on tiny data, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

run = run_cli  # other test modules import it from here


@pytest.fixture
def fitted(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model"
    code, stdout, stderr = run("fit", image_folder, "--backbone", tiny_backbone, "--out", out, "--no-progress")
    assert code == 0, stderr
    return out


def test_help_everywhere() -> None:
    for cmd in ([], ["fit"], ["predict"], ["evaluate"], ["export"], ["backbones"], ["cache"], ["cache", "info"],
                ["quickstart"], ["download"]):
        code, out, _ = run(*cmd, "--help")
        assert code == 0 and "Usage" in out


def test_backbones_json_lists_every_entry() -> None:
    code, out, _ = run("backbones", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and {"mobilenet_v2", "tf_efficientnet_lite0", "minilm-l6", "glove-6b-50d"} <= set(rows)
    assert rows["minilm-l6"]["license"] == "Apache-2.0"
    code, out, _ = run("backbones")
    assert code == 0 and "licence" in out and "installed" in out


def test_fit_writes_model_results_and_report(fitted: Path) -> None:
    assert sorted(p.name for p in fitted.iterdir()) == ["head.safetensors", "manifest.json", "model.json", "report.html",
                                                          "results.json"]
    results = json.loads((fitted / "results.json").read_text())
    assert {"metrics", "baseline", "verdict", "dataset", "model", "timings", "projection"} <= set(results)
    assert results["metrics"]["accuracy"] > 0.6
    # stripes at random phases: pooled conv features see their orientation, a linear model on raw pixels does not
    verdict = results["verdict"]
    assert verdict["verdict"] == "positive transfer", verdict
    assert verdict["gain"] == pytest.approx(results["metrics"]["accuracy"] - results["baseline"]["metrics"]["accuracy"])
    assert 0 < verdict["ci_low"] <= verdict["gain"] <= verdict["ci_high"]
    assert results["baseline"]["name"] == "raw-pixel logistic regression"
    assert len(results["projection"]["points"]) == results["dataset"]["n_test"]
    html = (fitted / "report.html").read_text()
    assert "<img" in html and "http://" not in html


def test_fit_json_output_and_head_params(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    code, out, err = run("fit", image_folder, "--backbone", tiny_backbone, "--out", tmp_path / "m", "--head", "svm",
                         "--head-param", "C=0.1", "--no-report", "--no-progress", "--json", "--tta", "hflip")
    assert code == 0, err
    results = json.loads(out)
    assert results["model"]["head"] == "svm" and results["model"]["head_params"]["C"] == 0.1
    assert results["model"]["tta"] == "hflip" and json.loads((tmp_path / "m" / "model.json").read_text())["params"]["tta"] == "hflip"
    assert not (tmp_path / "m" / "report.html").exists()


def test_predict_and_evaluate(fitted: Path, image_folder: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "pred.csv"
    code, _, err = run("predict", fitted, image_folder, "--output", out_csv, "--proba", "--no-progress")
    assert code == 0, err
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 30 and set(rows[0]) == {"item", "prediction", "p_blob", "p_horizontal", "p_vertical"}
    correct = np.mean([Path(r["item"]).parent.name == r["prediction"] for r in rows])
    assert correct > 0.6
    code, out, err = run("evaluate", fitted, image_folder, "--no-progress")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["accuracy"] == pytest.approx(correct) and metrics["labels"] == ["blob", "horizontal", "vertical"]


def test_int8_fit_is_guarded_saved_and_overridable(tiny_backbone: str, image_folder: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from transferkit.extraction import quantize

    monkeypatch.setattr(quantize, "INT8_TOLERANCE", 1.0)  # keep int8 whatever it scores on 6 held-out items
    out = tmp_path / "m8"
    code, _, err = run("fit", image_folder, "--backbone", tiny_backbone, "--out", out, "--precision", "int8",
                       "--no-progress", "--no-report")
    assert code == 0, err
    assert "int8 kept: mean accuracy over 4 hold-outs of 6 training items" in err
    model = json.loads((out / "results.json").read_text())["model"]
    assert model["precision"] == "int8" and model["int8_guard"]["kept"] == "int8"
    assert json.loads((out / "model.json").read_text())["strategy"]["state"]["int8_ranges"]
    runs = {p: run("evaluate", out, image_folder, "--no-progress", *(("--precision", p) if p else ()))
            for p in (None, "fp32", "int8")}
    assert all(code == 0 for code, _, _ in runs.values()), runs
    int8, fp32, again = (json.loads(runs[p][1])["accuracy"] for p in (None, "fp32", "int8"))
    assert int8 > 0.6 and fp32 > 0.6 and again > 0.6
    monkeypatch.setattr(quantize, "INT8_TOLERANCE", -1.0)  # forced: int8 can never be close enough
    code, _, err = run("fit", image_folder, "--backbone", tiny_backbone, "--out", out, "--precision", "int8",
                       "--no-progress", "--no-report")
    assert code == 0 and "int8 fell back to fp32: it lost" in err
    assert json.loads((out / "results.json").read_text())["model"]["precision"] == "fp32"
    code, _, err = run("predict", out, image_folder, "--precision", "int8", "--no-progress")  # now an fp32 model
    _one_line_error(code, err, "fitted in fp32, so it has no int8 calibration", "--precision int8")
    code, _, err = run("fit", image_folder, "--backbone", tiny_backbone, "--out", tmp_path / "ft", "--precision",
                       "int8", "--strategy", "fine-tune", "--epochs", "1")
    _one_line_error(code, err, "strategy 'fine-tune' runs in fp32 only", "use precision='fp32'")
    assert not (tmp_path / "ft").exists()


def test_predict_names_rows_by_an_id_column(fitted: Path, image_folder: Path, tmp_path: Path) -> None:
    files = sorted(image_folder.rglob("*.png"))[:5]
    listing = tmp_path / "batch.csv"
    with listing.open("w", newline="") as f:
        csv.writer(f).writerows([("photo_id", "path"), *[(f"id-{i}", str(p)) for i, p in enumerate(files)]])
    code, out, err = run("predict", fitted, listing, "--id-column", "photo_id", "--no-progress")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["item"] for r in rows] == [f"id-{i}" for i in range(5)]
    code, default_out, _ = run("predict", fitted, listing, "--no-progress")  # same predictions, named by path
    assert [r["prediction"] for r in csv.DictReader(io.StringIO(default_out))] == [r["prediction"] for r in rows]
    code, _, err = run("predict", fitted, listing, "--id-column", "photo", "--no-progress")
    assert code == 2 and err.strip().count("\n") == 0
    assert "no id column 'photo' (did you mean 'photo_id'?); columns are: photo_id, path" in err
    code, _, err = run("predict", fitted, image_folder, "--id-column", "photo_id", "--no-progress")
    assert code == 2 and "is not a CSV; drop --id-column" in err


def test_export_onnx_matches(fitted: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    path = tmp_path / "model.onnx"
    code, _, err = run("export", fitted, "--onnx", path)
    assert code == 0, err
    assert "max abs difference" in err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from tests.conftest import make_images
    from transferkit import load_model

    X, _ = make_images(3, seed=7)
    rgb = np.repeat(X[..., None], 3, axis=3)
    got = session.run(None, {"pixels": rgb})[0]
    model = load_model(fitted)
    assert model.head_.power == 0.5  # post-ReLU features: the graph carries the head's signed square root
    want = model.predict_proba(rgb)
    assert np.max(np.abs(got - want)) < 1e-4


def test_text_model_exported_through_the_cli_runs_in_its_own_session(tiny_text_backbone: str, tmp_path: Path) -> None:
    from transformers import BertTokenizer

    from tests.conftest import make_texts, run_onnx
    from transferkit import load_model
    from transferkit.backbones import get_config

    X, y = make_texts(30, seed=0)
    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *zip(X, y, strict=True)])
    model, graph = tmp_path / "model", tmp_path / "text.onnx"
    code, _, err = run("fit", data, "--backbone", tiny_text_backbone, "--out", model, "--no-report", "--no-progress")
    assert code == 0, err
    code, _, err = run("export", model, "--onnx", graph)
    assert code == 0, err
    # the graph's inputs straight from the model's own tokenizer files, for new texts of different lengths
    new = ["the film was superb", "boring", "a movie is a movie and the film was awful and dull", "nice"]
    tokenizer = BertTokenizer.from_pretrained(get_config(tiny_text_backbone).weights.local_path)
    tokens = tokenizer(new, padding=True, truncation=True, max_length=32, return_tensors="np")
    got = run_onnx(graph, {"input_ids": tokens["input_ids"].astype(np.int64),
                           "attention_mask": tokens["attention_mask"].astype(np.int64)})
    want = load_model(model).predict_proba(new)
    assert got.shape == want.shape == (4, 2) and np.max(np.abs(got - want)) < 1e-4


def test_cache_info_and_clear(fitted: Path) -> None:
    code, out, _ = run("cache", "info", "--json")
    info = json.loads(out)
    entries = info["entries"]
    assert code == 0 and entries and entries[0]["backbone"] == "tiny-cnn" and entries[0]["items"] > 0
    assert info["onnx"]["files"] >= 2 and info["onnx"]["bytes"] > 0  # the exported graph and its check record
    code, _, err = run("cache", "clear")
    assert code == 0 and "cleared" in err
    after = json.loads(run("cache", "info", "--json")[1])
    assert after["entries"] == [] and after["onnx"]["files"] == 0 and after["onnx"]["bytes"] == 0
    code, _, err = run("cache", "clear", "--key", "nope")
    assert code == 2 and "no cache entry 'nope'" in err


def _one_line_error(code: int, stderr: str, *needles: str) -> None:
    assert code == 2, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr  # progress lines may precede it
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_user_mistakes_give_one_line_and_exit_2(tiny_backbone: str, image_folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "o"
    _one_line_error(*run("fit", tmp_path / "missing", "--out", out)[::2], "does not exist")
    (tmp_path / "empty").mkdir()
    _one_line_error(*run("fit", tmp_path / "empty", "--out", out)[::2], "no images")
    one = tmp_path / "one" / "cats"
    one.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8), (i, i, i)).save(one / f"{i}.png")
    _one_line_error(*run("fit", tmp_path / "one", "--backbone", tiny_backbone, "--out", out)[::2], "1 class", "at least 2")
    _one_line_error(*run("fit", image_folder, "--backbone", "mobilenet_v3", "--out", out)[::2],
                    "unknown backbone 'mobilenet_v3'", "did you mean 'mobilenet_v2'")
    bad = image_folder / "blob" / "zz_corrupt.png"
    bad.write_bytes(b"not an image at all")
    _one_line_error(*run("fit", image_folder, "--backbone", tiny_backbone, "--out", out, "--no-progress")[::2],
                    "zz_corrupt.png", "remove or replace")
    bad.unlink()
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,lbl\nnice,pos\nbad,neg\n")
    _one_line_error(*run("fit", csv_path, "--backbone", "glove-6b-50d", "--out", out)[::2],
                    "no label column 'label'", "columns are: text, lbl")
    _one_line_error(*run("fit", image_folder, "--backbone", tiny_backbone, "--layer", "nope", "--out", out)[::2],
                    "no layer 'nope'")
    _one_line_error(*run("fit", image_folder, "--backbone", tiny_backbone, "--head-param", "c=1", "--out", out)[::2],
                    "did you mean 'C'")
    _one_line_error(*run("predict", tmp_path / "nomodel", image_folder)[::2], "does not exist")
    _one_line_error(*run("fit", image_folder, "--backbone", "glove-6b-50d", "--out", out)[::2], "takes text input")
    code, _, err = run("fit", image_folder, "--head", "forest")
    assert code == 2 and "forest" in err and "Traceback" not in err


def test_every_command_fails_with_one_line_and_exit_2(fitted: Path, image_folder: Path, tmp_path: Path) -> None:
    import shutil

    relabelled = tmp_path / "relabelled"
    shutil.copytree(image_folder, relabelled)
    (relabelled / "blob").rename(relabelled / "cat")
    (tmp_path / "blank.txt").write_text("\n\n")
    missing = tmp_path / "missing"
    cases = [
        (("evaluate", missing, image_folder), ["model directory", "does not exist"]),
        (("evaluate", fitted, missing), ["does not exist"]),
        (("evaluate", fitted, relabelled), ["labels 'cat' are not classes of this model"]),
        (("export", missing, "--onnx", tmp_path / "m.onnx"), ["does not exist"]),
        (("export", fitted, "--onnx", image_folder), ["is a folder"]),
        (("quickstart", "--backbone", "mobilenet_v3", "--out", tmp_path / "q", "--no-progress"),
         ["unknown backbone 'mobilenet_v3'", "did you mean 'mobilenet_v2'"]),
        (("download", "mobilenet_v3"), ["unknown backbone 'mobilenet_v3'", "did you mean 'mobilenet_v2'"]),
        (("predict", fitted, missing), ["does not exist"]),
        (("predict", fitted, tmp_path / "blank.txt"), ["has no non-empty lines"]),
        (("predict", fitted, image_folder, "--output", image_folder), ["is a folder"]),
        (("rank", missing), ["does not exist"]),
        (("lr-find", missing), ["does not exist"]),
        (("cache", "clear", "--key", "nope"), ["no cache entry 'nope'"]),
        (("backbones", "--modality", "audio"), ["'audio'", "image, text"]),
    ]
    for args, needles in cases:
        _one_line_error(*run(*args)[::2], *needles)
    assert not (tmp_path / "q").exists() and not list(image_folder.glob(".*.tmp"))


def test_failed_fit_does_not_touch_an_existing_model(fitted: Path, tiny_backbone: str, tmp_path: Path) -> None:
    before = {p.name: p.read_bytes() for p in fitted.iterdir()}
    (tmp_path / "empty").mkdir()
    code, _, _ = run("fit", tmp_path / "empty", "--backbone", tiny_backbone, "--out", fitted)
    assert code == 2
    assert {p.name: p.read_bytes() for p in fitted.iterdir()} == before


def test_python_dash_m_transferkit_runs() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "transferkit", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage:" in result.stdout and all(c in result.stdout for c in ("fit", "predict", "export", "rank"))
    result = subprocess.run([sys.executable, "-m", "transferkit", "download", "nope"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown backbone 'nope'")
    assert "Traceback" not in result.stderr


def test_the_command_line_starts_without_torch_or_scikit_learn() -> None:
    """`transferkit --help` and `transferkit backbones` must not import the heavy stack; the library's entry
    points and the backbone classes still load on use."""
    import subprocess
    import sys

    code = ("import sys, transferkit.cli; heavy = [m for m in ('torch', 'sklearn') if m in sys.modules]; "
            "assert not heavy, heavy; "
            "from transferkit.cli.backbones import backbones; backbones(modality=None, json_output=True); "
            "assert 'torch' not in sys.modules, 'listing backbones imported torch'; "
            "from transferkit.backbones import Backbone; assert Backbone.__module__ == 'transferkit.backbones.inputs'; "
            "assert 'torch' not in sys.modules, 'the Backbone interface imported torch'; "
            "from transferkit.backbones import ImageBackbone; assert issubclass(ImageBackbone, Backbone); "
            "from transferkit import TransferClassifier, load_model, list_backbones; "
            "from transferkit.exceptions import NotFittedError; from sklearn.exceptions import NotFittedError as Sk; "
            "assert issubclass(NotFittedError, Sk); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.strip().endswith("\nok"), result.stderr[-2000:]
