#!/usr/bin/env python
"""Few-label Fashion-MNIST accuracy table over seeds, one row per *arm*.

Protocol (per seed): 100 labelled images per class drawn from the Fashion-MNIST training set and 2,000 test
images drawn from the test set, both with ``numpy.random.default_rng(seed)``; every arm trains on the same
1,000 images and is scored on the same 2,000. Heads and folds are seeded with the same seed.

Arms are a registry of functions (``@arm(...)``): ``fn(split, ctx) -> {"accuracy": float, ...}``. The
fine-tuning work adds arms by registering more functions; ``--arms`` picks which run (``--list-arms``).

Default arms:

- ``raw_pixels``: ``transferkit.evaluation.baselines.RawPixelClassifier`` (logistic regression on pixels);
- ``mobilenet_v2/last``, ``tf_efficientnet_lite0/last``: ``TransferClassifier`` with the default head;
- ``mobilenet_v2/cv_layer``, ``tf_efficientnet_lite0/cv_layer``: the same at the layer with the best
  5-fold cross-validated accuracy of ``TransferClassifier`` on the 1,000 *training* images (test labels are
  never looked at), among a handful of candidate layers.

Test-time augmentation arms (not in the default set): ``*/last+hflip``, ``*/cv_layer+hflip`` — the same with
``tta="hflip"`` (each image's embedding averaged with its mirror image's, for training and test images).

Exploration arms (not in the default set; every choice is made by cross-validation on the training images):
``*/cv_size`` (image size 160 vs 224 at the CV-chosen layer), ``*/cv_head`` (logreg vs svm vs mlp at the
last layer), ``*/concat2`` (pooled features of the last layer concatenated with the CV-best other layer),
``*/concat2_cv`` (concatenation only if CV prefers it), ``auto_cv`` (the CV-best of all the above).

Usage: python bench/seed_table.py [--seeds 0,1,2] [--arms a,b,...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

# -- data ------------------------------------------------------------------------------------------------


@dataclass
class Split:
    seed: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray


_DATA: dict[str, Any] = {}


def fashion_mnist() -> tuple[Any, Any]:
    if not _DATA:
        from transferkit.data.datasets import load_fashion_mnist

        _DATA["train"], _DATA["test"] = load_fashion_mnist("train"), load_fashion_mnist("test")
    return _DATA["train"], _DATA["test"]


def make_split(seed: int, n_per_class: int, n_test: int) -> Split:
    train, test = fashion_mnist()
    rng = np.random.default_rng(seed)
    tr = np.concatenate([rng.choice(np.flatnonzero(train.y == c), size=n_per_class, replace=False)
                         for c in np.unique(train.y)])
    tr = rng.permutation(tr)
    te = np.sort(rng.choice(len(test.y), size=n_test, replace=False))
    return Split(seed, train.X[tr], train.y[tr], test.X[te], test.y[te], tr, te)


# -- arm registry ----------------------------------------------------------------------------------------


@dataclass
class Context:
    """What arms share within a run: options and a memo of cross-validation results."""

    args: argparse.Namespace
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def folds(self) -> int:
        return int(self.args.cv_folds)


ArmFn = Callable[[Split, Context], dict[str, Any]]


@dataclass
class Arm:
    name: str
    fn: ArmFn
    description: str
    default: bool


ARMS: dict[str, Arm] = {}


def arm(name: str, description: str, default: bool = False) -> Callable[[ArmFn], ArmFn]:
    """Register an arm: ``fn(split, ctx)`` returns at least ``{"accuracy": float}``."""

    def deco(fn: ArmFn) -> ArmFn:
        if name in ARMS:
            raise ValueError(f"arm {name!r} registered twice")
        ARMS[name] = Arm(name, fn, description, default)
        return fn

    return deco


# -- building blocks (library calls only) ----------------------------------------------------------------

CANDIDATE_LAYERS = {
    "mobilenet_v2": ["features.7", "features.10", "features.13", "features.14", "features.16", "features.17",
                     "features.18"],
    "tf_efficientnet_lite0": ["stem", "blocks.3", "blocks.4", "blocks.5", "blocks.6", "conv_head"],
}


def classifier(backbone: str, layer: str, seed: int, image_size: int | None = None, head: str = "logreg",
               tta: str = "none"):
    from transferkit import TransferClassifier

    return TransferClassifier(backbone=backbone, layer=layer, head=head, image_size=image_size,
                              random_state=seed, progress=False, tta=tta)


def features(backbone: str, layer: str, X: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """Pooled features through the library's cached Extractor."""
    from transferkit.extraction import Extractor

    return Extractor(backbone, layer, image_size=image_size, show_progress=False).extract(X)


