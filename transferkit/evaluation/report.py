"""The self-contained HTML report of a ``transferkit fit`` run (``model/report.html``).

:func:`render_report` turns the ``results`` dictionary (what ``results.json`` holds) into one HTML file
that needs nothing else: the CSS is inline, the plots are PNG images embedded as ``data:`` URIs, and the
text uses the reader's system fonts. It opens offline, can be mailed as an attachment, and prints.

Sections, in order:

1. header: dataset, model, date, and the verdict as a coloured badge with the gain and its confidence
   interval in words, the explanation and the suggested next steps;
2. metrics table: transfer model vs baseline (accuracy, macro precision / recall / F1);
3. plots: confusion matrix, per-class F1, baseline vs transfer bars with the gain, 2-D projection of the
   test items, learning curves (fine-tuning only);
4. comparison table of other strategies tried on the same data;
5. per-class table (precision, recall, F1, support);
6. timings;
7. footer with the transferkit version.

Only ``metrics`` is required. Every other key may be missing or ``None``, and its section is then left
out. Malformed plot data (e.g. a confusion matrix whose size does not match the labels) leaves a one-line
note in place of the plot instead of failing the whole report. Every string that comes from the user
(class names, dataset name, free text) is HTML-escaped.

The file is written atomically: the whole document is built in memory first, then written to a temporary
file in the target directory and moved over ``path``. If anything fails, an existing report is untouched.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from numbers import Real
from pathlib import Path
from typing import Any

from .. import __version__
from .._utils import atomic_write_text
from ..exceptions import ConfigError
from . import plots
from .objective_report import objective_sections

_METRICS = (
    ("accuracy", "Accuracy"),
    ("precision_macro", "Macro precision"),
    ("recall_macro", "Macro recall"),
    ("f1_macro", "Macro F1"),
)
_METRIC_WORDS = {
    "accuracy": "accuracy",
    "f1_macro": "macro F1",
    "precision_macro": "macro precision",
    "recall_macro": "balanced accuracy (macro recall)",
    "balanced_accuracy": "balanced accuracy",
}
_VERDICT_CLASS = {
    "positive transfer": "positive",
    "no significant gain": "neutral",
    "negative transfer": "negative",
}
_TIMING_NAMES = {
    "extract_s": "Feature extraction",
    "head_s": "Head training",
    "train_s": "Training",
    "finetune_s": "Fine-tuning",
    "predict_s": "Prediction",
    "baseline_s": "Baseline",
    "evaluate_s": "Evaluation",
    "report_s": "Report",
}
_COMPARISON_COLUMNS = {
    "strategy": "Strategy",
    "backbone": "Backbone",
    "layer": "Layer",
    "head": "Head",
    "accuracy": "Accuracy",
    "f1_macro": "Macro F1",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
    "time_s": "Time",
}
_MINUS = "\u2212"
_DASH = '<span class="na">—</span>'


def render_report(results: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of a fit to ``path`` (atomically) and return the path.

    Args:
        results: the results of ``transferkit fit`` (the content of ``results.json``). Only ``metrics``
            is required; any other section may be missing or ``None`` and is then left out.
        path: the HTML file to write; its directory is created if needed. An existing file is replaced
            only once the new report is complete.

    Raises:
        ConfigError: ``results`` is not a dictionary or has no ``metrics`` dictionary.
    """
    document = report_html(results)
    out = Path(path)
    atomic_write_text(out, document)
    return out


def report_html(results: Mapping[str, Any]) -> str:
    """The report as one HTML string (what :func:`render_report` writes)."""
    if not isinstance(results, Mapping):
        raise ConfigError(f"results must be a dictionary (the content of results.json), got {type(results).__name__}")
    metrics = results.get("metrics")
    if not isinstance(metrics, Mapping):
        raise ConfigError("results has no 'metrics' dictionary; pass the dictionary written to results.json "
                          "by `transferkit fit`")
    ctx = _Context(results)
    body = [
        _header(ctx),  # includes the verdict
        _metrics_table(ctx),
        _plots(ctx),
        *[_section(sid, title, content) for sid, title, content in objective_sections(results)],
        _comparison(ctx),
        _per_class(ctx),
        _timings(ctx),
    ]
    title = "transferkit report" + (f" — {ctx.dataset_name}" if ctx.dataset_name else "")
    version = _text(results.get("transferkit_version")) or __version__
    return _PAGE.format(
        title=_esc(title),
        generator=_esc(f"transferkit {version}"),
        css=_CSS,
        body="\n".join(part for part in body if part),
        footer=_footer(ctx, version),
    )


