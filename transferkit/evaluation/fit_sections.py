"""The sections of ``report.html`` every fit has, built from ``results.json``'s dictionary: the header
(dataset, model and the verdict), the metrics of the transfer model against the baseline, the plots, the
comparison with other strategies, the per-class table and the timings.

Each builder reads the results defensively and returns ``None`` when its part is missing or malformed;
the markup is in the templates (``templates/*.html.j2``), the page around it in
:mod:`transferkit.evaluation.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from . import plots
from .formatting import DASH, count, date, duration, integer, is_list, mapping, num, param, pct, points, text
from .page import Figure, Section, environment, figure

METRICS = (
    ("accuracy", "Accuracy"),
    ("precision_macro", "Macro precision"),
    ("recall_macro", "Macro recall"),
    ("f1_macro", "Macro F1"),
)
METRIC_WORDS = {
    "accuracy": "accuracy",
    "f1_macro": "macro F1",
    "precision_macro": "macro precision",
    "recall_macro": "balanced accuracy (macro recall)",
    "balanced_accuracy": "balanced accuracy",
}
_VERDICT_CLASS = {"positive transfer": "positive", "no significant gain": "neutral", "negative transfer": "negative"}
_TIMING_NAMES = {
    "extract_s": "Feature extraction", "head_s": "Head training", "train_s": "Training", "finetune_s": "Fine-tuning",
    "predict_s": "Prediction", "baseline_s": "Baseline", "evaluate_s": "Evaluation", "report_s": "Report",
}
_COMPARISON_COLUMNS = {
    "strategy": "Strategy", "backbone": "Backbone", "layer": "Layer", "head": "Head", "accuracy": "Accuracy",
    "f1_macro": "Macro F1", "precision_macro": "Macro precision", "recall_macro": "Macro recall", "time_s": "Time",
}


class Run:
    """The parts of ``results`` the sections share, read once and type-checked."""

    def __init__(self, results: Mapping[str, Any]) -> None:
        self.results = results
        self.metrics: Mapping[str, Any] = results["metrics"]
        self.dataset = mapping(results.get("dataset"))
        self.model = mapping(results.get("model"))
        baseline = mapping(results.get("baseline"))
        self.baseline_metrics = mapping(baseline.get("metrics"))
        self.baseline_name = text(baseline.get("name"))
        self.baseline_description = text(baseline.get("description"))
        self.has_baseline = bool(self.baseline_metrics)
        self.verdict = mapping(results.get("verdict"))
        self.dataset_name = text(self.dataset.get("name"))
        self.per_class = mapping(self.metrics.get("per_class"))
        labels = self.metrics.get("labels")
        self.labels = [str(x) for x in (labels if is_list(labels) and labels else self.per_class)]
        self.class_counts = {str(k): v for k, v in mapping(self.dataset.get("class_counts")).items()}
        self.n_test = integer(self.metrics.get("n")) or integer(self.dataset.get("n_test"))


def fit_sections(results: Mapping[str, Any]) -> tuple[list[Section], list[Section]]:
    """The run's own sections: those before the contributed ones (metrics, plots) and those after
    (comparison, per-class table, timings)."""
    run = Run(results)
    head = [metrics_section(run), plots_section(run)]
    tail = [comparison_section(run), per_class_section(run), timings_section(run)]
    return [s for s in head if s], [s for s in tail if s]


# -- the header and the verdict ----------------------------------------------------------------------------

def header_html(results: Mapping[str, Any]) -> Markup:
    run = Run(results)
    model = run.model
    facts = [g for g in (_dataset_facts(run), _model_facts(model)) if g]
    return Markup(environment().get_template("header.html.j2").render(
        heading=run.dataset_name or "Fit report", backbone=text(model.get("backbone")),
        strategy=text(model.get("strategy")), created=date(results.get("created")),
        verdict=verdict_context(run), facts=facts))


def confidence_label(verdict: Mapping[str, Any]) -> str:
    conf = num(verdict.get("confidence"))
    if conf is None or not 0 < conf < 1:
        return "CI"
    return f"{round(100 * conf, 1):g}% CI"


def ci(verdict: Mapping[str, Any]) -> tuple[float, float] | None:
    lo, hi = num(verdict.get("ci_low")), num(verdict.get("ci_high"))
    return (lo, hi) if lo is not None and hi is not None else None


def gain_sentence(run: Run) -> str | None:
    """``+5.0 points accuracy over raw-pixel logistic regression (95% CI +3.0 to +7.0)``."""
    verdict = run.verdict
    gain = num(verdict.get("gain"))
    if gain is None:
        return None
    metric = text(verdict.get("metric")) or "accuracy"
    over = "over" if round(100 * gain, 1) >= 0 else "relative to"
    out = f"{points(gain)} points {METRIC_WORDS.get(metric, metric)} {over} {run.baseline_name or 'the baseline'}"
    interval = ci(verdict)
    if interval is not None:
        out += f" ({confidence_label(verdict)} {points(interval[0])} to {points(interval[1])})"
    return out


def verdict_context(run: Run) -> dict[str, Any] | None:
    v = run.verdict
    label = text(v.get("verdict"))
    steps = [s for s in v.get("next_steps") or [] if text(s)] if is_list(v.get("next_steps")) else []
    out = {"label": label, "kind": _VERDICT_CLASS.get(label or "", "unknown"), "gain": gain_sentence(run),
           "explanation": text(v.get("explanation")), "next_steps": steps, "method": text(v.get("method"))}
    return out if any(out[k] for k in ("label", "gain", "explanation", "next_steps", "method")) else None


def _dataset_facts(run: Run) -> dict[str, Any] | None:
    ds = run.dataset
    if not ds:
        return None
    rows: list[tuple[str, Any]] = []
    if text(ds.get("modality")):
        rows.append(("Modality", ds["modality"]))
    n_items, n_train, n_test = (num(ds.get(k)) for k in ("n_items", "n_train", "n_test"))
    split = " / ".join(f"{count(v)} {w}" for v, w in ((n_train, "train"), (n_test, "test")) if v is not None)
    if n_items is not None:
        rows.append(("Items", Markup("{}{}").format(count(n_items), _muted(f"({split})") if split else "")))
    elif split:
        rows.append(("Items", split))
    classes = ds.get("classes")
    n_classes = len(classes) if is_list(classes) else len(run.labels) if run.labels else None
    if n_classes:
        rows.append(("Classes", Markup("{}{}").format(count(n_classes), _balance(run.class_counts))))
    if text(ds.get("split")):
        rows.append(("Test split", ds["split"]))
    return {"id": "dataset", "title": "Dataset", "rows": rows} if rows else None


def _muted(value: str) -> Markup:
    return Markup(' <span class="muted">{}</span>').format(value)


def _balance(counts: Mapping[str, Any]) -> Markup | str:
    values = [v for v in (num(c) for c in counts.values()) if v is not None]
    if len(values) < 2 or min(values) <= 0:
        return ""
    lo, hi = min(values), max(values)
    return _muted(f"({count(lo)} per class)" if lo == hi else f"({count(lo)}–{count(hi)} per class)")


def _model_facts(model: Mapping[str, Any]) -> dict[str, Any] | None:
    rows: list[tuple[str, Any]] = []
    for key, name in (("backbone", "Backbone"), ("layer", "Layer"), ("strategy", "Strategy")):
        if text(model.get(key)):
            rows.append((name, model[key]))
    head = text(model.get("head"))
    params = mapping(model.get("head_params"))
    shown = ", ".join(f"{k} = {param(v)}" for k, v in params.items() if not str(k).endswith("selected_by"))
    if head:
        rows.append(("Head", Markup("{}{}").format(head, _muted(f"({shown})") if shown else "")))
    elif shown:
        rows.append(("Head parameters", shown))
    if text(params.get("selected_by")):
        rows.append(("Chosen by", params["selected_by"]))
    if num(model.get("n_features")) is not None:
        rows.append(("Features", count(model["n_features"])))
    if num(model.get("image_size")) is not None:
        rows.append(("Input size", f"{count(model['image_size'])} px"))
    if text(model.get("engine")):
        rows.append(("Engine", model["engine"]))
    weights = text(model.get("weights_id"))
    if weights:
        short = weights if len(weights) <= 16 else weights[:12] + "…"
        rows.append(("Weights", Markup('<code title="{}">{}</code>').format(weights, short)))
    return {"id": "model", "title": "Model", "rows": rows} if rows else None


# -- metrics (the transfer model against the baseline) -----------------------------------------------------

def metrics_section(run: Run) -> Section:
    base = run.baseline_metrics if run.has_baseline else None
    verdict_metric = text(run.verdict.get("metric")) or "accuracy"
    interval = ci(run.verdict)
    rows = []
    for key, name in METRICS:
        ours, theirs = num(run.metrics.get(key)), num(base.get(key)) if base else None
        row: dict[str, Any] = {"name": name, "ours": ours, "theirs": theirs, "ci": None,
                               "diff": ours - theirs if ours is not None and theirs is not None else None}
        if row["diff"] is not None and key == verdict_metric and interval is not None:
            row["ci"] = f"{confidence_label(run.verdict)} {points(interval[0])} to {points(interval[1])}"
        rows.append(row)
    return Section("metrics", "Metrics", template="metrics.html.j2", context={
        "rows": rows, "baseline": base is not None, "baseline_name": run.baseline_name, "dash": DASH,
        "baseline_description": run.baseline_description, "n_test": run.n_test})


# -- plots -------------------------------------------------------------------------------------------------

def plots_section(run: Run) -> Section | None:
    figures = [f for f in (_confusion(run), _f1(run), _bars(run), _projection(run)) if f]
    return Section("plots", "Plots", template="plots.html.j2", context={"figures": figures}) if figures else None


def _confusion(run: Run) -> Figure | None:
    cm = run.metrics.get("confusion_matrix")
    if not is_list(cm) or not cm or not run.labels:
        return None
    n, labels = run.n_test, run.labels
    title = "Confusion matrix" + (f" ({n:,} test items)" if n else "")
    caption = ("Rows are the true classes, columns the predicted ones. The colour is the share of the true "
               "class (each row adds up to 100%)" + ("; the numbers are item counts" if len(labels) <= 20 else "")
               + ". Dark cells off the diagonal are the classes the model confuses.")
    return figure("plot-confusion", lambda: plots.confusion_matrix_png(cm, labels, title=title), "Confusion matrix",
                  caption, layout="wide" if len(labels) > 14 else "")


def _f1(run: Run) -> Figure | None:
    labels = [c for c in run.labels if isinstance(run.per_class.get(c), Mapping)]
    if not labels:
        return None
    f1 = [num(run.per_class[c].get("f1")) for c in labels]
    base_pc = mapping(run.baseline_metrics.get("per_class"))
    base_f1 = [num(mapping(base_pc.get(c)).get("f1")) for c in labels] if base_pc else None
    if base_f1 is not None and all(v is None for v in base_f1):
        base_f1 = None
    caption = "F1 (the balance of precision and recall) of each class, hardest classes first"
    caption += ", transfer model next to the baseline." if base_f1 is not None else "."
    return figure("plot-per-class-f1", lambda: plots.per_class_f1_png(
        labels, f1, base_f1, name="transfer model", baseline_name=run.baseline_name or "baseline"),
        "F1 per class", caption)


def _bars(run: Run) -> Figure | None:
    if not run.has_baseline:
        return None
    verdict = run.verdict
    gain, interval, conf = num(verdict.get("gain")), ci(verdict), num(verdict.get("confidence"))
    metric = text(verdict.get("metric")) or "accuracy"
    caption = "Accuracy and macro F1 of the baseline and of the transfer model on the test set."
    if gain is not None:
        caption += (f" Right: the gain in {METRIC_WORDS.get(metric, metric)}, in percentage points"
                    + (f", with its {confidence_label(verdict)} as an error bar; an interval that crosses zero "
                       "means no significant difference." if interval else "."))
    return figure("plot-summary", lambda: plots.comparison_bars_png(
        run.metrics, run.baseline_metrics, gain=gain, ci=interval, gain_metric=metric, confidence=conf,
        verdict=text(verdict.get("verdict")), name="transfer model", baseline_name=run.baseline_name or "baseline"),
        "Baseline vs transfer", caption, layout="side")


def _projection(run: Run) -> Figure | None:
    proj = mapping(run.results.get("projection"))
    pts, labels = proj.get("points"), proj.get("labels")
    if not is_list(pts) or not pts or not is_list(labels):
        return None
    method = text(proj.get("method"))
    title = "Test items in 2-D" + (f" ({method})" if method else "")
    caption = ("Each dot is a test item, placed so that items with similar features lie close together; the colour "
               "is its true class. Compact, separate clusters mean the features already tell the classes apart. "
               "Only the neighbourhoods are meaningful, not the distances between clusters or the axes.")
    return figure("plot-projection", lambda: plots.projection_png(pts, labels, classes=run.labels, title=title),
                  "2-D projection of the test items", caption, layout="side")


# -- tables ------------------------------------------------------------------------------------------------

def comparison_section(run: Run) -> Section | None:
    rows_in = run.results.get("comparison")
    entries = [r for r in rows_in if isinstance(r, Mapping) and r] if is_list(rows_in) else []
    if not entries:
        return None
    keys = [k for k in _COMPARISON_COLUMNS if any(k in r for r in entries)]
    keys = list(dict.fromkeys(keys + [str(k) for r in entries for k in r]))
    scores = [k for k in keys if k in METRIC_WORDS]
    best = {k: max((v for v in (num(r.get(k)) for r in entries) if v is not None), default=None) for k in scores}
    this = (text(run.model.get("strategy")), text(run.model.get("backbone")))
    rows = []
    for r in entries:
        cells = []
        for k in keys:
            v = r.get(k)
            if k in scores:
                strong = num(v) is not None and num(v) == best[k] and len(entries) > 1
                cells.append({"css": "num strong" if strong else "num", "value": pct(v)})
            elif k.endswith("_s") and num(v) is not None:
                cells.append({"css": "num", "value": duration(v)})
            elif num(v) is not None:
                cells.append({"css": "num", "value": param(v)})
            else:
                cells.append({"css": "", "value": v if text(v) else DASH})
        current = this[0] is not None and (text(r.get("strategy")), text(r.get("backbone"))) == this
        rows.append({"cells": cells, "current": current})
    head = [_COMPARISON_COLUMNS.get(k, k.replace("_", " ").capitalize()) for k in keys]
    first_numeric = next((i for i, k in enumerate(keys) if k in scores or k.endswith("_s")), len(keys))
    return Section("comparison", "Strategies compared", template="comparison.html.j2",
                   context={"head": head, "rows": rows, "numeric_from": first_numeric},
                   intro="Other strategies tried on the same data and test split. The best score in each column "
                         "is in bold.")


def per_class_section(run: Run) -> Section | None:
    labels = [c for c in run.labels if isinstance(run.per_class.get(c), Mapping)]
    if not labels:
        return None
    base_pc = mapping(run.baseline_metrics.get("per_class"))
    with_base = any(isinstance(base_pc.get(c), Mapping) for c in labels)
    with_counts = any(num(run.class_counts.get(c)) is not None for c in labels)
    head = ["Class", "Precision", "Recall", "F1", *(["Baseline F1"] if with_base else []), "Support",
            *(["Class count"] if with_counts else [])]
    rows = [{"name": c, **{k: run.per_class[c].get(k) for k in ("precision", "recall", "f1", "support")},
             "base_f1": mapping(base_pc.get(c)).get("f1"), "class_count": run.class_counts.get(c)} for c in labels]
    return Section("per-class", "Per-class scores", template="per_class.html.j2",
                   context={"head": head, "rows": rows, "with_base": with_base, "with_counts": with_counts},
                   intro="Precision: of the items predicted as the class, the share that belong to it. Recall: of the "
                         "items of the class, the share found. F1 balances the two. Support: test items of the class.")


def timings_section(run: Run) -> Section | None:
    items = [(str(k), num(v)) for k, v in mapping(run.results.get("timings")).items()]
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return None
    total = next((v for k, v in items if k == "total_s"), None)
    rows = []
    for key, seconds in [i for i in items if i[0] != "total_s"] + [i for i in items if i[0] == "total_s"]:
        name = "Total" if key == "total_s" else (_TIMING_NAMES.get(key)
                                                 or key.removesuffix("_s").replace("_", " ").capitalize())
        share = f"{100 * seconds / total:.0f}%" if total and key != "total_s" else ""
        rows.append({"name": name, "seconds": seconds, "share": share, "total": key == "total_s"})
    return Section("timings", "Timings", template="timings.html.j2",
                   context={"head": ["Step", "Time", "Share of total" if total else ""], "rows": rows})