def cv_folds(split: Split, ctx: Context):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=ctx.folds, shuffle=True, random_state=split.seed)


def cv_accuracy_of_features(F: np.ndarray, y: np.ndarray, split: Split, ctx: Context, head: str = "logreg") -> float:
    """K-fold CV accuracy of the library's head (``fit_head``, i.e. what TransferClassifier trains) on
    training features only."""
    from transferkit.heads import fit_head

    classes, y_idx = np.unique(y, return_inverse=True)
    accs = []
    for tr, va in cv_folds(split, ctx).split(F, y_idx):
        head_arrays, _ = fit_head(head, F[tr], y_idx[tr], random_state=split.seed)
        accs.append(float(np.mean(head_arrays.predict_index(F[va]) == y_idx[va])))
    return float(np.mean(accs))


def _norm_size(backbone: str, image_size: int | None) -> int | None:
    """``None`` for the backbone's own input size, so 224 and the default share one memo entry."""
    from transferkit.backbones import get_config

    return None if image_size is None or image_size == get_config(backbone).input_size else int(image_size)


def cv_score(split: Split, ctx: Context, backbone: str, layers: tuple[str, ...], image_size: int | None = None,
             head: str = "logreg") -> float:
    """CV accuracy on the training images of a config (one layer, or several layers concatenated)."""
    image_size = _norm_size(backbone, image_size)
    key = (split.seed, backbone, layers, image_size, head)
    if key not in ctx.memo:
        F = np.hstack([features(backbone, layer, split.X_train, image_size) for layer in layers])
        t0 = time.perf_counter()
        ctx.memo[key] = cv_accuracy_of_features(F, split.y_train, split, ctx, head)
        log(f"  seed {split.seed} CV {backbone} {'+'.join(layers)} size={image_size or 'default'} head={head}: "
            f"{ctx.memo[key]:.4f} ({time.perf_counter() - t0:.1f} s)")
    return ctx.memo[key]


def fit_and_score(split: Split, backbone: str, layers: tuple[str, ...], image_size: int | None = None,
                  head: str = "logreg") -> float:
    """Train on all training images and score on the test images."""
    if len(layers) == 1:
        clf = classifier(backbone, layers[0], split.seed, image_size, head).fit(split.X_train, split.y_train)
        return float(clf.score(split.X_test, split.y_test))
    # concatenated layers: the library has no multi-layer option, so the same head on stacked features
    from transferkit.heads import fit_head

    Ftr = np.hstack([features(backbone, layer, split.X_train, image_size) for layer in layers])
    Fte = np.hstack([features(backbone, layer, split.X_test, image_size) for layer in layers])
    classes, y_idx = np.unique(split.y_train, return_inverse=True)
    head_arrays, _ = fit_head(head, Ftr, y_idx, random_state=split.seed)
    return float(np.mean(classes[head_arrays.predict_index(Fte)] == split.y_test))


def best_layer(split: Split, ctx: Context, backbone: str, image_size: int | None = None) -> tuple[str, dict[str, float]]:
    """The candidate layer with the best CV accuracy on the training images (ties: the earlier candidate)."""
    layers = ctx.args.candidates.get(backbone, CANDIDATE_LAYERS[backbone])
    scores = {layer: cv_score(split, ctx, backbone, (layer,), image_size) for layer in layers}
    return max(layers, key=lambda layer: scores[layer]), scores


