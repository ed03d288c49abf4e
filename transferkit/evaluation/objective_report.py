"""The report's sections of the objectives beyond single-label classification: the residual plot of a
regression, the per-tag table of multi-label tagging, and for multi-task learning the per-task table (with
the single-task comparison), the per-task confusion matrices and the task weights over training.

Each builder reads ``results.json``'s dictionary defensively (a missing or malformed part leaves its
section out) and returns :class:`~transferkit.evaluation.page.Section` objects rendered by the report's
templates (autoescape on); the page around them is :mod:`transferkit.evaluation.report`'s.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import plots
from .formatting import decimal
from .page import Section, figure

_SHARING_CSS = {"helped": "pos", "hurt": "neg"}


def objective_sections(results: Mapping[str, Any]) -> list[Section]:
    """Every section the results' objective contributes (possibly none)."""
    out = [_residuals(results), _per_label(results), *_multi_task(results)]
    return [s for s in out if s is not None]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


# -- regression --------------------------------------------------------------------------------------------

def residuals_png(true: Sequence[float], predicted: Sequence[float]) -> bytes:
    """Predicted against true values (the diagonal is a perfect model) and the residuals' histogram."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t, p = np.asarray(true, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    fig = Figure(figsize=(8.6, 3.6), dpi=plots.DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.scatter(t, p, s=9, alpha=0.6, color=plots.TRANSFER_COLOR, linewidths=0)
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    left.plot([lo, hi], [lo, hi], color="#6b7280", linestyle="--", linewidth=1.2)
    left.set(xlabel="true value", ylabel="predicted value", title="Predicted vs true")
    right.hist(p - t, bins=min(40, max(5, len(t) // 10)), color=plots.TRANSFER_COLOR, alpha=0.85)
    right.axvline(0, color="#6b7280", linestyle="--", linewidth=1.2)
    right.set(xlabel="residual (predicted − true)", ylabel="test items", title="Residuals")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    fig.clear()
    return buf.getvalue()


def _residuals(results: Mapping[str, Any]) -> Section | None:
    r = results.get("residuals")
    if not isinstance(r, Mapping):
        return None
    t, p = r.get("true"), r.get("predicted")
    if not isinstance(t, list) or not isinstance(p, list) or len(t) != len(p) or len(t) < 2:
        return None
    fig = figure("plot-residuals", lambda: residuals_png(t, p), "Predicted against true values, and the residuals",
                 layout="wide")
    return Section("residuals", "Residuals", template="plots.html.j2", context={
        "figures": [fig], "note": "Points on the dashed diagonal are predicted exactly; the histogram shows how far "
                                  "off the predictions are, and whether the model leans one way."})


# -- multi-label -------------------------------------------------------------------------------------------

def _per_label(results: Mapping[str, Any]) -> Section | None:
    per = (results.get("metrics") or {}).get("per_label")
    if not isinstance(per, Mapping) or not per:
        return None
    base = ((results.get("baseline") or {}).get("metrics") or {}).get("per_label") or {}
    rows = []
    for tag, m in per.items():
        if not isinstance(m, Mapping):
            continue
        b = base.get(tag) if isinstance(base, Mapping) else None
        rows.append([tag, decimal(m.get("precision")), decimal(m.get("recall")), decimal(m.get("f1")),
                     decimal((b or {}).get("f1")), decimal(m.get("support"), "{:,.0f}")])
    return Section("per-label", "Per tag", template="table.html.j2", context={
        "head": ["tag", "precision", "recall", "F1", "F1 baseline", "support"], "rows": rows, "numeric_from": 1,
        "note": "Each tag has its own decision threshold, tuned for its F1 on held-out predictions of the "
                "training data."})


# -- multi-task --------------------------------------------------------------------------------------------

def task_weights_png(epochs: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> bytes:
    """The weight of each task's loss at each epoch (fixed weights are flat lines)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.4), dpi=plots.DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = [e.get("epoch", i + 1) for i, e in enumerate(epochs)]
    for task, color in zip(tasks, plots.class_colors(len(tasks)), strict=True):
        ax.plot(x, [e.get(f"train_w_{task}", np.nan) for e in epochs], marker="o", markersize=3, label=str(task),
                color=color)
    ax.set(xlabel="epoch", ylabel="loss weight", title="Task weights over training")
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    fig.clear()
    return buf.getvalue()


def _multi_task(results: Mapping[str, Any]) -> list[Section]:
    tasks_metrics = (results.get("metrics") or {}).get("tasks")
    if not isinstance(tasks_metrics, Mapping) or not tasks_metrics:
        return []
    base = ((results.get("baseline") or {}).get("metrics") or {}).get("tasks") or {}
    single = results.get("single_task") or {}
    verdicts = (results.get("verdict") or {}).get("tasks") or {}
    rows = []
    for task, m in tasks_metrics.items():
        s = single.get(task) or {}
        sharing = s.get("sharing") if _finite(s.get("ci_low")) and _finite(s.get("ci_high")) else None
        rows.append({"task": task, "accuracy": (m or {}).get("accuracy"), "baseline": (base.get(task) or {}).get("accuracy"),
                     "verdict": (verdicts.get(task) or {}).get("verdict", "—"), "alone": s.get("single_task_accuracy"),
                     "sharing": sharing, "sharing_css": _SHARING_CSS.get(sharing or "", ""),
                     "ci_low": decimal(100 * s["ci_low"], "{:+.1f}") if sharing else "",
                     "ci_high": decimal(100 * s["ci_high"], "{:+.1f}") if sharing else ""})
    out = [Section("tasks", "Per task", template="tasks.html.j2", context={"rows": rows})]
    figures = []
    for i, (task, m) in enumerate(tasks_metrics.items()):
        cm, labels = (m or {}).get("confusion_matrix"), (m or {}).get("labels")
        if isinstance(cm, list) and isinstance(labels, list) and cm:
            fig = figure(f"plot-task-{i}-confusion", lambda cm=cm, labels=labels, task=task: plots.confusion_matrix_png(
                cm, labels, title=f"Task {task}"), f"Confusion matrix of task {task}")
            if fig.error is None:  # a malformed matrix leaves its plot out, not the report
                figures.append(fig)
    if figures:
        out.append(Section("task-confusion", "Confusion matrix per task", template="plots.html.j2",
                           context={"figures": figures}))
    epochs = (results.get("history") or {}).get("epochs")
    if isinstance(epochs, list) and epochs and isinstance(epochs[0], Mapping) \
            and any(str(k).startswith("train_w_") for k in epochs[0]):
        fig = figure("plot-task-weights", lambda: task_weights_png(epochs, list(tasks_metrics)),
                     "Weight of each task's loss per epoch")
        out.append(Section("task-weights", "Task weights over training", template="plots.html.j2",
                           context={"figures": [fig]}))
    return out
