"""The end-to-end `fit` workflow: split, train, compare with the from-scratch baseline, report, save.

This is what ``transferkit fit`` and ``transferkit quickstart`` run; the CLI only parses arguments and
calls :func:`run_fit`. The output directory receives the saved model (``model.json`` +
``head.safetensors``), ``results.json`` and ``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.datasets import Dataset, check_labels
from .estimators import TransferClassifier
from .evaluation.baselines import make_baseline
from .evaluation.metrics import classification_metrics
from .evaluation.verdict import strongest_baseline, transfer_verdict
from .exceptions import ConfigError, DataError

log = logging.getLogger(__name__)

MAX_PROJECTION_POINTS = 1000


def split_dataset(dataset: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Stratified train/test split; every class keeps at least one item on each side."""
    from sklearn.model_selection import train_test_split

    y = check_labels(dataset.y)
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        bad = classes[int(np.argmin(counts))].item()
        raise DataError(
            f"class {bad!r} has only {counts.min()} item; each class needs at least 2 so one can be held out "
            "for testing (add items, or pass a separate test set with --test)"
        )
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size={test_size} must be between 0 and 1 (e.g. 0.2)")
    n_test = max(int(round(test_size * len(y))), len(classes))
    if len(y) - n_test < len(classes):
        raise DataError(
            f"{len(y)} items are too few to hold out {n_test} for testing and train on {len(classes)} classes; "
            "add items or pass a separate test set with --test"
        )
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=n_test, stratify=y, random_state=seed)
    return dataset.subset(np.sort(train_idx)), dataset.subset(np.sort(test_idx))


def project_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D projection for the report: PCA to 50 dimensions, then t-SNE (PCA alone for tiny sets)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    X = np.asarray(features, dtype=np.float64)
    n = len(X)
    if n < 10:
        k = min(2, X.shape[1], n)
        pts = PCA(n_components=k, random_state=seed).fit_transform(X) if n >= 2 else np.zeros((n, 2))
        if pts.shape[1] < 2:
            pts = np.hstack([pts, np.zeros((n, 2 - pts.shape[1]))])
        return pts, "PCA"
    k = min(50, X.shape[1], n)
    reduced = PCA(n_components=k, random_state=seed).fit_transform(X)
    perplexity = float(min(30.0, (n - 1) / 3.0))
    pts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return pts, f"PCA ({k}) → t-SNE (perplexity {perplexity:g})"


