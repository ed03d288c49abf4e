"""The end-to-end `fit` workflow: split, train, compare with the from-scratch baseline, report, save.

This is what ``transferkit fit`` and ``transferkit quickstart`` run; the CLI only parses arguments and
calls :func:`run_fit`, which reads top to bottom as its steps:

1. :func:`split_dataset` (or check a given test set), 2. :func:`choose_backbone` (``auto``: rank first),
3. :func:`fit_transfer` (the chosen strategy), 4. :func:`fit_baselines` (the from-scratch models the
verdict compares with, and the strategy's comparisons), 5. the verdict, 6. :func:`assemble_results`,
7. :func:`write_outputs` (model, ``results.json`` and ``report.html`` as one folder, atomically).

Which strategy trains, which baselines and comparisons it asks for, and what it adds to the results and
the report come from the strategy registry (:mod:`transferkit.strategies`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data.datasets import Dataset, check_labels
from .estimators import TransferClassifier
from .exceptions import ConfigError, DataError
from .strategies import get_strategy

log = logging.getLogger(__name__)

MAX_PROJECTION_POINTS = 1000


@dataclass
class Trained:
    """One model trained on the split: what the results and the comparison table say about it."""

    strategy: str  # the comparison table's "strategy" column
    name: str  # the model's name (a backbone, or a baseline's name)
    predictions: np.ndarray  # on the test items
    seconds: float  # training + prediction
    description: str = ""


def split_dataset(dataset: Dataset, test_size: float, seed: int, *, stratify: bool = True) -> tuple[Dataset, Dataset]:
    """Train/test split; stratified by class (every class keeps at least one item on each side) unless
    ``stratify`` is off (multi-label tags, regression targets: a plain random split)."""
    from sklearn.model_selection import train_test_split

    if not stratify:
        if not 0.0 < test_size < 1.0:
            raise DataError(f"test_size={test_size} must be between 0 and 1 (e.g. 0.2)")
        n = len(dataset)
        n_test = max(1, int(round(test_size * n)))
        if n - n_test < 2:
            raise DataError(f"{n} items are too few to hold {n_test} out for testing; add items or pass --test")
        train_idx, test_idx = train_test_split(np.arange(n), test_size=n_test, random_state=seed)
        return dataset.subset(np.sort(train_idx)), dataset.subset(np.sort(test_idx))
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


def check_test_set(train: Dataset, test: Dataset, task: str = "classification") -> None:
    """A separate test set must use the training set's classes and modality."""
    if task != "classification":
        return
    check_labels(train.y)
    check_labels(test.y, what="test labels", min_classes=1)
    unknown = sorted(set(map(str, np.unique(test.y))) - set(map(str, np.unique(train.y))))
    if unknown:
        raise DataError(f"the test set has classes the training set lacks: {', '.join(unknown[:5])}; "
                        "use the same class names in both")


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


def choose_backbone(train: Dataset, dataset_name: str | None, backbone: str, layer: str | None, *,
                    rank_backbones: str | list[str] | None, weights: str | None, image_size: int | None,
                    engine: str, seed: int, progress: bool, say: Callable[[str], None]) -> tuple[str, str | None, Any]:
    """``(backbone, layer, ranking)``: the given ones, or with ``backbone="auto"`` the recommendation of a
    ranking on the training split (``layer`` then names the layer set to rank)."""
    if rank_backbones is not None and backbone != "auto":
        raise ConfigError(f"candidates to rank were given but --backbone is {backbone!r}; use --backbone auto with them")
    if backbone != "auto":
        return backbone, layer, None
    from .selection.ranking import rank_for_fit

    if weights is not None:
        raise ConfigError("--weights belongs to one backbone; name it with --backbone instead of auto")
    ranking = rank_for_fit(train.X, train.y, modality=train.modality, layer=layer, backbones=rank_backbones,
                           image_size=image_size, engine=engine, seed=seed, progress=progress,
                           dataset_name=dataset_name, say=say)
    rec = ranking.recommendation
    say(f"ranking recommends {rec['backbone']} at {rec['layer']} ({rec['strategy']}): {rec['why']}")
    return rec["backbone"], rec["layer"], ranking