def choose(options: dict[str, tuple[float, Callable[[], float], dict[str, Any]]]) -> dict[str, Any]:
    """Pick the option with the best CV score, then (only then) evaluate it on the test set."""
    name = max(options, key=lambda k: options[k][0])
    cv, run, info = options[name]
    return {"accuracy": run(), "chosen": name, "cv_accuracy": cv,
            "cv_scores": {k: round(v[0], 4) for k, v in options.items()}, **info}


# -- the arms --------------------------------------------------------------------------------------------


@arm("raw_pixels", "RawPixelClassifier: logistic regression on raw pixels, C by CV", default=True)
def raw_pixels(split: Split, ctx: Context) -> dict[str, Any]:
    from transferkit.evaluation.baselines import RawPixelClassifier

    clf = RawPixelClassifier(random_state=split.seed).fit(split.X_train, split.y_train)
    return {"accuracy": float(clf.score(split.X_test, split.y_test)), "description": clf.description_}


def _register_backbone_arms(backbone: str) -> None:
    @arm(f"{backbone}/last", f"{backbone} last layer + default logreg head (TransferClassifier)", default=True)
    def last(split: Split, ctx: Context) -> dict[str, Any]:
        clf = classifier(backbone, "last", split.seed).fit(split.X_train, split.y_train)
        return {"accuracy": float(clf.score(split.X_test, split.y_test)), "layer": clf.layer_,
                "head_params": clf.head_.params, "engine": clf.engine_}

    @arm(f"{backbone}/cv_layer", f"{backbone} at the layer with the best {{k}}-fold CV accuracy on the training "
         "images + default head", default=True)
    def cv_layer(split: Split, ctx: Context) -> dict[str, Any]:
        layer, scores = best_layer(split, ctx, backbone)
        clf = classifier(backbone, layer, split.seed).fit(split.X_train, split.y_train)
        return {"accuracy": float(clf.score(split.X_test, split.y_test)), "layer": layer,
                "cv_accuracy_by_layer": {k: round(v, 4) for k, v in scores.items()},
                "head_params": clf.head_.params}

    @arm(f"{backbone}/last+hflip", f"{backbone} last layer, embeddings averaged with the mirror image's "
         "(tta='hflip'), default head")
    def last_hflip(split: Split, ctx: Context) -> dict[str, Any]:
        clf = classifier(backbone, "last", split.seed, tta="hflip").fit(split.X_train, split.y_train)
        return {"accuracy": float(clf.score(split.X_test, split.y_test)), "layer": clf.layer_,
                "head_params": clf.head_.params}

    @arm(f"{backbone}/cv_layer+hflip", f"{backbone} at the CV-best layer (chosen without flips, as cv_layer), "
         "embeddings averaged with the mirror image's (tta='hflip'), default head")
    def cv_layer_hflip(split: Split, ctx: Context) -> dict[str, Any]:
        layer, _ = best_layer(split, ctx, backbone)
        clf = classifier(backbone, layer, split.seed, tta="hflip").fit(split.X_train, split.y_train)
        return {"accuracy": float(clf.score(split.X_test, split.y_test)), "layer": layer,
                "head_params": clf.head_.params}

    @arm(f"{backbone}/cv_size", f"{backbone}: image size 160 vs 224 (each at its CV-best layer), chosen by CV")
    def cv_size(split: Split, ctx: Context) -> dict[str, Any]:
        options = {}
        for size in ctx.args.sizes:
            layer, scores = best_layer(split, ctx, backbone, size)
            options[f"{size}px/{layer}"] = (
                scores[layer], lambda s=size, la=layer: fit_and_score(split, backbone, (la,), s), {})
        return choose(options)

    @arm(f"{backbone}/cv_head", f"{backbone} last layer: logreg vs svm vs mlp head, chosen by CV")
    def cv_head(split: Split, ctx: Context) -> dict[str, Any]:
        last_layer = CANDIDATE_LAYERS[backbone][-1]
        options = {h: (cv_score(split, ctx, backbone, (last_layer,), None, h),
                       lambda h=h: fit_and_score(split, backbone, (last_layer,), None, h), {})
                   for h in ctx.args.heads}
        return choose(options)

    @arm(f"{backbone}/concat2", f"{backbone}: last layer concatenated with the CV-best other layer")
    def concat2(split: Split, ctx: Context) -> dict[str, Any]:
        last_layer = CANDIDATE_LAYERS[backbone][-1]
        layer, scores = best_layer(split, ctx, backbone)
        if layer == last_layer:  # the best other layer
            others = {k: v for k, v in scores.items() if k != last_layer}
            layer = max(others, key=lambda k: others[k])
        pair = (layer, last_layer)
        return {"accuracy": fit_and_score(split, backbone, pair), "layers": list(pair),
                "cv_accuracy": cv_score(split, ctx, backbone, pair)}

    @arm(f"{backbone}/concat2_cv", f"{backbone}: CV-best single layer vs last+CV-best-other concatenated")
    def concat2_cv(split: Split, ctx: Context) -> dict[str, Any]:
        return choose(_backbone_options(split, ctx, backbone, sizes=False, heads=False))