def run_fit(
    dataset: Dataset,
    out: str | Path,
    *,
    test: Dataset | None = None,
    test_size: float = 0.2,
    backbone: str = "mobilenet_v2",
    layer: str | None = "last",
    head: str = "logreg",
    head_params: dict[str, Any] | None = None,
    image_size: int | None = None,
    weights: str | None = None,
    engine: str = "auto",
    seed: int = 0,
    progress: bool = True,
    report: bool = True,
    say: Callable[[str], None] | None = None,
    rank_backbones: str | list[str] | None = None,
    strategy: str = "feature-extraction",
    fine_tune: dict[str, Any] | None = None,
    resume: bool = False,
    compare: bool = True,
    tta: str = "none",
) -> dict[str, Any]:
    """Train a transfer model and the baseline on one split, evaluate both, write everything to ``out``.

    ``strategy="fine-tune"`` fine-tunes the backbone (``fine_tune``: further :class:`TransferClassifier`
    parameters such as ``epochs``, ``unfreeze``, ``augment``, ``lr``, ``fine_tune_params``); its training
    state is checkpointed in ``out/checkpoint`` after every epoch and ``resume=True`` continues from there.
    For images a small CNN is also trained from scratch through the same loop, and the verdict is against the
    stronger (on the test set) of it and the raw-pixel baseline; the results gain
    ``history`` (learning curves) and, with ``compare``, feature extraction with the same backbone joins the
    ``comparison`` table of every model trained on the split.

    ``backbone="auto"`` first ranks the backbones of the data's modality (``rank_backbones``: a subset;
    ``layer``: the layer set to rank, ``last``/``stages``/``all``) on the training split only and uses the
    recommended backbone and layer; the ranking is stored in the results under ``ranking``.

    Returns the results dictionary (also written to ``out/results.json``).
    """
    say = say or (lambda msg: log.info(msg))
    t_start = time.perf_counter()
    out = Path(out)
    if test is None:
        train, test = split_dataset(dataset, test_size, seed)
    else:
        train = dataset
        check_labels(train.y)
        check_labels(test.y, what="test labels", min_classes=1)
        unknown = sorted(set(map(str, np.unique(test.y))) - set(map(str, np.unique(train.y))))
        if unknown:
            raise DataError(f"the test set has classes the training set lacks: {', '.join(unknown[:5])}; "
                            "use the same class names in both")
    if train.modality != test.modality:
        raise DataError(f"training data is {train.modality} but test data is {test.modality}")

    ranking = None
    if rank_backbones is not None and backbone != "auto":
        raise ConfigError(f"candidates to rank were given but --backbone is {backbone!r}; use --backbone auto with them")
    if backbone == "auto":
        from .selection.ranking import rank_for_fit

        if weights is not None:
            raise ConfigError("--weights belongs to one backbone; name it with --backbone instead of auto")
        ranking = rank_for_fit(train.X, train.y, modality=train.modality, layer=layer, backbones=rank_backbones,
                               image_size=image_size, engine=engine, seed=seed, progress=progress,
                               dataset_name=dataset.name, say=say)
        backbone, layer = ranking.recommendation["backbone"], ranking.recommendation["layer"]
        say(f"ranking recommends {backbone} at {layer} ({ranking.recommendation['strategy']}): "
            f"{ranking.recommendation['why']}")

    fine_tuning = strategy == "fine-tune"
    clf = TransferClassifier(
        backbone=backbone, layer=layer, head=head, head_params=head_params, image_size=image_size,
        weights=weights, engine=engine, random_state=seed, progress=progress, strategy=strategy, tta=tta,
        **({**(fine_tune or {}), "checkpoint_dir": str(out / "checkpoint"), "resume": resume} if fine_tuning else {}),
    )
    from .backbones import get_config

    config = get_config(backbone)
    if config.modality != train.modality:
        raise DataError(
            f"backbone {config.name!r} takes {config.modality} input but the data is {train.modality}; "
            f"pick a {train.modality} backbone (see `transferkit backbones`)"
        )
    if fine_tuning:
        clf._validate()  # a bad option fails here, before anything is trained
        augment = f", augment {clf.augment}" if train.modality == "image" else ""  # augmentation is for images only
        say(f"fine-tuning {config.name} on {len(train)} items (unfreeze {clf.unfreeze}{augment}), testing on {len(test)}")
    else:
        say(f"training {config.name} ({clf.layer or 'last'} layer) + {head} head on {len(train)} items, "
            f"testing on {len(test)}")
    t0 = time.perf_counter()
    clf.fit(train.X, train.y)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    test_features = clf.features(test.X)
    pred = clf.predict_from_features(test_features)
    predict_s = time.perf_counter() - t0

    others: list[tuple[str, str, Any, float]] = []  # (strategy, model, predictions, seconds) for the comparison
    scratch: list[tuple[Any, Any, float]] = []  # (model, test predictions, seconds) of each from-scratch model
    if fine_tuning and train.modality == "image":
        from .strategies.from_scratch import SmallCNNClassifier

        say("training the from-scratch baselines (small CNN, same loop and augmentation; raw-pixel LR)")
        t0 = time.perf_counter()
        cnn = SmallCNNClassifier(augment=clf.augment, random_state=seed, progress=progress).fit(train.X, train.y)
        scratch.append((cnn, cnn.predict(test.X), time.perf_counter() - t0))
    else:
        say(f"training the from-scratch baseline ({'raw pixels' if train.modality == 'image' else 'TF-IDF'})")
    t0 = time.perf_counter()
    raw = make_baseline(train.modality, random_state=seed).fit(train.X, train.y)
    scratch.append((raw, raw.predict(test.X), time.perf_counter() - t0))
    best = strongest_baseline(test.y, [p for _, p, _ in scratch])  # the verdict's baseline
    baseline, base_pred, baseline_s = scratch[best]
    others += [("from scratch", m.name, p, s) for i, (m, p, s) in enumerate(scratch) if i != best]
    if fine_tuning and compare:
        say(f"training feature extraction with {config.name} for the comparison")
        t0 = time.perf_counter()
        fe = TransferClassifier(backbone=backbone, layer=layer, weights=weights, engine=engine, random_state=seed,
                                progress=progress, tta=tta).fit(train.X, train.y)
        others.insert(0, ("feature-extraction", config.name, fe.predict(test.X), time.perf_counter() - t0))

    labels = clf.classes_
    names = dataset.display_labels(labels)
    metrics = classification_metrics(test.y, pred, labels=labels, names=names)
    base_metrics = classification_metrics(test.y, base_pred, labels=labels, names=names)
    verdict = transfer_verdict(test.y, pred, base_pred, baseline_name=baseline.name, modality=train.modality, seed=seed)
    if ranking is not None:  # concrete alternatives from the ranking come first
        from .selection.ranking import ranking_next_steps

        verdict["next_steps"] = ranking_next_steps(ranking, verdict["verdict"]) + verdict["next_steps"]

    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(test_features), size=min(len(test_features), MAX_PROJECTION_POINTS), replace=False))
    points, method = project_2d(test_features[keep], seed)
    y_test = np.asarray(test.y)
    names_by_label = dict(zip(map(str, labels), names, strict=True))

    train_classes, train_counts = np.unique(np.asarray(train.y), return_counts=True)
    results: dict[str, Any] = {
        "transferkit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset": {
            "name": dataset.name,
            "modality": train.modality,
            "n_items": len(train) + len(test),
            "n_train": len(train),
            "n_test": len(test),
            "classes": names,
            "class_counts": {names_by_label.get(str(c), str(c)): int(n) for c, n in zip(train_classes, train_counts, strict=True)},
            "split": "separate test set" if dataset is train else f"stratified {test_size:g} held out, seed {seed}",
        },
        "model": {
            "backbone": clf.backbone_,
            "layer": clf.layer_,
            "head": (("dropout + linear" if clf.head_.kind == "linear" else f"{clf.head_.kind}, refitted")
                     if fine_tuning else head),
            "head_params": clf.head_.params,
            "strategy": strategy,
            "image_size": (getattr(clf, "image_size_", None) or image_size or config.input_size)
            if config.modality == "image" else None,
            "engine": clf.engine_,
            "tta": tta,
            "weights_id": clf.weights_id_,
            "n_features": clf.n_features_,
        },
        "metrics": metrics,
        "baseline": {"name": baseline.name, "description": baseline.description_, "metrics": base_metrics,
                     "candidates": [m.name for m, _, _ in scratch]},
        "verdict": verdict,
        "timings": {
            **clf.fit_timings_,
            "predict_s": predict_s,
            "baseline_s": baseline_s,
            "total_s": time.perf_counter() - t_start,
        },
        "extraction": clf.extract_stats_,
        "projection": {
            "method": method,
            "points": np.round(points, 4).tolist(),
            "labels": [names_by_label.get(str(v), str(v)) for v in y_test[keep]],
        },
    }
    if ranking is not None:
        results["ranking"] = ranking.to_dict()
    if fine_tuning:
        results["model"]["fine_tune"] = {k: clf.get_params()[k] for k in
                                         ("epochs", "head_epochs", "lr", "unfreeze", "augment", "fine_tune_params")}
        results["history"] = clf.history_
    rows = [(strategy, config.name, pred, fit_s), ("from scratch", baseline.name, base_pred, baseline_s), *others]
    results["comparison"] = [_comparison_row(s, m, test.y, p, t, labels, names) for s, m, p, t in rows]
    write_outputs(out, clf, results, report=report)
    return results


def _comparison_row(strategy: str, model: str, y_true: Any, pred: Any, seconds: float, labels: Any,
                    names: list[str]) -> dict[str, Any]:
    m = classification_metrics(y_true, pred, labels=labels, names=names)
    return {"strategy": strategy, "backbone": model, "accuracy": m["accuracy"], "f1_macro": m["f1_macro"],
            "time_s": round(float(seconds), 2)}


def write_outputs(out: Path, model: Any, results: dict[str, Any], *, report: bool = True) -> None:
    """Write the model, ``results.json`` and ``report.html`` to ``out``.

    Everything that can fail on content (rendering the report, serialising the results) happens in memory
    first; then each file is written atomically, model files first. An earlier run's files in ``out`` stay
    intact if anything fails before the writes start.
    """
    import json

    from ._utils import _json_default, atomic_write_text

    html = None
    if report:
        from .evaluation.report import report_html

        html = report_html(results)
    results_text = json.dumps(results, indent=2, sort_keys=True, default=_json_default) + "\n"
    model.save(out)
    atomic_write_text(out / "results.json", results_text)
    if html is not None:
        atomic_write_text(out / "report.html", html)
    elif (out / "report.html").exists():
        (out / "report.html").unlink()  # a report of an earlier run would contradict results.json