def fit_transfer(clf: TransferClassifier, train: Dataset, test: Dataset,
                 say: Callable[[str], None]) -> tuple[Trained, np.ndarray]:
    """Fit the transfer model; returns it as a :class:`Trained` and its test features (for the map)."""
    from .backbones import get_config

    config = get_config(clf.backbone)
    if config.modality != train.modality:
        raise DataError(f"backbone {config.name!r} takes {config.modality} input but the data is {train.modality}; "
                        f"pick a {train.modality} backbone (see `transferkit backbones`)")
    configured = clf._configure()  # a bad option fails here, before anything is announced or trained
    say(f"training {config.name} with {clf.strategy} on {len(train)} items, testing on {len(test)}")
    t0 = time.perf_counter()
    clf._fit_configured(configured, train.X, train.y)
    fit_s = time.perf_counter() - t0
    for note in clf.strategy_.info.get("notes", []):  # e.g. the int8 accuracy guard's decision
        say(note)
    t0 = time.perf_counter()
    features = clf.features(test.X)
    pred = clf.predict_from_features(features)
    clf.predict_s_ = time.perf_counter() - t0
    return Trained(clf.strategy, config.name, pred, fit_s), features


def fit_baselines(clf: Any, train: Dataset, test: Dataset, *, compare: bool, seed: int,
                  progress: bool, say: Callable[[str], None]) -> tuple[list[Trained], list[Trained]]:
    """``(scratch, comparisons)``: the from-scratch models the verdict compares with (the modality's simple
    baseline and the strategy's own, e.g. the small CNN of fine-tuning), and, with ``compare``, the
    strategies the chosen one lists for the comparison table, each trained on the same split."""
    strategy = get_strategy(clf.strategy)
    objective = clf.objective_
    scratch: list[Trained] = []
    for name in strategy.scratch_baselines(train.modality):
        baseline = get_strategy(name)
        if not baseline.solves(objective.name):
            continue
        say(f"training the from-scratch baseline: {baseline.display_name or name} (same loop and augmentation)")
        t0 = time.perf_counter()
        model = clf.__class__(clf.backbone, strategy=name, augment=clf.augment, engine="torch", cache=False,
                              random_state=seed, progress=progress).fit(train.X, train.y)
        scratch.append(Trained("from scratch", baseline.display_name or name, model.predict(test.X),
                               time.perf_counter() - t0, model.strategy_.describe().get("description", "")))
    simple = objective.baseline(train.modality, random_state=seed)
    say(f"training the from-scratch baseline ({simple.name})")
    t0 = time.perf_counter()
    simple.fit(train.X, train.y)
    scratch.append(Trained("from scratch", simple.name, simple.predict(test.X), time.perf_counter() - t0,
                           simple.description_))
    comparisons: list[Trained] = []
    for name in strategy.comparisons if compare else ():
        say(f"training {name} with {clf.backbone} for the comparison")
        t0 = time.perf_counter()
        other = clf.__class__(clf.backbone, layer=clf.layer, weights=clf.weights, engine=clf.engine, strategy=name,
                              random_state=seed, progress=progress, tta=clf.tta,
                              **_task_params(clf)).fit(train.X, train.y)
        comparisons.append(Trained(name, clf.backbone_, other.predict(test.X), time.perf_counter() - t0))
    return scratch, comparisons


def _task_params(clf: Any) -> dict[str, Any]:
    return {"multilabel": clf.multilabel} if hasattr(clf, "multilabel") else {}