def _backbone_options(split: Split, ctx: Context, backbone: str, sizes: bool = True, heads: bool = True):
    """Every principled config of one backbone with its CV score and a deferred test evaluation."""
    last_layer = CANDIDATE_LAYERS[backbone][-1]
    opts: dict[str, tuple[float, Callable[[], float], dict[str, Any]]] = {}
    layer, scores = best_layer(split, ctx, backbone)
    opts[f"{backbone}/{layer}"] = (scores[layer], lambda: fit_and_score(split, backbone, (layer,)), {})
    others = {k: v for k, v in scores.items() if k != last_layer}
    other = max(others, key=lambda k: others[k])
    pair = (other, last_layer)
    opts[f"{backbone}/{other}+{last_layer}"] = (cv_score(split, ctx, backbone, pair),
                                                 lambda: fit_and_score(split, backbone, pair), {})
    if sizes:
        for size in ctx.args.sizes:
            if size == 224:
                continue
            la, sc = best_layer(split, ctx, backbone, size)
            opts[f"{backbone}/{size}px/{la}"] = (sc[la], lambda s=size, la=la: fit_and_score(split, backbone, (la,), s), {})
    if heads:
        for h in ctx.args.heads:
            if h == "logreg":
                continue
            opts[f"{backbone}/{last_layer}/{h}"] = (cv_score(split, ctx, backbone, (last_layer,), None, h),
                                                    lambda h=h: fit_and_score(split, backbone, (last_layer,), None, h), {})
    return opts


for _bb in CANDIDATE_LAYERS:
    _register_backbone_arms(_bb)


@arm("auto_cv", "the CV-best config over both backbones (layer, last+other concat, size, head): what an "
     "'auto' mode of the library could do")
def auto_cv(split: Split, ctx: Context) -> dict[str, Any]:
    options = {}
    for backbone in CANDIDATE_LAYERS:
        options.update(_backbone_options(split, ctx, backbone))
    return choose(options)


# -- training arms (the fine-tuning issue): from-scratch CNN and two-stage fine-tuning ------------------
# Library defaults throughout (nothing tuned on the test images): TransferClassifier(strategy="fine-tune")
# with its default stage lengths, learning rates, unfreezing, regularisation and 112 px images, and
# SmallCNNClassifier (the fine-tuning workflow's baseline) with its defaults.

