"""Multi-label tagging and regression from a frozen pretrained backbone vs the from-scratch baseline (issue 16).

Three synthetic tasks built from real images (a fresh draw per seed; training and test canvases use disjoint
source images):

- ``multilabel``: 56×56 canvases holding 1–4 Fashion-MNIST items in a 2×2 grid; the tags are the classes
  present. Micro/macro-F1 and subset accuracy of :class:`~transferkit.TransferClassifier` (``multilabel=True``,
  a logistic regression per tag, thresholds tuned by CV) vs the raw-pixel logistic regression per tag.
- ``zoom``: one Fashion-MNIST item shrunk by a factor in [0.5, 1.0] and centred on its 28×28 canvas; the
  target is the factor. R² and MAE of :class:`~transferkit.TransferRegressor` (ridge, ``alpha`` by CV) vs raw-pixel
  ridge regression.
- ``count``: 1–5 MNIST digits in distinct cells of a 3×3 grid on an 84×84 canvas; the target is the count.
- ``brightness`` (a control, not run by default): a dimmed Fashion-MNIST item; the target is the mean pixel
  value, a linear function of the pixels that the raw-pixel baseline fits exactly: transfer must lose, and
  the verdict must say negative transfer.

Every task's verdict is the library's own (paired bootstrap on micro-F1, or on the absolute error): where
transfer loses to the baseline it says negative transfer.

    python bench/objectives.py            # 3 seeds, 1,000 training and 1,000 test canvases per task
    python bench/objectives.py --quick    # 1 seed, 150 / 150 canvases
    python bench/objectives.py --random-init --seeds 0   # the random-initialised control
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, emit, environment, log, own_cache_dir, rounded, set_threads  # noqa: E402


def _paste(canvas: np.ndarray, img: np.ndarray, top: int, left: int) -> None:
    h, w = img.shape
    region = canvas[top:top + h, left:left + w]
    np.maximum(region, img, out=region)


def multilabel_canvases(X: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator, names: list[str]) -> tuple:
    canvases, tags = np.zeros((n, 56, 56), np.uint8), []
    for i in range(n):
        k = int(rng.integers(1, 5))
        cells = rng.choice(4, size=k, replace=False)
        picks = rng.integers(0, len(X), size=k)
        for cell, j in zip(cells, picks, strict=True):
            _paste(canvases[i], X[j], 28 * (cell // 2), 28 * (cell % 2))
        tags.append(";".join(sorted({names[int(y[j])] for j in picks})))
    return canvases, tags


def zoom_canvases(X: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
    from PIL import Image

    canvases, target = np.zeros((n, 28, 28), np.uint8), rng.uniform(0.5, 1.0, size=n)
    for i in range(n):
        side = max(1, int(round(28 * target[i])))
        img = np.asarray(Image.fromarray(X[int(rng.integers(0, len(X)))]).resize((side, side), Image.BILINEAR))
        off = (28 - side) // 2
        _paste(canvases[i], img, off, off)
    return canvases, target


def brightness_canvases(X: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
    """A Fashion-MNIST item dimmed by a factor in [0.3, 1.0]; the target is the canvas's mean pixel value:
    a linear function of the pixels, which raw-pixel ridge regression fits exactly — transfer should lose."""
    factor = rng.uniform(0.3, 1.0, size=n)
    canvases = np.stack([(X[int(rng.integers(0, len(X)))] * f).round().astype(np.uint8) for f in factor])
    return canvases, canvases.reshape(n, -1).mean(1) / 255.0


def count_canvases(X: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
    canvases, target = np.zeros((n, 84, 84), np.uint8), rng.integers(1, 6, size=n)
    for i in range(n):
        for cell in rng.choice(9, size=int(target[i]), replace=False):
            _paste(canvases[i], X[int(rng.integers(0, len(X)))], 28 * (cell // 3), 28 * (cell % 3))
    return canvases, target.astype(np.float64)


def run_task(kind: str, X: np.ndarray, y, Xt: np.ndarray, yt, backbone: str, seed: int, pretrained: bool) -> dict:
    from transferkit import TransferClassifier, TransferRegressor

    common = {"random_state": seed, "progress": False, "pretrained": pretrained}
    model = (TransferClassifier(backbone, multilabel=True, **common) if kind == "multilabel"
             else TransferRegressor(backbone, **common)).fit(X, y)
    objective = model.objective_
    pred = model.predict(Xt)
    baseline = objective.baseline("image", random_state=seed).fit(X, y)
    base_pred = baseline.predict(Xt)
    verdict = objective.verdict(yt, pred, base_pred, baseline_name=baseline.name, modality="image", seed=seed)
    keys = ("f1_micro", "f1_macro", "subset_accuracy") if kind == "multilabel" else ("r2", "mae", "rmse")
    m, b = objective.metrics(yt, pred), objective.metrics(yt, base_pred)
    return {"transfer": {k: rounded(m[k]) for k in keys}, "baseline": {k: rounded(b[k]) for k in keys},
            "baseline_name": baseline.name, "verdict": verdict["verdict"], "gain": rounded(verdict["gain"]),
            "ci": [rounded(verdict["ci_low"]), rounded(verdict["ci_high"])], "metric": verdict["metric"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--tasks", default="multilabel,zoom,count")
    p.add_argument("--n", type=int, default=1000, help="training (and test) canvases per task")
    p.add_argument("--random-init", action="store_true",
                   help="the backbone's random-initialised copy instead of its pretrained weights (a control "
                        "expected to lose to the baseline: the verdict must then say negative transfer)")
    args = p.parse_args()
    threads = set_threads(args.threads)
    n = 150 if args.quick else args.n
    seeds = args.seeds[:1] if args.quick else args.seeds

    from transferkit.data.datasets import load_fashion_mnist, load_mnist5k

    fashion = load_fashion_mnist("train")
    names = list(fashion.class_names) if fashion.class_names is not None else [str(c) for c in range(10)]
    mnist = load_mnist5k()
    results: dict = {"benchmark": "objectives", "environment": environment(threads), "backbone": args.backbone,
                     "pretrained": not args.random_init,
                     "n_train": n, "n_test": n, "seeds": seeds, "tasks": {}}
    with own_cache_dir(args.cache_dir, "tk-bench-objectives"):
        for task in args.tasks.split(","):
            runs = []
            for seed in seeds:
                rng = np.random.default_rng(seed)
                source = mnist.X if task == "count" else fashion.X
                order = rng.permutation(len(source))
                half = len(order) // 2
                A, B = source[order[:half]], source[order[half:]]  # disjoint source images for train / test
                if task == "multilabel":
                    labels = fashion.y[order]
                    X, y = multilabel_canvases(A, labels[:half], n, rng, names)
                    Xt, yt = multilabel_canvases(B, labels[half:], n, rng, names)
                elif task == "brightness":
                    (X, y), (Xt, yt) = brightness_canvases(A, n, rng), brightness_canvases(B, n, rng)
                elif task == "zoom":
                    (X, y), (Xt, yt) = zoom_canvases(A, n, rng), zoom_canvases(B, n, rng)
                else:
                    (X, y), (Xt, yt) = count_canvases(A, n, rng), count_canvases(B, n, rng)
                log(f"{task} seed {seed}: {n} training canvases {X.shape[1:]}")
                runs.append({"seed": seed, **run_task(task, X, y, Xt, yt, args.backbone, seed, not args.random_init)})
                log(f"{task} seed {seed}: {runs[-1]}")
            keys = list(runs[0]["transfer"])
            results["tasks"][task] = {
                "transfer": {k: f"{np.mean([r['transfer'][k] for r in runs]):.4f} ± {np.std([r['transfer'][k] for r in runs]):.4f}" for k in keys},
                "baseline": {k: f"{np.mean([r['baseline'][k] for r in runs]):.4f} ± {np.std([r['baseline'][k] for r in runs]):.4f}" for k in keys},
                "verdicts": [r["verdict"] for r in runs], "runs": runs}
    emit(results)


if __name__ == "__main__":
    main()