def make_estimator(task: str, **params: Any) -> Any:
    """The estimator of a task: ``classification`` and ``multilabel`` → :class:`TransferClassifier`,
    ``regression`` → :class:`TransferRegressor`, ``multitask`` → :class:`MultiTaskClassifier`."""
    from .estimators import TransferRegressor

    if task == "regression":
        if params.get("head") == "logreg":
            params["head"] = "ridge"  # the default head of the regressor
        return TransferRegressor(**params)
    if task == "multitask":
        from .estimators import MultiTaskClassifier

        return MultiTaskClassifier(**params)
    if task not in ("classification", "multilabel"):
        raise ConfigError(f"task={task!r} is not one of classification, multilabel, regression, multitask")
    return TransferClassifier(**params, multilabel=task == "multilabel")


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
    task: str = "classification",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Train a transfer model and the baselines on one split, evaluate them, write everything to ``out``.

    ``strategy`` names a registered strategy; ``fine_tune`` holds further :class:`TransferClassifier`
    parameters of it (``epochs``, ``unfreeze``, ``augment``, ``lr``, ``fine_tune_params``,
    ``strategy_params`` ...). A strategy that trains a network checkpoints it in ``out/checkpoint`` after
    every epoch and ``resume=True`` continues from there. The verdict is against the strongest (on the test
    set) of the from-scratch models; with ``compare`` the strategy's comparisons (for fine-tuning: feature
    extraction with the same backbone) join the ``comparison`` table.

    ``task``: ``classification`` (one label per item), ``multilabel`` (tags per item, e.g. ``"red;cotton"``)
    ``regression`` (a number per item) or ``multitask`` (several label columns, ``y`` a table; ``fine_tune``
    then holds ``tasks`` and ``task_weighting``): each task is also trained alone, and ``single_task`` in the
    results says per task whether sharing the trunk helped or hurt.

    ``backbone="auto"`` first ranks the backbones of the data's modality (``rank_backbones``: a subset;
    ``layer``: the layer set to rank, ``last``/``stages``/``all``) on the training split only and uses the
    recommended backbone and layer; the ranking is stored in the results under ``ranking``.

    Returns the results dictionary (also written to ``out/results.json``).
    """
    from .io import check_output_folder

    say = say or (lambda msg: log.info(msg))
    t_start = time.perf_counter()
    out = check_output_folder(out)  # before any work: a bad --out fails in the first second
    strategy_cls = get_strategy(strategy, task=task)
    if test is None:
        train, test = split_dataset(dataset, test_size, seed, stratify=task == "classification")
    else:
        train = dataset
        check_test_set(train, test, task)
    if train.modality != test.modality:
        raise DataError(f"training data is {train.modality} but test data is {test.modality}")
    backbone, layer, ranking = choose_backbone(
        train, dataset.name, backbone, layer, rank_backbones=rank_backbones, weights=weights, image_size=image_size,
        engine=engine, seed=seed, progress=progress, say=say)
    trains = {"checkpoint_dir": str(out / "checkpoint"), "resume": resume} if strategy_cls.trains_network else {}
    clf = make_estimator(task, backbone=backbone, layer=layer, head=head, head_params=head_params,
                         image_size=image_size, weights=weights, engine=engine, random_state=seed, progress=progress,
                         strategy=strategy, tta=tta, precision=precision, **(fine_tune or {}), **trains)
    transfer, test_features = fit_transfer(clf, train, test, say)
    objective = clf.objective_
    scratch, comparisons = fit_baselines(clf, train, test, compare=compare, seed=seed, progress=progress, say=say)
    best = objective.strongest(test.y, [t.predictions for t in scratch])  # the verdict's baseline
    baseline = scratch[best]
    verdict = objective.verdict(test.y, transfer.predictions, baseline.predictions, baseline_name=baseline.name,
                                modality=train.modality, seed=seed)
    if ranking is not None:  # concrete alternatives from the ranking come first
        from .selection.ranking import ranking_next_steps

        verdict["next_steps"] = ranking_next_steps(ranking, verdict["verdict"]) + verdict["next_steps"]
    others = comparisons + [t for i, t in enumerate(scratch) if i != best]
    results = assemble_results(dataset, train, test, clf, transfer, baseline, scratch, others, verdict,
                               test_features, ranking=ranking, test_size=test_size, seed=seed, tta=tta,
                               image_size=image_size)
    if hasattr(objective, "single_tasks"):
        results["single_task"] = compare_single_tasks(clf, train, test, seed=seed, say=say)
    results["timings"]["total_s"] = time.perf_counter() - t_start
    extra = audio_sections(test, transfer.predictions, objective) if report and train.modality == "audio" else []
    write_outputs(out, clf, results, report=report, sections=extra)
    return results


def audio_sections(test: Dataset, predictions: Any, objective: Any) -> list[Any]:
    """The report's spectrograms of misclassified test clips (classification of audio clips)."""
    if objective.name != "classification":
        return []
    from .evaluation.audio_report import audio_section

    y = list(np.asarray(test.y))
    names = list(test.X) if isinstance(test.X, list) and all(isinstance(x, str) for x in test.X) else None
    shown = dict(zip(y, test.display_labels(y), strict=True))
    section = audio_section(test.X, y, list(np.asarray(predictions)), names=names, display=shown)
    return [section] if section is not None else []