LARGER_BACKBONES = ("tf_efficientnet_lite1", "tf_efficientnet_lite2")  # packaged by issue 17
TRAINING_ARMS = ("scratch_cnn", "auto/fine_tune", "mobilenet_v2/fine_tune", "mobilenet_v2/fine_tune_aug", "mobilenet_v2/fine_tune+hflip",
                 "mobilenet_v2/fine_tune_aug+hflip", *(f"{b}/fine_tune" for b in LARGER_BACKBONES),
                 *(f"{b}/fine_tune_aug" for b in LARGER_BACKBONES))


def _training_info(history: dict[str, Any]) -> dict[str, Any]:
    return {"epochs_run": {s["name"]: s["epochs_run"] for s in history["stages"]},
            "best_epoch": {s["name"]: s["best_epoch"] for s in history["stages"]}}


def _ft_options(ctx: Context) -> dict[str, Any]:
    quick = {"epochs": 1, "head_epochs": 2, "image_size": 64} if ctx.args.quick else {}
    return {**quick, **ctx.args.ft_options}


@arm("scratch_cnn", "SmallCNNClassifier: small CNN (32-64-128) trained from random init through the same loop, "
     "light augmentation, defaults", default=True)
def scratch_cnn(split: Split, ctx: Context) -> dict[str, Any]:
    from transferkit.estimators import SmallCNNClassifier

    clf = SmallCNNClassifier(random_state=split.seed, **({"epochs": 3} if ctx.args.quick else {}))
    clf.fit(split.X_train, split.y_train)
    return {"accuracy": float(clf.score(split.X_test, split.y_test)), "description": clf.description_,
            **_training_info(clf.history_)}


def _fine_tuned(split: Split, ctx: Context, augment: str, backbone: str = "mobilenet_v2") -> Any:
    """The fine-tuned classifier of this split and augmentation (fitted once per run: the ``+hflip`` arms
    score the same fitted model with mirror-averaged prediction features)."""
    from transferkit import TransferClassifier

    key = ("fine-tuned", backbone, split.seed, augment)
    if key not in ctx.memo:
        clf = TransferClassifier(backbone, strategy="fine-tune", augment=augment, random_state=split.seed,
                                 progress=False, cache=False, **_ft_options(ctx))
        ctx.memo[key] = clf.fit(split.X_train, split.y_train)
    return ctx.memo[key]


def _fine_tune_arm(augment: str, tta: str = "none", backbone: str = "mobilenet_v2") -> ArmFn:
    def run(split: Split, ctx: Context) -> dict[str, Any]:
        clf = _fine_tuned(split, ctx, augment, backbone)
        clf.tta = tta  # read at prediction time only
        return {"accuracy": float(clf.score(split.X_test, split.y_test)), "image_size": clf.image_size_,
                "unfreeze": clf.unfreeze, "tta": tta, **_training_info(clf.history_)}

    return run


arm("mobilenet_v2/fine_tune", "mobilenet_v2 two-stage fine-tuning (TransferClassifier strategy='fine-tune', "
    "defaults), no augmentation", default=True)(_fine_tune_arm("none"))
arm("mobilenet_v2/fine_tune_aug", "mobilenet_v2 two-stage fine-tuning (defaults) with the default light "
    "augmentation (random resized crop + flip)", default=True)(_fine_tune_arm("light"))
arm("mobilenet_v2/fine_tune+hflip", "the fine_tune arm's model (fitted once) predicting on mirror-averaged "
    "features (tta='hflip')")(_fine_tune_arm("none", "hflip"))
arm("mobilenet_v2/fine_tune_aug+hflip", "the fine_tune_aug arm's model (fitted once) predicting on "
    "mirror-averaged features (tta='hflip')")(_fine_tune_arm("light", "hflip"))

for _b in LARGER_BACKBONES:
    arm(f"{_b}/fine_tune", f"{_b} two-stage fine-tuning (defaults), no augmentation")(_fine_tune_arm("none", backbone=_b))
    arm(f"{_b}/fine_tune_aug", f"{_b} two-stage fine-tuning (defaults), light augmentation")(
        _fine_tune_arm("light", backbone=_b))


