#!/usr/bin/env python
"""Cold-process one-item predict vs ``python -c "import torch"``: ``--runs`` fresh processes of each, interleaved.

The model: mobilenet_v2 features + logistic regression fitted on 200 images of the bundled Fashion-MNIST
sample and saved. A first predict (not timed) exports and verifies the backbone's ONNX graph into the
benchmark's cache, as the fit of a real user does. Every timed predict gets a PNG never seen before (a
sample image not used by the fit), so its features are computed, never read from the embedding cache.
Then, alternately:

- ``import_torch``: ``python -c "import torch"`` (the issue's yardstick);
- ``predict``: ``python -m transferkit predict MODEL one.png`` (what a user runs);
- ``predict_torch_blocked``: the same with a ``torch`` package that raises ImportError first on the path,
  proving the predict path never needs torch;
- ``import_sklearn``: ``python -c "import sklearn.base"`` (the estimators' base classes; ``predict`` no
  longer loads scikit-learn: it reads the model through ``transferkit.saved``).

Reported: wall seconds of each run, median and min per arm, and predict's median / import torch's median.

Usage: python bench/predict_latency.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, log, own_cache_dir, rounded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {result.stderr[-2000:]}")
    return secs, result.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 runs of each arm")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    if args.quick:
        args.runs = 2
    from PIL import Image

    from transferkit import TransferClassifier
    from transferkit.data.datasets import load_fashion_mnist_sample

    with own_cache_dir(args.cache_dir, "predict-latency") as cache, tempfile.TemporaryDirectory() as tmp:
        ds = load_fashion_mnist_sample()
        X, y = np.asarray(ds.X)[:200], np.asarray(ds.y)[:200]
        log(f"fitting the model on {len(X)} images")
        model_dir = TransferClassifier("mobilenet_v2", progress=False).fit(X, y).save(Path(tmp) / "model")
        unseen = iter(range(len(X), len(ds.X)))

        def new_png() -> str:
            i = next(unseen)
            path = Path(tmp) / f"item{i}.png"
            Image.fromarray(np.asarray(ds.X)[i]).save(path)
            return str(path)

        blocker = Path(tmp) / "blocker"
        for name in ("torch", "torchvision"):
            (blocker / name).mkdir(parents=True)
            (blocker / name / "__init__.py").write_text("raise ImportError('blocked by bench/predict_latency.py')\n")
        path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH", "")) if x)
        env = {**os.environ, "TRANSFERKIT_CACHE_DIR": str(cache), "PYTHONPATH": path}
        blocked_env = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), path])}
        predict = [sys.executable, "-m", "transferkit", "predict", str(model_dir), "--no-progress"]
        arms = {
            "import_torch": ([sys.executable, "-c", "import torch"], env),
            "predict": (predict, env),
            "predict_torch_blocked": (predict, blocked_env),
            "import_sklearn": ([sys.executable, "-c", "import sklearn.base"], env),
        }
        _, first = timed([*predict, new_png()], env)  # exports and verifies the ONNX graph once (a fit does the same)
        log(f"first predict: {first.strip()!r}")
        times: dict[str, list[float]] = {name: [] for name in arms}
        load_before = loadavg()
        outputs = []
        for r in range(args.runs):
            for name, (cmd, e) in arms.items():
                item = [new_png()] if name.startswith("predict") else []
                secs, out = timed([*cmd, *item], e)
                times[name].append(secs)
                if item:
                    outputs.append(out.strip().splitlines()[-1].rsplit("/", 1)[-1])
            log(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
        load_after = loadavg()
    summary = {name: {"seconds": [rounded(t, 3) for t in ts], "median_s": rounded(float(np.median(ts)), 3),
                      "min_s": rounded(min(ts), 3)} for name, ts in times.items()}
    emit({"benchmark": "predict_latency", "backbone": "mobilenet_v2", "runs": args.runs, "quick": args.quick,
          "environment": environment(), "loadavg_before": load_before,
          "loadavg_after": load_after, "predictions": outputs, "arms": summary,
          "predict_over_import_torch_median": rounded(summary["predict"]["median_s"]
                                                       / summary["import_torch"]["median_s"], 3)})


if __name__ == "__main__":
    main()
