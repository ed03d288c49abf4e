"""The report's sections of the objectives beyond single-label classification: the residual plot of a
regression, the per-tag table of multi-label tagging, and for multi-task learning the per-task table (with
the single-task comparison), the per-task confusion matrices and the task weights over training.

Each function reads ``results.json``'s dictionary defensively (a missing or malformed part leaves its
section out) and returns escaped HTML; the page around it is :mod:`transferkit.evaluation.report`'s.
"""

from __future__ import annotations

import base64
import html
import io
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..exceptions import ConfigError
from . import plots

_SHARING_CSS = {"helped": "pos", "hurt": "neg"}


def objective_sections(results: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(id, title, html)`` of every section the results' objective contributes (possibly none)."""
    out = [_residuals(results), _per_label(results), *_multi_task(results)]
    return [s for s in out if s is not None]


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _num(v: Any, fmt: str = "{:.3f}") -> str:
    return fmt.format(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else "—"


def _img(png: bytes, alt: str) -> str:
    width, height = struct.unpack(">II", png[16:24])
    scale = 100 / plots.DPI
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="plot"><img src="data:image/png;base64,{data}" width="{round(width * scale)}" '
            f'height="{round(height * scale)}" alt="{_esc(alt)}"></figure>')


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    ths = "".join(f'<th scope="col"{" class=num" if i else ""}>{_esc(h)}</th>' for i, h in enumerate(head))
    trs = "\n".join("<tr>" + "".join(f"<td{' class=num' if i else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                    for r in rows)
    return f'<div class="table-wrap"><table><thead><tr>{ths}</tr></thead><tbody>\n{trs}\n</tbody></table></div>'


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


def _residuals(results: Mapping[str, Any]) -> tuple[str, str, str] | None:
    r = results.get("residuals")
    if not isinstance(r, Mapping):
        return None
    t, p = r.get("true"), r.get("predicted")
    if not isinstance(t, list) or not isinstance(p, list) or len(t) != len(p) or len(t) < 2:
        return None
    return ("residuals", "Residuals",
            _img(residuals_png(t, p), "Predicted against true values, and the residuals")
            + "<p class=\"note\">Points on the dashed diagonal are predicted exactly; the histogram shows how far "
              "off the predictions are, and whether the model leans one way.</p>")


# -- multi-label -------------------------------------------------------------------------------------------

def _per_label(results: Mapping[str, Any]) -> tuple[str, str, str] | None:
    per = (results.get("metrics") or {}).get("per_label")
    if not isinstance(per, Mapping) or not per:
        return None
    base = ((results.get("baseline") or {}).get("metrics") or {}).get("per_label") or {}
    rows = []
    for tag, m in per.items():
        if not isinstance(m, Mapping):
            continue
        b = base.get(tag) if isinstance(base, Mapping) else None
        rows.append([_esc(tag), _num(m.get("precision")), _num(m.get("recall")), _num(m.get("f1")),
                     _num((b or {}).get("f1")), _num(m.get("support"), "{:,}")])
    return ("per-label", "Per tag", _table(["tag", "precision", "recall", "F1", "F1 baseline", "support"], rows)
            + '<p class="note">Each tag has its own decision threshold, tuned for its F1 on held-out predictions of '
              "the training data.</p>")


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


def _multi_task(results: Mapping[str, Any]) -> list[tuple[str, str, str] | None]:
    tasks_metrics = (results.get("metrics") or {}).get("tasks")
    if not isinstance(tasks_metrics, Mapping) or not tasks_metrics:
        return []
    base = ((results.get("baseline") or {}).get("metrics") or {}).get("tasks") or {}
    single = results.get("single_task") or {}
    verdicts = (results.get("verdict") or {}).get("tasks") or {}
    rows = []
    for task, m in tasks_metrics.items():
        s = single.get(task) or {}
        sharing = s.get("sharing")
        cell = (f'<span class="{_SHARING_CSS.get(sharing, "")}">{_esc(sharing)}</span> '
                f'({_num(100 * s["ci_low"], "{:+.1f}")} to {_num(100 * s["ci_high"], "{:+.1f}")} pt)'
                if sharing and isinstance(s.get("ci_low"), (int, float)) else "—")
        rows.append([_esc(task), _num((m or {}).get("accuracy")), _num((base.get(task) or {}).get("accuracy")),
                     _esc((verdicts.get(task) or {}).get("verdict", "—")), _num(s.get("single_task_accuracy")), cell])
    table = _table(["task", "accuracy", "baseline", "verdict vs baseline", "trained alone", "sharing the trunk"], rows)
    note = ('<p class="note">"Trained alone": the same backbone, settings and budget on that task\'s labelled items '
            "only. Sharing <em>hurt</em> means negative transfer between the tasks.</p>")
    out: list[tuple[str, str, str] | None] = [("tasks", "Per task", table + note)]
    figures = []
    for task, m in tasks_metrics.items():
        cm, labels = (m or {}).get("confusion_matrix"), (m or {}).get("labels")
        if isinstance(cm, list) and isinstance(labels, list) and cm:
            try:
                figures.append(_img(plots.confusion_matrix_png(cm, labels, title=f"Task {task}"),
                                    f"Confusion matrix of task {task}"))
            except ConfigError:  # a malformed matrix leaves its plot out, not the report
                continue
    if figures:
        out.append(("task-confusion", "Confusion matrix per task", '<div class="plots">' + "".join(figures) + "</div>"))
    epochs = (results.get("history") or {}).get("epochs")
    if isinstance(epochs, list) and epochs and any(k.startswith("train_w_") for k in epochs[0]):
        out.append(("task-weights", "Task weights over training", _img(task_weights_png(epochs, list(tasks_metrics)),
                                                                       "Weight of each task's loss per epoch")))
    return out