@arm("auto/fine_tune", "backbone='auto' + strategy='fine-tune': the backbone the ranking of the 1,000 training "
     "images recommends (rank_for_fit over every registered image backbone's last layer with the random-init "
     "controls, as `fit --backbone auto`), fine-tuned as the */fine_tune arms (fitted once per run: run it with "
     "those arms and an identical pick costs nothing)")
def auto_fine_tune(split: Split, ctx: Context) -> dict[str, Any]:
    from transferkit.selection.ranking import rank_for_fit

    ranking = rank_for_fit(split.X_train, split.y_train, modality="image", layer="last", seed=split.seed,
                           progress=False, say=log)
    picked = ranking.recommendation["backbone"]
    scores = {r.candidate.label: rounded(float(r.scores[ranking.score]))
              for r in ranking.results if r.scores.get(ranking.score) is not None}
    return {**_fine_tune_arm("none", backbone=picked)(split, ctx), "chosen": picked,
            "ranking_score": ranking.score, "ranking": scores}


def _fine_tuning_summary(table: dict[str, Any], args: argparse.Namespace) -> dict[str, Any] | None:
    """Target of the fine-tuning issue: fine-tune + augmentation (its better variant: plain or ``+hflip``
    prediction) >= ft_target and above every other arm."""
    variants = [k for k in ("mobilenet_v2/fine_tune_aug", "mobilenet_v2/fine_tune_aug+hflip") if k in table]
    if not variants:
        return None
    key = max(variants, key=lambda k: table[k]["mean"])  # with or without mirror-averaged prediction
    others = {n: r["mean"] for n, r in table.items() if n not in variants}
    best_other = max(others, key=lambda n: others[n]) if others else None
    return {"arm": key, "mean": table[key]["mean"], "target": args.ft_target,
            "best_other_arm": best_other, "best_other_mean": others.get(best_other),
            "options": args.ft_options,
            "meets_target": bool(table[key]["mean"] >= args.ft_target and all(table[key]["mean"] > v for v in others.values()))}


# -- driver ----------------------------------------------------------------------------------------------


