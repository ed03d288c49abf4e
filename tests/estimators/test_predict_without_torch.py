"""A saved feature-extraction model predicts without PyTorch (issue 19, item 2): in a fresh process where
``import torch`` fails, ``load_model(...).predict``, ``evaluate``, the server's :class:`Predictor` and
``transferkit predict`` answer exactly as the fitting process does, from the verified ONNX graph the fit
cached (in a cache holding no embedding), and torch is never loaded; the server and ``transferkit predict``
do not load scikit-learn either (:mod:`transferkit.saved`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import make_images
from transferkit import TransferClassifier
from transferkit._utils import onnx_dir

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from pathlib import Path
model_dir, weights, files, labels = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
out = {}
from transferkit.serving.predictor import Predictor
out["served"] = [row["prediction"] for row in Predictor(model_dir, weights=weights)(
    [__import__("transferkit.data.items", fromlist=["read_image"]).read_image(f) for f in files])]
from typer.testing import CliRunner
from transferkit.cli import app
result = CliRunner().invoke(app, ["predict", model_dir, str(Path(files[0]).parent), "--weights", weights, "--no-progress"])
out["cli_exit"] = result.exit_code
out["cli"] = result.output
out["heavy_for_serve_and_predict"] = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "transformers", "sklearn", "scipy"})
from transferkit import load_model
model = load_model(model_dir, weights=weights)
out.update({"predict": [str(p) for p in model.predict(files)],
            "proba": model.predict_proba(files).tolist(),
            "accuracy": float(model.score(files, labels))})
out["heavy"] = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision", "transformers"})
out["onnxruntime"] = "onnxruntime" in sys.modules
print(json.dumps(out))
"""


def _unimportable_torch(tmp: Path) -> Path:
    """A directory that, first on the path, makes ``import torch`` (and torchvision) raise ImportError."""
    for name in ("torch", "torchvision"):
        (tmp / name).mkdir(parents=True)
        (tmp / name / "__init__.py").write_text(f"raise ImportError('{name} is made unimportable by this test')\n")
    return tmp


def test_a_saved_model_predicts_with_torch_unimportable(tiny_backbone: str, tiny_weights: Path, tmp_path: Path) -> None:
    """tiny-cnn is not in a fresh process's registry: the model's own config and ``weights=`` rebuild it, as
    for any backbone registered by hand."""
    X, y = make_images(n_per_class=10)
    names = np.array(["stripes-h", "stripes-v", "blob"])[y]
    clf = TransferClassifier(backbone=tiny_backbone, progress=False).fit(X, names)
    model_dir = clf.save(tmp_path / "model")
    X_new, y_new = make_images(n_per_class=3, seed=7)
    files = []
    for i, img in enumerate(X_new):
        files.append(str(tmp_path / "new" / f"item{i}.png"))
        Path(files[-1]).parent.mkdir(exist_ok=True)
        Image.fromarray(img).save(files[-1])
    labels = [str(v) for v in np.array(["stripes-h", "stripes-v", "blob"])[y_new]]
    expected = [str(p) for p in clf.predict(files)]

    # a fresh cache holding only the fit's verified ONNX graph, no embedding: every feature is computed
    fresh = tmp_path / "fresh-cache"
    shutil.copytree(onnx_dir(), fresh / "onnx")
    blocker = _unimportable_torch(tmp_path / "blocker")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)]), "TRANSFERKIT_CACHE_DIR": str(fresh)}
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "unimportable" in check.stderr  # the blocker works
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(model_dir), str(tiny_weights), json.dumps(files), json.dumps(labels)],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [] and out["onnxruntime"]
    assert out["heavy_for_serve_and_predict"] == []  # the server and `predict` need neither scikit-learn nor SciPy
    assert out["predict"] == expected
    assert out["served"] == expected
    np.testing.assert_allclose(out["proba"], clf.predict_proba(files), atol=1e-5)
    assert out["accuracy"] == clf.score(files, labels)
    assert out["cli_exit"] == 0, out["cli"]
    rows = dict(line.rsplit(",", 1) for line in out["cli"].strip().splitlines()[1:])
    assert {Path(k).name: v for k, v in rows.items()} == {Path(f).name: p for f, p in zip(files, expected, strict=True)}
