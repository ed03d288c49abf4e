"""`fit`, `quickstart`, `predict`, `evaluate` and `export`."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from ..strategies import default_strategy, get_strategy, strategy_names
from ._common import (
    TTA,
    AllowOutside,
    Engine,
    InputCol,
    LabelCol,
    Precision,
    choices_metavar,
    fail,
    head_names,
    make_console,
    parse_head_params,
    parse_name_values,
    print_json,
    registry_choice,
    say,
    user_errors,
)
from .train import Augment, check_unfreeze, data_parallel, parse_fine_tune_params

DataArg = Annotated[str, typer.Argument(help="Folder of class subfolders, a CSV file, or a built-in dataset name.")]
ModelArg = Annotated[Path, typer.Argument(help="Model directory written by `transferkit fit`.")]
TextCol = Annotated[str | None, typer.Option("--text-column", help="CSV column holding the texts.")]
PathCol = Annotated[str | None, typer.Option("--path-column", help="CSV column holding image paths.")]


def _print_summary(results: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    console = make_console()
    m, b = results["metrics"], results["baseline"]["metrics"]
    table = Table(title=f"{results['model']['backbone']} ({results['model']['layer']}) + {results['model']['head']} "
                        f"vs {results['baseline']['name']}", title_justify="left")
    table.add_column("metric")
    table.add_column("transfer", justify="right")
    table.add_column("baseline", justify="right")
    for key, label in _SUMMARY_ROWS:
        if key in m and key in b:
            table.add_row(label, f"{m[key]:.4g}" if key in ("mae", "rmse") else f"{m[key]:.3f}",
                          f"{b[key]:.4g}" if key in ("mae", "rmse") else f"{b[key]:.3f}")
    for task, tm in m.get("tasks", {}).items():
        bm = b.get("tasks", {}).get(task, {})
        if "accuracy" in tm and "accuracy" in bm:
            table.add_row(f"accuracy ({task})", f"{tm['accuracy']:.3f}", f"{bm['accuracy']:.3f}")
    console.print(table)
    for task, st in results.get("single_task", {}).items():
        colour = {"helped": "green", "hurt": "red"}.get(st["sharing"], "yellow")
        console.print(f"sharing the trunk, task {task}: [bold {colour}]{st['sharing']}[/] — "
                      f"{st['multi_task_accuracy']:.3f} multi-task vs {st['single_task_accuracy']:.3f} alone "
                      f"(95% CI {100 * st['ci_low']:+.1f} to {100 * st['ci_high']:+.1f} points)")
    v = results["verdict"]
    colour = {"positive transfer": "green", "negative transfer": "red"}.get(v["verdict"], "yellow")
    console.print(f"verdict: [bold {colour}]{v['verdict']}[/] — {_gain_words(v)}")
    console.print(f"model:   {out}/model.json\nresults: {out}/results.json\nreport:  {out}/report.html")


_SUMMARY_ROWS = [("accuracy", "accuracy"), ("precision_macro", "precision (macro)"), ("recall_macro", "recall (macro)"),
                 ("f1_micro", "F1 (micro)"), ("f1_macro", "F1 (macro)"), ("subset_accuracy", "subset accuracy"),
                 ("mae", "MAE"), ("rmse", "RMSE"), ("r2", "R²")]


def _gain_words(v: dict[str, Any]) -> str:
    """The verdict's gain and interval in the units of its metric."""
    metric = v.get("metric", "accuracy")
    if metric == "mae":  # an error in the target's units: the gain is how much lower it is
        return f"mean absolute error {-v['gain']:+.4g} vs the baseline (95% CI {-v['ci_high']:+.4g} to {-v['ci_low']:+.4g})"
    of = {"accuracy": "", "recall_macro": " of balanced accuracy (imbalanced classes)", "f1_micro": " of micro-F1"}
    return (f"gain {100 * v['gain']:+.1f} points{of.get(metric, ' of ' + metric)} "
            f"(95% CI {100 * v['ci_low']:+.1f} to {100 * v['ci_high']:+.1f})")


def _transfer_strategies() -> list[str]:
    """Every transfer strategy, whatever the task it solves (the task is checked against --target & co)."""
    return strategy_names(task=None)


def _strategy_help() -> str:
    return "; ".join(f"{n}: {get_strategy(n).summary}" for n in _transfer_strategies()) + "."