def parse_candidates(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        backbone, _, layers = item.partition("=")
        out[backbone] = [x for x in layers.split(",") if x]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--arms", default=None, help="comma-separated arm names (default: the default arms)")
    p.add_argument("--list-arms", action="store_true")
    p.add_argument("--n-per-class", type=int, default=100, help="labelled training images per class")
    p.add_argument("--n-test", type=int, default=2000, help="test images drawn from the test set")
    p.add_argument("--cv-folds", type=int, default=5)
    p.add_argument("--candidates", action="append", default=[],
                   help="override candidate layers, e.g. mobilenet_v2=features.14,features.18 (repeatable)")
    p.add_argument("--sizes", default="160,224", help="image sizes the cv_size arms compare")
    p.add_argument("--heads", default="logreg,svm,mlp", help="heads the cv_head arms compare")
    p.add_argument("--target", type=float, default=0.85, help="target accuracy of the best feature-extraction arm")
    p.add_argument("--ft-target", type=float, default=0.89, help="target accuracy of fine-tuning with augmentation")
    p.add_argument("--ft-option", action="append", default=[],
                   help="TransferClassifier option of the fine-tuning arms, NAME=JSON (repeatable; default: none)")
    args = p.parse_args()
    if args.list_arms:
        for a in ARMS.values():
            print(f"{a.name:32s} {'(default) ' if a.default else ''}{a.description}")
        return
    names = [a.name for a in ARMS.values() if a.default] if not args.arms else args.arms.split(",")
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        p.error(f"unknown arms {unknown}; known: {', '.join(ARMS)}")
    args.candidates = parse_candidates(args.candidates)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.heads = args.heads.split(",")
    args.ft_options = {k: json.loads(v) for k, _, v in (o.partition("=") for o in args.ft_option)}
    if args.quick:
        args.seeds = args.seeds[:1]
        args.n_per_class, args.n_test, args.cv_folds = 6, 60, 3
        args.candidates = {"mobilenet_v2": ["features.7", "features.18"], "tf_efficientnet_lite0": ["blocks.3", "conv_head"],
                           **args.candidates}
        args.sizes = [s for s in args.sizes if s <= 160] or [96]
    for bb, layers in args.candidates.items():
        if bb in CANDIDATE_LAYERS:
            last_layer = CANDIDATE_LAYERS[bb][-1]
            if last_layer not in layers:
                layers.append(last_layer)
    threads = set_threads(args.threads)
    ctx = Context(args)
    load_start = loadavg()
    log(f"arms: {', '.join(names)}; seeds {args.seeds}; load {load_start}")

    per_seed: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with own_cache_dir(args.cache_dir, "seedtable"):
        for seed in args.seeds:
            split = make_split(seed, args.n_per_class, args.n_test)
            for name in names:
                seed_everything(seed)
                log(f"seed {seed}: arm {name}")
                with CpuMonitor() as mon:
                    t0 = time.perf_counter()
                    res = ARMS[name].fn(split, ctx)
                    res["time_s"] = round(time.perf_counter() - t0, 1)
                res["seed"] = seed
                res["foreign_cpu_share"] = round(mon.foreign_share, 3)
                res["accuracy"] = round(float(res["accuracy"]), 4)
                per_seed[name].append(res)
                log(f"seed {seed}: {name}: accuracy {res['accuracy']:.4f} ({res['time_s']:.0f} s)"
                    + (f", layer {res['layer']}" if "layer" in res else "")
                    + (f", chosen {res['chosen']}" if "chosen" in res else ""))

    table = {}
    for name in names:
        accs = [r["accuracy"] for r in per_seed[name]]
        row = {
            "mean": rounded(statistics.mean(accs)),
            "std": rounded(statistics.stdev(accs)) if len(accs) > 1 else 0.0,
            "per_seed": accs,
            "mean_time_s": rounded(statistics.mean(r["time_s"] for r in per_seed[name]), 1),
            "time_s_per_seed": [r["time_s"] for r in per_seed[name]],
            "description": ARMS[name].description.replace("{k}", str(args.cv_folds)),
        }
        for key in ("layer", "chosen", "layers"):
            if any(key in r for r in per_seed[name]):
                row[f"{key}_per_seed"] = [r.get(key) for r in per_seed[name]]
        table[name] = row
    fe = {n: r for n, r in table.items() if n != "raw_pixels" and n not in TRAINING_ARMS}
    best = max(fe, key=lambda n: fe[n]["mean"]) if fe else None
    result = {
        "benchmark": "seed_table",
        "dataset": "fashion-mnist",
        "protocol": {
            "train": f"{args.n_per_class} per class from the training set, drawn with numpy default_rng(seed)",
            "test": f"{args.n_test} from the test set, drawn with the same generator",
            "layer_selection": f"{args.cv_folds}-fold stratified CV accuracy of the default logreg head on the "
                               "training images only",
            "std": "sample standard deviation over seeds (ddof=1)",
        },
        "seeds": args.seeds,
        "candidate_layers": {bb: args.candidates.get(bb, layers) for bb, layers in CANDIDATE_LAYERS.items()},
        "table": table,
        "best_feature_extraction_arm": best,
        "best_feature_extraction_mean": fe[best]["mean"] if best else None,
        "target": args.target,
        "meets_target": bool(best and fe[best]["mean"] >= args.target),
        "details": per_seed,
        "load_start": load_start,
        "load_end": loadavg(),
        "environment": environment(threads),
        "quick": bool(args.quick),
        "fine_tuning": _fine_tuning_summary(table, args),
    }
    emit(result)


if __name__ == "__main__":
    main()
