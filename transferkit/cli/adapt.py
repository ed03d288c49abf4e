"""`transferkit adapt SOURCE TARGET`: domain adaptation from labelled SOURCE to unlabelled TARGET."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import LabelCol, fail, print_json, say, user_errors


def load_target(target: str, text_column: str | None, path_column: str | None, label_column: str) -> tuple[Any, Any, str]:
    """``(X, y or None, how)`` of TARGET: a folder (flat = unlabelled; class sub-folders = labels for
    evaluation only), a CSV (its label column, when present, for evaluation only), or a .txt of texts."""
    from ..data.datasets import list_images, load_csv, load_image_folder

    path = Path(target).expanduser()
    if not path.exists():
        raise fail(f"TARGET {target!r} does not exist; pass a folder of images, a CSV or a .txt file")
    if path.is_dir():
        subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if subdirs:
            ds = load_image_folder(path)
            return ds.X, ds.y, (f"TARGET has {len(subdirs)} class sub-folders: their names are used only to evaluate "
                                "(never to train or to choose the method)")
        files = list_images(path)
        return files, None, f"TARGET: {len(files)} unlabelled images"
    if path.suffix.lower() == ".txt":
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        return lines, None, f"TARGET: {len(lines)} unlabelled texts"
    ds = load_csv(path, text_column=text_column, path_column=path_column, label_column=label_column,
                  require_labels=False)
    how = (f"TARGET has a {label_column!r} column: used only to evaluate (never to train or to choose the method)"
           if ds.y is not None else f"TARGET: {len(ds.X)} unlabelled rows")
    return ds.X, ds.y, how


def read_target_labels(file: Path, target: str, X_t: list[Any]) -> list[Any]:
    """One label per TARGET item (``None`` = unknown) from a CSV with columns ``item`` (an image's path
    relative to a TARGET folder or as the TARGET CSV writes it, or a text) and ``label``."""
    import csv

    from ..exceptions import DataError

    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"--target-labels {str(file)!r} is not a file; pass a CSV with columns item,label")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not {"item", "label"} <= set(reader.fieldnames or ()):
            raise DataError(f"--target-labels {str(file)!r} has columns {reader.fieldnames}; it needs 'item' and "
                            "'label' (item: the image path relative to TARGET, or the text)")
        given = {row["item"]: row["label"] for row in reader if (row.get("label") or "").strip()}
    root = Path(target).expanduser()

    def key(x: Any) -> str:
        if root.is_dir():
            try:
                return str(Path(x).relative_to(root))
            except ValueError:
                return str(x)
        return str(x)

    keys = [key(x) for x in X_t]
    missing = sorted(set(given) - set(keys))
    if missing:
        raise DataError(f"--target-labels names {len(missing)} item(s) TARGET does not hold, e.g. {missing[0]!r}; "
                        "items are image paths relative to TARGET (or as the TARGET CSV writes them) or texts")
    return [given.get(k) for k in keys]


@user_errors
def adapt(
    source: Annotated[str, typer.Argument(help="Labelled source data: folder of class subfolders, a CSV, or a built-in dataset.")],
    target: Annotated[str, typer.Argument(help="Target data: a folder of images (class sub-folders, if any, are read only to evaluate), a CSV, or a .txt with one text per line.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory for the model and results.json.")] = Path("model"),
    backbone: Annotated[str, typer.Option(help="Backbone name (see `transferkit backbones`).")] = "mobilenet_v2",
    method: Annotated[str, typer.Option(help="auto (chosen without target labels, see --selection), source-only, coral, subspace, tca, reweight (shallow, on cached embeddings), deep-source-only, dann, cdan, deep-coral, mmd (deep).")] = "auto",
    candidates: Annotated[str | None, typer.Option(help="With --method auto: comma-separated methods to try (default: all).")] = None,
    trunk: Annotated[str, typer.Option(help="Deep methods: 'backbone' (a trained copy of --backbone) or 'small-cnn' (random-init CNN at the images' native size, for small images such as digits).")] = "backbone",
    epochs: Annotated[int, typer.Option(help="Deep methods: training epochs over the source.")] = 15,
    lr: Annotated[float | None, typer.Option(help="Deep methods: peak learning rate (the backbone's layers train at a tenth of it; default 3e-3 with adamw, 1e-2 with sgd).")] = None,
    optimizer: Annotated[str, typer.Option(help="Deep methods: adamw, or sgd (momentum 0.9, Nesterov, lr x (1 + 10p)^-0.75, TLlib's recipe).")] = "adamw",
    source_augment: Annotated[str, typer.Option("--source-augment", help="Deep methods: source augmentation, none or affine (small rotation / shift / zoom, no flip: digits, characters).")] = "none",
    trade_off: Annotated[float, typer.Option("--trade-off", help="Deep methods: weight of the transfer loss.")] = 1.0,
    n_components: Annotated[int, typer.Option("--n-components", help="Subspace alignment / TCA dimension.")] = 64,
    selection: Annotated[str, typer.Option(help="With --method auto, the label-free criterion: dev (lowest deep-embedded-validation risk + 1.645 s.e.) or clusters (best agreement of the target predictions with the target's own clusters); both are reported.")] = "dev",
    image_size: Annotated[int | None, typer.Option(help="Square input size in pixels.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Deep methods: items per step from each domain (default 64).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV column holding the texts.")] = None,
    path_column: Annotated[str | None, typer.Option("--path-column", help="CSV column holding image paths.")] = None,
    label_column: LabelCol = "label",
    target_labels: Annotated[Path | None, typer.Option("--target-labels", help="Semi-supervised: a CSV with columns item,label giving the labels of some TARGET items (item: image path relative to TARGET, or the text); they train with the source, never choose the method.")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print results.json to stdout instead of a summary.")] = False,
) -> None:
    """Adapt a classifier from labelled SOURCE to the unlabelled TARGET domain; writes the model and results.json."""
    from .._utils import _json_default
    from ..data.datasets import load_dataset
    from ..estimators import DomainAdapter
    from ..io import write_folder

    src = load_dataset(source, text_column=text_column, path_column=path_column, label_column=label_column)
    X_t, y_t, how = load_target(target, text_column, path_column, label_column)
    say(how)
    da = DomainAdapter(backbone, method=method, trunk=trunk, epochs=epochs, lr=lr, trade_off=trade_off,
                       optimizer=optimizer, source_augment=source_augment,
                       n_components=n_components, selection=selection, image_size=image_size, batch_size=batch_size, random_state=seed,
                       progress=progress,
                       candidates=[c.strip() for c in candidates.split(",") if c.strip()] if candidates else None)
    if y_t is not None:
        from ..exceptions import DataError

        unknown = sorted(set(map(str, y_t)) - set(map(str, src.y)))
        if unknown:
            raise DataError(f"TARGET's labels include {', '.join(map(repr, unknown[:5]))}, which SOURCE never has; "
                            "a domain adapter only predicts the source's classes")
    y_semi = read_target_labels(target_labels, target, list(X_t)) if target_labels is not None else None
    if y_semi is not None:
        say(f"--target-labels: {sum(v is not None for v in y_semi)} of {len(y_semi)} TARGET items labelled for "
            "training (semi-supervised)")
    da.fit(src.X, src.y, X_target=X_t, y_target=y_semi)  # the evaluation labels of TARGET are never passed
    results: dict[str, Any] = {"source": {"name": str(source), "n": len(src.y)},
                               "target": {"name": str(target), "n": len(X_t), "labelled_for_evaluation": y_t is not None},
                               **da.strategy_.results_extra()}
    if y_t is not None:
        results["evaluation"] = da.compare(X_t, y_t)
    texts = {"results.json": json.dumps(results, indent=2, sort_keys=True, default=_json_default) + "\n"}
    if report:
        from ..strategies.domain_adaptation.report import adaptation_report_html

        texts["report.html"] = adaptation_report_html(results, da.strategy_.report_sections(results))
    doc, files = da._model_doc()
    write_folder(out, doc, files, texts)
    if json_output:
        print_json(results)
        return
    rows = {r["method"]: r for r in results.get("evaluation", {}).get("selection", [])}
    for r in da.selection_:
        acc = rows.get(r["method"], {}).get("target_accuracy")
        say(f"  {r['method']:<17} DEV risk {r['dev_risk']:.3f}  domain acc {r['domain_accuracy']:.2f}"
            + (f"  cluster AMI {r['cluster_ami']:.3f}" if r.get("cluster_ami") is not None else "")
            + (f"  target acc {acc:.3f}" if acc is not None else ""))
    say(f"kept {da.method_} (baseline {da.baseline_}); model written to {out}")
    if None not in (da.dev_choice_, da.cluster_choice_) and da.dev_choice_ != da.cluster_choice_:
        other = da.cluster_choice_ if da.method_ == da.dev_choice_ else da.dev_choice_
        say(f"the two label-free criteria disagree: DEV picks {da.dev_choice_}, agreement with the target's own "
            f"clusters picks {da.cluster_choice_}; label a few target items (--target-labels) or evaluate both to "
            f"decide (--method {other} fits the other one)")
    if "evaluation" in results:
        say(results["evaluation"]["verdict"]["text"])