def _check_strategy_options(strategy: str, given: dict[str, tuple[str, Any, Any]]) -> None:
    """Options that belong to other strategies must keep their defaults (``given``: estimator parameter →
    (CLI flag, value, default)); the registry says which strategy reads which parameter."""
    options = get_strategy(strategy).options
    wrong = [(param, flag) for param, (flag, value, default) in given.items()
             if value != default and param not in options]
    if not wrong:
        return
    owners = sorted({n for param, _ in wrong for n in strategy_names() if param in get_strategy(n).options})
    where = f"--strategy {' or '.join(owners)}" if owners else "another strategy"
    flags = ", ".join(dict.fromkeys(flag for _, flag in wrong))
    raise fail(f"{flags} only apply to {where}; add it or drop them")


def _load(data: str, text_column: str | None, path_column: str | None, label_column: str | list[str] | None,
          require_labels: bool = True, input_column: str | None = None, allow_outside_paths: bool = False) -> Any:
    from ..data.datasets import load_dataset

    return load_dataset(data, text_column=text_column, path_column=path_column, label_column=label_column,
                        require_labels=require_labels, input_column=input_column,
                        allow_outside_paths=allow_outside_paths)


@user_errors
def fit(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory for the model, results.json and report.html.")] = Path("model"),
    backbone: Annotated[str, typer.Option(help="Backbone name (see `transferkit backbones`), or 'auto': rank the backbones on the training split (as `transferkit rank`) and use the recommended backbone and layer.")] = "mobilenet_v2",
    layer: Annotated[str, typer.Option(help="Feature layer: 'last' or a layer name of the backbone; with --backbone auto, the layers to rank: last, stages or all.")] = "last",
    candidates: Annotated[str | None, typer.Option(help="With --backbone auto: comma-separated backbones to rank (default: every backbone of the data's modality).")] = None,
    head: Annotated[str, typer.Option(help="Feature extraction: classifier trained on the features.", metavar=choices_metavar(head_names()), callback=registry_choice(head_names, "head"))] = "logreg",
    head_param: Annotated[list[str] | None, typer.Option("--head-param", help="Head hyper-parameter NAME=VALUE (repeatable), e.g. C=0.1; default: chosen by CV.")] = None,
    test: Annotated[str | None, typer.Option(help="Separate labelled test data (same forms as DATA); default: hold out --test-size.")] = None,
    test_size: Annotated[float, typer.Option(help="Fraction held out for testing when --test is not given.")] = 0.2,
    image_size: Annotated[int | None, typer.Option(help="Square input size in pixels (default: the backbone's own).")] = None,
    weights: Annotated[str | None, typer.Option(help="Local weights file or directory to use instead of the registered ones.")] = None,
    engine: Annotated[Engine, typer.Option(help="Execution engine for extraction.")] = Engine.auto,
    tta: Annotated[TTA, typer.Option(help="Test-time augmentation of image embeddings: hflip averages each image's embedding with its mirror image's (2x extraction time; not for digits or text in images).")] = TTA.none,
    precision: Annotated[Precision, typer.Option(help="Feature extraction: int8 runs an int8 quantization of the backbone (about 2-3x faster on CPU), calibrated on up to 256 training items; kept only if the head loses at most 0.5 point on held-out training items against fp32, else the fit falls back to fp32 and says so.")] = Precision.fp32,
    seed: Annotated[int, typer.Option(help="Random seed (split, heads, baseline).")] = 0,
    text_column: TextCol = None,
    path_column: PathCol = None,
    label_column: LabelCol = "label",
    target: Annotated[str | None, typer.Option("--target", help="Regression: the CSV column holding the number to predict (instead of a label column).")] = None,
    tags_column: Annotated[str | None, typer.Option("--tags-column", help="Multi-label: the CSV column holding each item's tags, separated by ';' (e.g. red;cotton;sale).")] = None,
    tasks: Annotated[str | None, typer.Option("--tasks", help="Multi-task: comma-separated CSV label columns, one classification task each, learnt on one shared trunk (a row may miss some labels); implies --strategy multi-task.")] = None,
    task_weighting: Annotated[str, typer.Option("--task-weighting", help="Multi-task: how task losses combine: fixed (equal weights), uncertainty (learned per-task variances) or pcgrad (conflicting gradients projected apart).")] = "fixed",
    input_column: InputCol = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print results.json to stdout instead of a summary.")] = False,
    strategy: Annotated[str, typer.Option(help=_strategy_help(), metavar=choices_metavar(_transfer_strategies()), callback=registry_choice(_transfer_strategies, "strategy"))] = default_strategy(),
    strategy_param: Annotated[list[str] | None, typer.Option("--strategy-param", help="Option NAME=VALUE of a strategy registered outside transferkit (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tune: maximum epochs of stage 2 (unfrozen blocks); default: from the data size.")] = None,
    head_epochs: Annotated[int | None, typer.Option(help="Fine-tune: maximum epochs of stage 1 (head on the frozen base); default: from the data size.")] = None,
    unfreeze: Annotated[str, typer.Option(help="Fine-tune: blocks of the backbone stage 2 trains: top-N (e.g. top-2), all, or none (head only).", callback=check_unfreeze)] = "all",
    augment: Annotated[Augment, typer.Option(help="Fine-tune: training augmentation. Images: flip + crop (strong adds rotation and colour jitter); audio: gain, time shift, noise at a random SNR, and SpecAugment masks on Whisper's log-mel.")] = Augment.light,
    lr: Annotated[float | None, typer.Option(help="Fine-tune: learning rate of stage 1 (stage 2 uses a tenth); default 3e-3 images, 2e-3 text; `transferkit lr-find` suggests one.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Fine-tune: items per training step (default: 32 images, 16 texts).")] = None,
    fine_tune_param: Annotated[list[str] | None, typer.Option("--fine-tune-param", help="Fine-tune option NAME=VALUE (repeatable): dropout, weight_decay, l2sp, label_smoothing, patience, validation_fraction, layer_decay, gradual, train_bn, lr_ratio, warmup, contrastive (rounds of SetFit pair tuning, e.g. 20; default 0 = off), refit_head (default true), ema (weight-average decay, e.g. 0.99; default 0 = off).")] = None,
    resume: Annotated[bool, typer.Option(help="Fine-tune: continue an interrupted run from the checkpoint in --out.")] = False,
    compare: Annotated[bool, typer.Option(help="Fine-tune: also train feature extraction with the same backbone for the comparison table (the from-scratch baselines of the verdict are always trained).")] = True,
    allow_outside_paths: AllowOutside = False,
    nproc: Annotated[int, typer.Option("--nproc", help="Fine-tune: train data-parallel in N processes on this machine (launched through torchrun; gloo on CPU, NCCL on GPUs). --batch-size stays the global batch, split across them; rank 0 writes --out.")] = 1,
) -> None:
    """Train a classifier on a pretrained backbone (feature extraction, or fine-tuning with --strategy
    fine-tune), compare it with a from-scratch baseline, and write the model, results.json and report.html
    to --out."""
    from ..io import check_output_folder
    from ..workflow import run_fit

    options = {  # estimator parameter -> (flag, value, default)
        "head": ("--head", head, "logreg"), "head_params": ("--head-param", head_param or None, None),
        "epochs": ("--epochs", epochs, None), "head_epochs": ("--head-epochs", head_epochs, None),
        "lr": ("--lr", lr, None), "unfreeze": ("--unfreeze", unfreeze, "all"),
        "augment": ("--augment", augment.value, "light"),
        "fine_tune_params": ("--fine-tune-param", fine_tune_param or None, None),
        "strategy_params": ("--strategy-param", strategy_param or None, None),
        "task_weighting": ("--task-weighting", task_weighting, "fixed"),
    }
    given = [flag for flag, v in (("--target", target), ("--tags-column", tags_column), ("--tasks", tasks)) if v]
    if len(given) > 1:
        raise fail(f"{' and '.join(given)} exclude each other (regression, multi-label, multi-task); give one")
    task = ("regression" if target is not None else "multilabel" if tags_column is not None
            else "multitask" if tasks is not None else "classification")
    if task != "classification" and strategy == default_strategy() and not get_strategy(strategy).solves(task):
        strategy = default_strategy(task)
    if not get_strategy(strategy).solves(task):
        solvers = [n for n in strategy_names() if get_strategy(n).solves(task)]
        raise fail(f"--strategy {strategy} does not do {task}; use --strategy {' or '.join(solvers)}"
                   if task != "classification" else
                   f"--strategy {strategy} needs " + ("--tasks a,b (one label column per task)" if get_strategy(strategy).solves("multitask")
                                                      else "--target or --tags-column"))
    _check_strategy_options(strategy, options)
    if resume and not get_strategy(strategy).trains_network:
        raise fail(f"--resume continues an interrupted training run; strategy {strategy} trains no network, drop it")
    if batch_size is not None and not get_strategy(strategy).trains_network:
        raise fail(f"--batch-size sets training batches; strategy {strategy} trains no network, drop it")
    task_columns = _task_columns(tasks) if tasks is not None else None
    label_column = task_columns or target or tags_column or label_column
    check_output_folder(out)  # a bad --out fails before any data is read
    launched = data_parallel(nproc, get_strategy(strategy).trains_network, strategy, batch_size)
    if launched is not None:  # this process launched the others and waited for them
        raise typer.Exit(launched)
    from ..training.distributed import is_main, leave

    tell = say
    if not is_main():  # the other ranks of a data-parallel fit do the same work silently
        import logging

        progress, tell = False, _quiet
        logging.getLogger("transferkit").setLevel(logging.ERROR)
    where = {"input_column": input_column, "allow_outside_paths": allow_outside_paths}
    dataset = _load(data, text_column, path_column, label_column, **where)
    test_ds = _load(test, text_column, path_column, label_column, **where) if test else None
    extra = {"epochs": epochs, "head_epochs": head_epochs, "lr": lr, "unfreeze": unfreeze, "augment": augment.value,
             "batch_size": batch_size, "fine_tune_params": parse_fine_tune_params(fine_tune_param),
             "strategy_params": parse_name_values(strategy_param, "--strategy-param", "k=5")}
    if task_columns is not None:
        extra.update(tasks=task_columns, task_weighting=task_weighting)
    results = run_fit(
        dataset, out, test=test_ds, test_size=test_size, backbone=backbone, layer=layer, head=head,
        head_params=parse_head_params(head_param), image_size=image_size, weights=weights, engine=engine.value,
        seed=seed, progress=progress, report=report, say=tell, rank_backbones=candidates, strategy=strategy,
        fine_tune=extra, resume=resume, compare=compare, tta=tta.value, task=task, precision=precision.value,
    )
    main = is_main()
    leave()
    if not main:
        return
    if json_output:
        print_json(results)
    else:
        _print_summary(results, out)