# --------------------------------------------------------------------------------------------------------
# reading the results defensively


class _Context:
    """The parts of ``results`` the sections share, read once and type-checked."""

    def __init__(self, results: Mapping[str, Any]) -> None:
        self.results = results
        self.metrics: Mapping[str, Any] = results["metrics"]
        self.dataset = _mapping(results.get("dataset"))
        self.model = _mapping(results.get("model"))
        baseline = _mapping(results.get("baseline"))
        self.baseline_metrics = _mapping(baseline.get("metrics")) if baseline else {}
        self.baseline_name = _text(baseline.get("name")) if baseline else None
        self.baseline_description = _text(baseline.get("description")) if baseline else None
        self.has_baseline = bool(self.baseline_metrics)
        self.verdict = _mapping(results.get("verdict"))
        self.dataset_name = _text(self.dataset.get("name"))
        self.per_class = _mapping(self.metrics.get("per_class"))
        labels = self.metrics.get("labels")
        if _is_list(labels) and labels:
            self.labels = [str(x) for x in labels]
        else:
            self.labels = [str(x) for x in self.per_class]
        counts = _mapping(self.dataset.get("class_counts"))
        self.class_counts = {str(k): v for k, v in counts.items()}
        self.n_test = _int(self.metrics.get("n")) or _int(self.dataset.get("n_test"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _num(value: Any) -> float | None:
    """A finite number, or ``None`` (missing, ``None``, NaN, a bool, not a number)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    v = _num(value)
    return int(round(v)) if v is not None else None


# --------------------------------------------------------------------------------------------------------
# formatting


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _code_spans(escaped: str) -> str:
    """Turn `backticks` in already-escaped text into <code> (the verdict's next steps use them)."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", escaped)


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def _pct(value: Any, digits: int = 1) -> str:
    v = _num(value)
    return _DASH if v is None else f"{100 * v:.{digits}f}%"


def _points(fraction: float) -> str:
    """A difference of two scores in [0, 1], in signed percentage points: ``+5.0``, ``−2.3``, ``0.0``."""
    value = round(100 * fraction, 1)
    if value == 0:
        return "0.0"
    return f"{value:+.1f}".replace("-", _MINUS)


def _count(value: Any) -> str:
    v = _num(value)
    if v is None:
        return _DASH
    return f"{int(v):,}" if v.is_integer() else f"{v:,.2f}"


def _duration(value: Any) -> str:
    s = _num(value)
    if s is None:
        return _DASH
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec:02d} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h} h {rest // 60:02d} min"


def _date(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    stamp = when.strftime("%d %b %Y, %H:%M").lstrip("0")
    if when.tzinfo is None:
        return stamp
    if when.utcoffset() == timezone.utc.utcoffset(None):
        return stamp + " UTC"
    return stamp + " " + when.strftime("%z")[:3] + ":" + when.strftime("%z")[3:]


def _confidence_label(verdict: Mapping[str, Any]) -> str:
    conf = _num(verdict.get("confidence"))
    if conf is None or not 0 < conf < 1:
        return "CI"
    return f"{round(100 * conf, 1):g}% CI"


def _ci(verdict: Mapping[str, Any]) -> tuple[float, float] | None:
    lo, hi = _num(verdict.get("ci_low")), _num(verdict.get("ci_high"))
    return (lo, hi) if lo is not None and hi is not None else None


def _section(section_id: str, title: str, content: str, intro: str = "") -> str:
    intro_html = f'<p class="intro">{intro}</p>' if intro else ""
    return f'<section id="{section_id}">\n<h2>{_esc(title)}</h2>\n{intro_html}\n{content}\n</section>'


# --------------------------------------------------------------------------------------------------------
# 1. header and verdict


def _header(ctx: _Context) -> str:
    model = ctx.model
    subtitle = []
    backbone = _text(model.get("backbone"))
    if backbone:
        strategy = _text(model.get("strategy"))
        subtitle.append(f"<strong>{_esc(backbone)}</strong>" + (f" · {_esc(strategy)}" if strategy else ""))
    created = _date(ctx.results.get("created"))
    if created:
        subtitle.append(f"<time>{_esc(created)}</time>")
    heading = _esc(ctx.dataset_name) if ctx.dataset_name else "Fit report"
    groups = [group for group in (_dataset_card(ctx), _model_card(model)) if group]
    facts = f'<div class="facts">{"".join(groups)}</div>' if groups else ""
    sub = f'<p class="subtitle">{" · ".join(subtitle)}</p>' if subtitle else ""
    return (f'<header class="top" id="header">\n<p class="eyebrow">transferkit · fit report</p>\n'
            f"<h1>{heading}</h1>\n{sub}\n{_verdict(ctx)}\n{facts}\n</header>")


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _dataset_card(ctx: _Context) -> str:
    ds = ctx.dataset
    if not ds:
        return ""
    rows: list[tuple[str, str]] = []
    if _text(ds.get("modality")):
        rows.append(("Modality", _esc(ds["modality"])))
    n_items, n_train, n_test = (_num(ds.get(k)) for k in ("n_items", "n_train", "n_test"))
    split = " / ".join(f"{_count(v)} {w}" for v, w in ((n_train, "train"), (n_test, "test")) if v is not None)
    if n_items is not None:
        rows.append(("Items", _count(n_items) + (f' <span class="muted">({split})</span>' if split else "")))
    elif split:
        rows.append(("Items", split))
    classes = ds.get("classes")
    n_classes = len(classes) if _is_list(classes) else len(ctx.labels) if ctx.labels else None
    if n_classes:
        rows.append(("Classes", _count(n_classes) + _balance(ctx.class_counts)))
    if _text(ds.get("split")):
        rows.append(("Test split", _esc(ds["split"])))
    if not rows:
        return ""
    return f'<div class="fact-group" id="dataset"><h3>Dataset</h3>{_dl(rows)}</div>'


def _balance(counts: Mapping[str, Any]) -> str:
    values = [v for v in (_num(c) for c in counts.values()) if v is not None]
    if len(values) < 2 or min(values) <= 0:
        return ""
    lo, hi = min(values), max(values)
    if lo == hi:
        return f' <span class="muted">({_count(lo)} per class)</span>'
    return f' <span class="muted">({_count(lo)}–{_count(hi)} per class)</span>'


def _model_card(model: Mapping[str, Any]) -> str:
    if not model:
        return ""
    rows: list[tuple[str, str]] = []
    for key, name in (("backbone", "Backbone"), ("layer", "Layer"), ("strategy", "Strategy")):
        if _text(model.get(key)):
            rows.append((name, _esc(model[key])))
    head = _text(model.get("head"))
    params = _mapping(model.get("head_params"))
    shown = ", ".join(f"{_esc(k)} = {_esc(_param(v))}" for k, v in params.items() if not k.endswith("selected_by"))
    if head:
        rows.append(("Head", _esc(head) + (f' <span class="muted">({shown})</span>' if shown else "")))
    elif shown:
        rows.append(("Head parameters", shown))
    if _text(params.get("selected_by")):
        rows.append(("Chosen by", _esc(params["selected_by"])))
    n_features = _num(model.get("n_features"))
    if n_features is not None:
        rows.append(("Features", _count(n_features)))
    size = _num(model.get("image_size"))
    if size is not None:
        rows.append(("Input size", f"{_count(size)} px"))
    if _text(model.get("engine")):
        rows.append(("Engine", _esc(model["engine"])))
    weights = _text(model.get("weights_id"))
    if weights:
        short = weights if len(weights) <= 16 else weights[:12] + "…"
        rows.append(("Weights", f'<code title="{_esc(weights)}">{_esc(short)}</code>'))
    if not rows:
        return ""
    return f'<div class="fact-group" id="model"><h3>Model</h3>{_dl(rows)}</div>'


def _param(value: Any) -> str:
    v = _num(value)
    if v is not None and not isinstance(value, int):
        return f"{v:.4g}"
    return str(value)


def _gain_sentence(ctx: _Context) -> str | None:
    """``+5.0 points accuracy over raw-pixel logistic regression (95% CI +3.0 to +7.0)`` (escaped HTML)."""
    verdict = ctx.verdict
    gain = _num(verdict.get("gain"))
    if gain is None:
        return None
    metric = _text(verdict.get("metric")) or "accuracy"
    words = _METRIC_WORDS.get(metric, metric)
    over = "over" if round(100 * gain, 1) >= 0 else "relative to"
    against = ctx.baseline_name or "the baseline"
    text = f"{_points(gain)} points {words} {over} {against}"
    ci = _ci(verdict)
    if ci is not None:
        text += f" ({_confidence_label(verdict)} {_points(ci[0])} to {_points(ci[1])})"
    return _esc(text)


def _verdict(ctx: _Context) -> str:
    verdict = ctx.verdict
    if not verdict:
        return ""
    label = _text(verdict.get("verdict"))
    kind = _VERDICT_CLASS.get(label or "", "unknown")
    parts = []
    if label:
        parts.append(f'<p class="badge-row"><span class="badge badge-{kind}">{_esc(label.capitalize())}</span></p>')
    gain = _gain_sentence(ctx)
    if gain:
        parts.append(f'<p class="gain">{gain}</p>')
    explanation = _text(verdict.get("explanation"))
    if explanation:
        parts.append(f'<p class="explanation">{_code_spans(_esc(explanation))}</p>')
    steps = verdict.get("next_steps")
    if _is_list(steps) and steps:
        items = "".join(f"<li>{_code_spans(_esc(s))}</li>" for s in steps if _text(s))
        parts.append(f'<div class="next-steps"><h3>Next steps</h3><ul>{items}</ul></div>')
    method = _text(verdict.get("method"))
    if method:
        parts.append(f'<p class="method">Interval: {_esc(method)}.</p>')
    if not parts:
        return ""
    return f'<section class="verdict verdict-{kind}" id="verdict">\n' + "\n".join(parts) + "\n</section>"


# --------------------------------------------------------------------------------------------------------
# 2. metrics


def _metrics_table(ctx: _Context) -> str:
    base = ctx.baseline_metrics if ctx.has_baseline else None
    verdict_metric = _text(ctx.verdict.get("metric")) or "accuracy"
    ci = _ci(ctx.verdict)
    head: list[str] = ["Metric", "Transfer model"]
    if base is not None:
        sub = f'<span class="sub">{_esc(ctx.baseline_name)}</span>' if ctx.baseline_name else ""
        head += [_Html("Baseline" + sub), "Difference"]
    rows = []
    for key, name in _METRICS:
        ours = _num(ctx.metrics.get(key))
        cells = [f'<th scope="row">{name}</th>', f'<td class="num strong">{_pct(ours)}</td>']
        if base is not None:
            theirs = _num(base.get(key))
            cells.append(f'<td class="num">{_pct(theirs)}</td>')
            if ours is not None and theirs is not None:
                diff = f"{_points(ours - theirs)} pts"
                if key == verdict_metric and ci is not None:
                    diff += (f'<span class="ci">{_esc(_confidence_label(ctx.verdict))} '
                             f"{_points(ci[0])} to {_points(ci[1])}</span>")
                cells.append(f'<td class="num">{diff}</td>')
            else:
                cells.append(f'<td class="num">{_DASH}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = _table(head, rows, numeric_from=1, css="metrics")
    notes = []
    if ctx.n_test:
        notes.append(f"Scores on {_count(ctx.n_test)} held-out test items.")
    notes.append("Macro scores are the unweighted mean over classes, so every class counts the same.")
    if base is not None and ctx.baseline_description:
        notes.append(f"Baseline: {_code_spans(_esc(_sentence(ctx.baseline_description)))}")
    return _section("metrics", "Metrics", table + f'<p class="note">{" ".join(notes)}</p>')


class _Html(str):
    """A table heading that is already HTML (not escaped again)."""


def _table(head: Sequence[str], rows: Sequence[str], *, numeric_from: int = 1, css: str = "") -> str:
    num = ' class="num"'
    ths = "".join(f'<th scope="col"{num if i >= numeric_from else ""}>{h if isinstance(h, _Html) else _esc(h)}</th>'
                  for i, h in enumerate(head))
    body = "\n".join(rows)
    return f'<div class="table-wrap"><table class="{css}"><thead><tr>{ths}</tr></thead><tbody>\n{body}\n</tbody></table></div>'


# --------------------------------------------------------------------------------------------------------
# 3. plots


def _img(png: bytes, alt: str) -> tuple[str, int]:
    """The ``<img>`` tag of a PNG and its width in CSS pixels."""
    width, height = struct.unpack(">II", png[16:24])  # PNG IHDR
    scale = 100 / plots.DPI  # shown at 100 CSS px per inch, sharp on high-density screens
    css_width, css_height = round(width * scale), round(height * scale)
    data = base64.b64encode(png).decode("ascii")
    tag = f'<img src="data:image/png;base64,{data}" width="{css_width}" height="{css_height}" alt="{_esc(alt)}">'
    return tag, css_width


def _figure(fig_id: str, draw: Callable[[], bytes], alt: str, caption: str, *, layout: str = "") -> str:
    """One plot with its caption; a plot whose data is malformed becomes a note instead.

    ``layout``: "" (caption below, may share a row with the next plot), "wide" (a row of its own) or "side"
    (a row of its own, caption to the right of the plot).
    """
    try:
        png = draw()
    except ConfigError as exc:
        return (f'<figure class="plot missing" id="{fig_id}"><p class="note">{_esc(alt)} not drawn: '
                f"{_esc(exc)}</p></figure>")
    css = f"plot {layout}".strip()
    tag, width = _img(png, alt)
    size = f' style="width: {width}px"' if not layout else ""  # the caption wraps at the image's width
    return f'<figure class="{css}" id="{fig_id}"{size}>{tag}<figcaption>{caption}</figcaption></figure>'


def _plots(ctx: _Context) -> str:
    figures = [
        _confusion_figure(ctx),
        _f1_figure(ctx),
        _bars_figure(ctx),
        _projection_figure(ctx),
        _history_figure(ctx),
    ]
    figures = [f for f in figures if f]
    if not figures:
        return ""
    return _section("plots", "Plots", '<div class="plots">\n' + "\n".join(figures) + "\n</div>")


def _confusion_figure(ctx: _Context) -> str:
    cm = ctx.metrics.get("confusion_matrix")
    if not _is_list(cm) or not cm or not ctx.labels:
        return ""
    n = ctx.n_test
    title = "Confusion matrix" + (f" ({n:,} test items)" if n else "")
    labels = ctx.labels
    caption = ("Rows are the true classes, columns the predicted ones. The colour is the share of the true "
               "class (each row adds up to 100%)"
               + ("; the numbers are item counts" if len(labels) <= 20 else "")
               + ". Dark cells off the diagonal are the classes the model confuses.")
    return _figure("plot-confusion", lambda: plots.confusion_matrix_png(cm, labels, title=title),
                   "Confusion matrix", caption, layout="wide" if len(labels) > 14 else "")


def _f1_figure(ctx: _Context) -> str:
    if not ctx.per_class or not ctx.labels:
        return ""
    labels = [c for c in ctx.labels if isinstance(ctx.per_class.get(c), Mapping)]
    if not labels:
        return ""
    f1 = [_num(ctx.per_class[c].get("f1")) for c in labels]
    base_pc = _mapping(ctx.baseline_metrics.get("per_class"))
    base_f1 = None
    if base_pc:
        base_f1 = [_num(_mapping(base_pc.get(c)).get("f1")) for c in labels]
        if all(v is None for v in base_f1):
            base_f1 = None
    caption = "F1 (the balance of precision and recall) of each class, hardest classes first"
    caption += ", transfer model next to the baseline." if base_f1 is not None else "."
    return _figure("plot-per-class-f1",
                   lambda: plots.per_class_f1_png(labels, f1, base_f1, name="transfer model",
                                                  baseline_name=ctx.baseline_name or "baseline"),
                   "F1 per class", caption)


def _bars_figure(ctx: _Context) -> str:
    if not ctx.has_baseline:
        return ""
    verdict = ctx.verdict
    gain = _num(verdict.get("gain"))
    metric = _text(verdict.get("metric")) or "accuracy"
    ci = _ci(verdict)
    conf = _num(verdict.get("confidence"))
    caption = "Accuracy and macro F1 of the baseline and of the transfer model on the test set."
    if gain is not None:
        caption += (f" Right: the gain in {_esc(_METRIC_WORDS.get(metric, metric))}, in percentage points"
                    + (f", with its {_esc(_confidence_label(verdict))} as an error bar; an interval that "
                       "crosses zero means no significant difference." if ci else "."))
    return _figure("plot-summary",
                   lambda: plots.comparison_bars_png(
                       ctx.metrics, ctx.baseline_metrics, gain=gain, ci=ci, gain_metric=metric, confidence=conf,
                       verdict=_text(verdict.get("verdict")), name="transfer model",
                       baseline_name=ctx.baseline_name or "baseline"),
                   "Baseline vs transfer", caption, layout="side")


def _projection_figure(ctx: _Context) -> str:
    proj = _mapping(ctx.results.get("projection"))
    points, labels = proj.get("points"), proj.get("labels")
    if not _is_list(points) or not points or not _is_list(labels):
        return ""
    method = _text(proj.get("method"))
    title = "Test items in 2-D" + (f" ({method})" if method else "")
    caption = ("Each dot is a test item, placed so that items with similar features lie close together; the colour "
               "is its true class. Compact, separate clusters mean the features already tell the classes apart. "
               "Only the neighbourhoods are meaningful, not the distances between clusters or the axes.")
    return _figure("plot-projection",
                   lambda: plots.projection_png(points, labels, classes=ctx.labels, title=title),
                   "2-D projection of the test items", caption, layout="side")


def _history_figure(ctx: _Context) -> str:
    history = _mapping(ctx.results.get("history"))
    epochs = history.get("epochs")
    if not _is_list(epochs) or not epochs:
        return ""
    boundary = _num(history.get("stage_boundary"))
    caption = ("Loss and accuracy per epoch on the training data (solid) and the validation data (dashed)."
               + (" The dotted line marks the start of the next training stage." if boundary is not None
                  or any(isinstance(e, Mapping) and e.get("stage") not in (None, 1) for e in epochs) else "")
               + " A validation loss that rises while the training loss keeps falling is a sign of over-fitting.")
    return _figure("plot-history", lambda: plots.learning_curves_png(epochs, boundary), "Learning curves",
                   caption, layout="wide")


# --------------------------------------------------------------------------------------------------------
# 4.–6. tables


def _comparison(ctx: _Context) -> str:
    rows_in = ctx.results.get("comparison")
    if not _is_list(rows_in):
        return ""
    entries = [r for r in rows_in if isinstance(r, Mapping) and r]
    if not entries:
        return ""
    keys: list[str] = [k for k in _COMPARISON_COLUMNS if any(k in r for r in entries)]
    keys += [str(k) for r in entries for k in r if k not in keys and str(k) not in keys]
    keys = list(dict.fromkeys(keys))
    scores = [k for k in keys if k in _METRIC_WORDS]
    best = {k: max((v for v in (_num(r.get(k)) for r in entries) if v is not None), default=None) for k in scores}
    this = (_text(ctx.model.get("strategy")), _text(ctx.model.get("backbone")))
    rows = []
    for r in entries:
        cells = []
        for k in keys:
            v = r.get(k)
            if k in scores:
                value = _num(v)
                strong = value is not None and value == best[k] and len(entries) > 1
                cells.append(f'<td class="num{" strong" if strong else ""}">{_pct(v)}</td>')
            elif k.endswith("_s") and _num(v) is not None:
                cells.append(f'<td class="num">{_duration(v)}</td>')
            elif _num(v) is not None:
                cells.append(f'<td class="num">{_esc(_param(v))}</td>')
            else:
                cells.append(f"<td>{_esc(v) if _text(v) else _DASH}</td>")
        current = this[0] is not None and (_text(r.get("strategy")), _text(r.get("backbone"))) == this
        if current:
            cells[0] = cells[0].replace("</td>", ' <span class="tag">this run</span></td>', 1)
        row_css = ' class="current"' if current else ""
        rows.append(f"<tr{row_css}>" + "".join(cells) + "</tr>")
    head = [_COMPARISON_COLUMNS.get(k, k.replace("_", " ").capitalize()) for k in keys]
    first_numeric = next((i for i, k in enumerate(keys) if k in scores or k.endswith("_s")), len(keys))
    intro = "Other strategies tried on the same data and test split. The best score in each column is in bold."
    return _section("comparison", "Strategies compared", _table(head, rows, numeric_from=first_numeric), intro)


def _per_class(ctx: _Context) -> str:
    labels = [c for c in ctx.labels if isinstance(ctx.per_class.get(c), Mapping)]
    if not labels:
        return ""
    base_pc = _mapping(ctx.baseline_metrics.get("per_class"))
    with_base = any(isinstance(base_pc.get(c), Mapping) for c in labels)
    with_counts = any(_num(ctx.class_counts.get(c)) is not None for c in labels)
    head = ["Class", "Precision", "Recall", "F1"]
    if with_base:
        head.append("Baseline F1")
    head.append("Support")
    if with_counts:
        head.append("Class count")
    rows = []
    for c in labels:
        m = ctx.per_class[c]
        cells = [f'<th scope="row">{_esc(c)}</th>',
                 f'<td class="num">{_pct(m.get("precision"))}</td>',
                 f'<td class="num">{_pct(m.get("recall"))}</td>',
                 f'<td class="num strong">{_pct(m.get("f1"))}</td>']
        if with_base:
            cells.append(f'<td class="num muted">{_pct(_mapping(base_pc.get(c)).get("f1"))}</td>')
        cells.append(f'<td class="num">{_count(m.get("support"))}</td>')
        if with_counts:
            cells.append(f'<td class="num">{_count(ctx.class_counts.get(c))}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    intro = ("Precision: of the items predicted as the class, the share that belong to it. Recall: of the items of "
             "the class, the share found. F1 balances the two. Support: test items of the class.")
    return _section("per-class", "Per-class scores", _table(head, rows, css="per-class"), intro)


def _timings(ctx: _Context) -> str:
    timings = _mapping(ctx.results.get("timings"))
    items = [(str(k), _num(v)) for k, v in timings.items()]
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return ""
    total = next((v for k, v in items if k == "total_s"), None)
    rows = []
    for key, seconds in [i for i in items if i[0] != "total_s"] + [i for i in items if i[0] == "total_s"]:
        name = "Total" if key == "total_s" else _TIMING_NAMES.get(key) or key.removesuffix("_s").replace("_", " ").capitalize()
        share = f"{100 * seconds / total:.0f}%" if total and key != "total_s" else ""
        css = ' class="total"' if key == "total_s" else ""
        rows.append(f'<tr{css}><th scope="row">{_esc(name)}</th><td class="num">{_duration(seconds)}</td>'
                    f'<td class="num muted">{share}</td></tr>')
    head = ["Step", "Time", "Share of total" if total else ""]
    return _section("timings", "Timings", _table(head, rows, css="timings"))


def _footer(ctx: _Context, version: str) -> str:
    parts = [f"Generated by transferkit {_esc(version)}"]
    created = _date(ctx.results.get("created"))
    if created:
        parts.append(f"run of {_esc(created)}")
    parts.append("self-contained file: no network access needed")
    return '<footer id="footer">' + " · ".join(parts) + "</footer>"


# --------------------------------------------------------------------------------------------------------
# page template

_CSS = """
:root {
  --text: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f6f7f9; --card: #ffffff;
  --accent: #2563eb; --pos: #15803d; --neutral: #6b7280; --neg: #b91c1c;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
        "Liberation Sans", sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 32px 36px 24px; background: var(--card);
       min-height: 100vh; box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 28px; line-height: 1.2; margin: 2px 0 6px; letter-spacing: -0.01em; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 0 0 8px; }
section { margin: 36px 0 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
       font-size: 0.88em; background: #f1f3f6; padding: 1px 5px; border-radius: 4px; }
.eyebrow { margin: 0; color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: 0.08em; }
.subtitle { margin: 0 0 18px; color: var(--muted); font-size: 15px; }
.subtitle strong { color: var(--text); }
.muted, .na { color: var(--muted); }
.facts { display: flex; flex-wrap: wrap; gap: 12px 0; margin-top: 18px; border: 1px solid var(--line);
         border-radius: 10px; padding: 14px 0; }
.fact-group { flex: 1 1 340px; padding: 0 22px; }
.fact-group + .fact-group { border-left: 1px solid var(--line); }
.fact-group dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
.fact-group dt { color: var(--muted); }
.fact-group dd { margin: 0; overflow-wrap: anywhere; }
.verdict { margin-top: 18px; border-radius: 12px; padding: 18px 22px; border: 1px solid var(--line);
           border-left: 6px solid var(--neutral); background: #f8f9fb; }
.verdict-positive { border-left-color: var(--pos); background: #f0faf3; }
.verdict-negative { border-left-color: var(--neg); background: #fdf3f3; }
.badge-row { margin: 0 0 8px; }
.badge { display: inline-block; padding: 5px 14px; border-radius: 999px; color: #fff; font-weight: 700;
         font-size: 15px; letter-spacing: 0.02em; background: var(--neutral); }
.badge-positive { background: var(--pos); }
.badge-negative { background: var(--neg); }
.gain { font-size: 20px; font-weight: 600; margin: 4px 0 8px; }
.explanation { margin: 0 0 10px; max-width: 80ch; }
.next-steps h3 { margin: 12px 0 4px; }
.next-steps ul { margin: 0; padding-left: 22px; max-width: 90ch; }
.next-steps li { margin: 2px 0; }
.method { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 14.5px; }
th, td { padding: 6px 14px; text-align: left; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted);
           font-weight: 600; border-bottom: 2px solid var(--line); }
tbody th { font-weight: 500; overflow-wrap: anywhere; }
tbody tr:hover { background: #f8fafc; }
.num { text-align: right; white-space: nowrap; }
.strong { font-weight: 600; }
thead th .sub { display: block; text-transform: none; letter-spacing: 0; font-weight: 400; font-size: 12px; }
.ci { display: block; font-size: 12px; color: var(--muted); font-weight: 400; }
table.metrics td, table.metrics th { padding: 8px 18px; }
table.per-class tbody th { max-width: 340px; }
tr.current { background: #eff6ff; }
tr.total th, tr.total td { font-weight: 700; border-top: 2px solid var(--line); }
.tag { display: inline-block; margin-left: 6px; padding: 0 7px; border-radius: 999px; font-size: 11.5px;
       background: #dbeafe; color: #1e40af; font-weight: 600; vertical-align: 1px; }
.intro, .note { color: var(--muted); font-size: 13.5px; max-width: 95ch; }
.intro { margin: -4px 0 12px; }
.note { margin: 10px 0 0; }
.plots { display: flex; flex-wrap: wrap; gap: 28px 36px; align-items: flex-start; }
figure.plot { margin: 0; flex: 0 1 auto; max-width: 100%; }
figure.plot.wide { flex-basis: 100%; }
figure.plot.side { flex-basis: 100%; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 32px; }
figure.plot.side figcaption { flex: 1 1 260px; max-width: 46ch; margin: 0; }
figure.plot img { display: block; max-width: 100%; height: auto; }
figure.plot figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; max-width: 75ch; }
figure.plot.missing { flex-basis: 100%; }
footer { margin-top: 40px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
@media (max-width: 700px) { main { padding: 20px 16px; } .facts { grid-template-columns: 1fr; } }
@media print {
  body { background: #fff; } main { box-shadow: none; max-width: none; padding: 0; }
  section, figure, tr { break-inside: avoid; }
}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{generator}">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
{footer}
</main>
</body>
</html>
"""

__all__ = ["render_report", "report_html"]