def compare_single_tasks(clf: Any, train: Dataset, test: Dataset, *, seed: int,
                         say: Callable[[str], None]) -> dict[str, Any]:
    """Multi-task: each task trained alone with the same backbone and budget; per task, whether sharing
    the trunk helped or hurt (see :func:`~transferkit.estimators.single_task_comparison`)."""
    from .estimators import single_task_comparison

    say(f"training each of the {len(clf.tasks_)} tasks alone for the single-task comparison")
    return single_task_comparison(clf, train.X, train.y, test.X, test.y, seed=seed)


def assemble_results(dataset: Dataset, train: Dataset, test: Dataset, clf: Any, transfer: Trained,
                     baseline: Trained, scratch: list[Trained], others: list[Trained], verdict: dict[str, Any],
                     test_features: np.ndarray, *, ranking: Any, test_size: float, seed: int, tta: str,
                     image_size: int | None) -> dict[str, Any]:
    """The ``results.json`` of a fit: data, model (with what the strategy says of itself), metrics, the
    baseline and verdict, timings, the 2-D map, the comparison table."""
    strategy = clf.strategy_
    objective = clf.objective_
    display = dataset.display_labels
    config = strategy.trunk
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(test_features), size=min(len(test_features), MAX_PROJECTION_POINTS), replace=False))
    points, method = project_2d(test_features[keep], seed)
    names = objective.names(display) if hasattr(objective, "names") else None
    described = strategy.describe()
    results: dict[str, Any] = {
        "transferkit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataset": {
            "name": dataset.name,
            "modality": train.modality,
            "n_items": len(train) + len(test),
            "n_train": len(train),
            "n_test": len(test),
            "task": objective.name,
            **objective.describe_targets(train.y, display),
            "split": "separate test set" if dataset is train else f"stratified {test_size:g} held out, seed {seed}",
        },
        "model": {
            "backbone": clf.backbone_,
            "layer": clf.layer_,
            "head": described.pop("head"),
            "head_params": clf.head_.params,
            "strategy": strategy.name,
            "strategy_summary": strategy.summary,
            "image_size": (getattr(clf, "image_size_", None) or image_size or config.input_size)
            if config.modality == "image" else None,
            "engine": clf.engine_,
            "tta": tta,
            "weights_id": clf.weights_id_,
            "n_features": clf.n_features_,
            **described,
        },
        "metrics": objective.metrics(test.y, transfer.predictions, names=names),
        "baseline": {"name": baseline.name, "description": baseline.description,
                     "metrics": objective.metrics(test.y, baseline.predictions, names=names),
                     "candidates": [t.name for t in scratch]},
        "verdict": verdict,
        "timings": {**clf.fit_timings_, "predict_s": clf.predict_s_, "baseline_s": baseline.seconds},
        "extraction": clf.extract_stats_,
        "projection": {
            "method": method,
            "points": np.round(points, 4).tolist(),
            "labels": [objective.map_labels(test.y, display)[i] for i in keep],
        },
        **strategy.results_extra(),
        **objective.report_data(test.y, transfer.predictions),
    }
    if ranking is not None:
        results["ranking"] = ranking.to_dict()
    rows = [transfer, baseline, *others]
    results["comparison"] = [{"strategy": t.strategy, "backbone": t.name,
                              **objective.summary(objective.metrics(test.y, t.predictions, names=names)),
                              "time_s": round(float(t.seconds), 2)} for t in rows]
    return results


def write_outputs(out: Path, model: Any, results: dict[str, Any], *, report: bool = True,
                  sections: Sequence[Any] = ()) -> None:
    """Write the model, ``results.json`` and ``report.html`` to ``out`` as one folder, in one step.

    Everything that can fail on content (rendering the report, serialising the results) happens in memory
    first; then the folder is written to a temporary sibling and swapped in, so an earlier run's folder
    stays intact if anything fails, and a report never contradicts the model next to it.
    """
    import json

    from ._utils import _json_default
    from .io import write_folder
    from .training.distributed import is_main

    if not is_main():  # a data-parallel fit (``--nproc``): every rank holds the same model, rank 0 writes it
        return

    texts = {"results.json": json.dumps(results, indent=2, sort_keys=True, default=_json_default) + "\n"}
    if report:
        from .evaluation.report import report_html

        texts["report.html"] = report_html(results, sections=[*model.strategy_.report_sections(results), *sections])
    doc, files = model._model_doc()
    write_folder(out, doc, files, texts)