def _quiet(message: str) -> None:
    """``say`` on the ranks other than 0."""


def _task_columns(tasks: str) -> list[str]:
    columns = [c.strip() for c in tasks.split(",")]
    if not all(columns):
        raise fail(f"--tasks {tasks!r} has an empty column name; give comma-separated CSV columns, e.g. --tasks category,group")
    if len(set(columns)) != len(columns):
        raise fail(f"--tasks {tasks!r} names a column twice; give each task column once")
    return columns


@user_errors
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("transferkit-quickstart"),
    backbone: Annotated[str, typer.Option(help="Image backbone to use.")] = "mobilenet_v2",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run the whole workflow on the bundled Fashion-MNIST sample (2,000 training and 1,000 test images)."""
    from ..data.datasets import load_fashion_mnist_sample
    from ..workflow import run_fit

    sample = load_fashion_mnist_sample()
    split = sample.extra["split"]
    train, test = sample.subset(np.flatnonzero(split == 0)), sample.subset(np.flatnonzero(split == 1))
    say(f"quickstart: {len(train)} Fashion-MNIST training images, {len(test)} test images, backbone {backbone}")
    results = run_fit(train, out, test=test, backbone=backbone, progress=progress, say=say)
    _print_summary(results, out)


def _items_for_prediction(data: str, modality: str, text_column: str | None, path_column: str | None,
                          id_column: str | None = None, allow_outside_paths: bool = False) -> tuple[list[str], Any]:
    """(display names, X) for unlabelled data: an image folder/file, a CSV, or a .txt with one text per line."""
    from ..data.datasets import list_images, load_csv

    path = Path(data).expanduser()
    if not path.exists():
        raise fail(f"path {data!r} does not exist")
    is_csv = path.suffix.lower() in (".csv", ".tsv")
    if id_column is not None and not is_csv:
        raise fail(f"--id-column names a CSV column, but {data!r} is not a CSV; drop --id-column")
    if is_csv:
        ds = load_csv(path, text_column=text_column, path_column=path_column, label_column="label",
                      require_labels=False, id_column=id_column, allow_outside_paths=allow_outside_paths)
        if id_column is not None:
            return ds.extra["ids"], ds.X
        names = list(ds.X) if ds.modality != "text" else [f"row {i + 2}" for i in range(len(ds.X))]
        return names, ds.X
    if path.suffix.lower() == ".txt":
        lines = [ln.rstrip("\n") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if not lines:
            raise fail(f"{data!r} has no non-empty lines")
        return [f"line {i + 1}" for i in range(len(lines))], lines
    if modality == "text":
        raise fail(f"this model takes text; pass a CSV with a text column or a .txt file, not {data!r}")
    files = list_images(path, modality)
    return files, files


PRECISION_OVERRIDE_HELP = ("Run the backbone in this precision instead of the model's own: fp32 always works; int8 "
                           "needs an int8 model (fit --precision int8) or a text model.")


def _load_model(model: Path, weights: str | None, progress: bool, precision: Precision | None) -> Any:
    """The saved model for prediction (no scikit-learn estimator is built: see :mod:`transferkit.saved`),
    showing progress or not, running in ``precision`` when given."""
    from ..saved import load_predictor

    clf = load_predictor(model, weights=weights).set_progress(progress)
    if precision is not None:
        clf.use_precision(precision.value)
    return clf


@user_errors
def predict(
    model: ModelArg,
    data: Annotated[str, typer.Argument(help="Images (folder or file), a CSV, or a .txt file with one text per line.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV file to write; default: stdout.")] = None,
    proba: Annotated[bool, typer.Option(help="Add one probability column per class.")] = False,
    text_column: TextCol = None,
    path_column: PathCol = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="CSV column whose value names each row in the "
                                                  "output (default: the image path, or 'row N' for texts).")] = None,
    weights: Annotated[str | None, typer.Option(help="The backbone's local weights file, for a model trained with --weights or on a backbone not registered here (its sha256 must match the model's).")] = None,
    precision: Annotated[Precision | None, typer.Option(help=PRECISION_OVERRIDE_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    allow_outside_paths: AllowOutside = False,
) -> None:
    """Predict the class of every item in DATA with a saved model."""
    from .._utils import atomic_write_text, check_output_file

    if output is not None:
        check_output_file(output, "--output")  # before the model is loaded or anything predicted
    clf = _load_model(model, weights, progress, precision)
    modality = clf.strategy_.context.config.modality  # the model's own config: its backbone may not be registered here
    names, X = _items_for_prediction(data, modality, text_column, path_column, id_column, allow_outside_paths)
    features = clf.features(X)
    pred = clf.predict_from_features(features)
    buf = io.StringIO()
    writer = csv.writer(buf)
    objective = clf.objective_
    header = ["item", *objective.prediction_columns()]
    probs = None
    if proba:
        if not clf.head_.probabilistic:
            raise fail(f"this model ({clf.head_.kind} head, {objective.name}) gives no probabilities; drop --proba")
        probs = clf.head_.probabilities(clf.strategy_.logits(features))
        header += [f"p_{c}" for c in objective.output_names()]
    writer.writerow(header)
    for i, (name, p) in enumerate(zip(names, pred, strict=True)):
        row = [name, *objective.prediction_cells(p)]
        if probs is not None:
            row += [f"{v:.6f}" for v in probs[i]]
        writer.writerow(row)
    if output is None:
        sys.stdout.write(buf.getvalue())
    else:
        atomic_write_text(output, buf.getvalue())
        say(f"wrote {len(pred)} predictions to {output}")


@user_errors
def evaluate(
    model: ModelArg,
    data: DataArg,
    text_column: TextCol = None,
    path_column: PathCol = None,
    label_column: LabelCol = "label",
    input_column: InputCol = None,
    weights: Annotated[str | None, typer.Option(help="The backbone's local weights file, for a model trained with --weights or on a backbone not registered here (its sha256 must match the model's).")] = None,
    precision: Annotated[Precision | None, typer.Option(help=PRECISION_OVERRIDE_HELP)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    allow_outside_paths: AllowOutside = False,
) -> None:
    """Score a saved model on labelled data; print the metrics as JSON on stdout."""
    clf = _load_model(model, weights, progress, precision)
    ds = _load(data, text_column, path_column, clf.objective_.label_columns(label_column), input_column=input_column,
               allow_outside_paths=allow_outside_paths)
    clf.objective_.encode(ds.y)  # unknown classes, non-numbers ...: a one-line error before any extraction
    print_json(clf.objective_.metrics(ds.y, clf.predict(ds.X)))


@user_errors
def export(
    model: ModelArg,
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write (backbone + head in one graph).")],

    weights: Annotated[str | None, typer.Option(help="The backbone's local weights file, for a model trained with --weights or on a backbone not registered here (its sha256 must match the model's).")] = None,
) -> None:
    """Export a saved model (backbone + head) as one ONNX graph and check it against the library."""
    from .._utils import check_output_file
    from ..estimators import load_model
    from ..export import export_onnx

    check_output_file(onnx, "--onnx")
    clf = load_model(model, weights=weights)
    info = export_onnx(clf, onnx)
    say(f"wrote {onnx} (inputs: {', '.join(info['inputs'])}; output: {info['output']}); "
        f"max abs difference from transferkit on {info['checked_items']} items: {info['max_abs_diff']:.2e}")
