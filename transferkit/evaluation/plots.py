"""The plots of the HTML report, each rendered to PNG bytes.

Every function takes plain numbers and names (not the whole results dictionary), draws one figure and
returns it as PNG bytes, in the style of :mod:`~transferkit.evaluation.plot_style` (no pyplot, nothing
leaks, no metadata). The output is deterministic: random jitter (the drawing order of the scatter) comes
from a fixed seed, so the same input gives the same bytes.

Bad input (ragged or mismatched arrays) raises :class:`~transferkit.exceptions.ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from ..exceptions import ConfigError
from .plot_style import (
    BASELINE_COLOR,
    DPI,
    GRID,
    MUTED,
    TEXT,
    TRAIN_COLOR,
    TRANSFER_COLOR,
    VAL_COLOR,
    VERDICT_COLORS,
    check_len,
    class_colors,
    floats,
    new_figure,
    short,
    to_png,
    value,
)

# --------------------------------------------------------------------------------------------------------
# 1. confusion matrix


def confusion_matrix_png(matrix: Sequence[Sequence[float]] | np.ndarray, labels: Sequence[Any], *,
                         title: str = "Confusion matrix") -> bytes:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted class).

    The colour of a cell is its share of the row (the recall of that true class spreads over the
    predictions), so rare and frequent classes are equally visible; the numbers written in the cells are
    the raw counts (up to 20 classes; beyond that they would not be legible). The figure grows with the
    number of classes and stays readable up to about 50.
    """
    try:
        cm = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError("confusion_matrix must be a square list of lists of counts") from exc
    n = len(labels)
    if n == 0 or cm.shape != (n, n):
        raise ConfigError(f"confusion_matrix has shape {cm.shape} but there are {n} labels; "
                          f"expected a {n}×{n} matrix (rows = true, columns = predicted)")
    cm = np.nan_to_num(cm)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    names = [short(x) for x in labels]

    # about 1100 px wide at 50 classes, so the report shows it unscaled on a laptop screen
    cell = 0.44 if n <= 12 else max(0.15, 0.44 - 0.0071 * (n - 12))
    tick_size = 9 if n <= 12 else 8 if n <= 25 else 7.5 if n <= 40 else 7
    side = n * cell
    with new_figure(side + 1.8, side + 1.0) as fig:
        ax = fig.add_subplot()
        im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
        ax.set_xticks(range(n), names, fontsize=tick_size)
        ax.set_yticks(range(n), names, fontsize=tick_size)
        longest = max(len(x) for x in names)
        if n > 25:
            ax.tick_params(axis="x", labelrotation=90)
        elif n > 6 or longest > 4:
            for lab in ax.get_xticklabels():
                lab.set_rotation(40)
                lab.set_ha("right")
                lab.set_rotation_mode("anchor")
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(title)
        for side_name in ("top", "right", "left", "bottom"):
            ax.spines[side_name].set_visible(False)
        ax.tick_params(length=0)
        # thin white lines between cells (two line collections: much faster than minor-tick grids)
        edges = np.arange(n + 1) - 0.5
        width = 0.8 if n <= 25 else 0.4
        ax.vlines(edges, -0.5, n - 0.5, colors="white", linewidth=width)
        ax.hlines(edges, -0.5, n - 0.5, colors="white", linewidth=width)
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        if n <= 20:
            size = 8.5 if n <= 10 else 7 if n <= 15 else 6
            for i in range(n):
                for j in range(n):
                    count = cm[i, j]
                    text = f"{count:.0f}" if float(count).is_integer() else f"{count:.2g}"
                    if count == 0:
                        color = "#b6bcc6"
                    else:
                        color = "white" if share[i, j] > 0.55 else TEXT
                    ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
        cbar = fig.colorbar(im, ax=ax, shrink=0.6 if n > 6 else 0.85, pad=0.02, aspect=25)
        cbar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        cbar.set_label("share of the true class", fontsize=8, color=MUTED)
        cbar.ax.tick_params(labelsize=8)
        cbar.outline.set_visible(False)
        return to_png(fig)


# --------------------------------------------------------------------------------------------------------
# 2. per-class F1


def per_class_f1_png(labels: Sequence[Any], f1: Sequence[float | None],
                     baseline_f1: Sequence[float | None] | None = None, *, name: str = "transfer",
                     baseline_name: str = "baseline") -> bytes:
    """Horizontal bars of the F1 score of each class, the transfer model next to the baseline.

    Classes are sorted by the transfer model's F1, hardest first (at the top), so the classes worth
    looking at are where the eye starts. Missing scores (``None``) draw no bar.
    """
    n = len(labels)
    if n == 0:
        raise ConfigError("per_class_f1_png needs at least one class")
    ours = floats(f1, "f1")
    check_len("f1", ours, n, "labels")
    base = None
    if baseline_f1 is not None:
        base = floats(baseline_f1, "baseline_f1")
        check_len("baseline_f1", base, n, "labels")
    order = np.argsort(np.nan_to_num(ours, nan=-1.0), kind="stable")  # hardest first
    names = [short(labels[i]) for i in order]
    bar = 0.38 if base is not None else 0.6
    height = max(2.4, (0.36 if n <= 20 else 0.24) * n + 1.3)
    tick_size = 9 if n <= 20 else 8 if n <= 35 else 7
    with new_figure(4.6, height) as fig:
        ax = fig.add_subplot()
        y = np.arange(n)
        if base is not None:
            ax.barh(y + bar / 2, np.nan_to_num(base[order]), height=bar, color=BASELINE_COLOR,
                    label=short(baseline_name, 40))
            ax.barh(y - bar / 2, np.nan_to_num(ours[order]), height=bar, color=TRANSFER_COLOR,
                    label=short(name, 40))
        else:
            ax.barh(y, np.nan_to_num(ours[order]), height=bar, color=TRANSFER_COLOR, label=short(name, 40))
        ax.set_yticks(y, names, fontsize=tick_size)
        ax.set_ylim(n - 0.5, -0.5)  # first (hardest) class at the top
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("F1 score")
        ax.grid(axis="x", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0)
        ax.set_title("F1 per class (hardest first)", pad=26 if base is not None else 10)
        if base is not None:
            handles, legend_labels = ax.get_legend_handles_labels()
            ax.legend(handles[::-1], legend_labels[::-1], loc="lower center", bbox_to_anchor=(0.5, 1.0),
                      ncol=2, borderaxespad=0.3, handlelength=1.2, columnspacing=1.2, fontsize=8.5)
        return to_png(fig)


# --------------------------------------------------------------------------------------------------------
# 3. transfer vs baseline


_METRIC_NAMES = {
    "accuracy": "Accuracy",
    "f1_macro": "Macro F1",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
}


def comparison_bars_png(transfer: Mapping[str, float | None], baseline: Mapping[str, float | None], *,
                        metrics: Sequence[str] = ("accuracy", "f1_macro"), gain: float | None = None,
                        ci: tuple[float, float] | None = None, gain_metric: str = "accuracy",
                        confidence: float | None = None, verdict: str | None = None,
                        name: str = "transfer", baseline_name: str = "baseline") -> bytes:
    """Bars of the baseline and the transfer model for each metric (scores in [0, 1]).

    When ``gain`` is given, a second panel shows it in percentage points for ``gain_metric``, with the
    confidence interval ``ci = (low, high)`` (also a fraction) as an error bar and a line at zero, coloured
    by ``verdict``.
    """
    if not metrics:
        raise ConfigError("comparison_bars_png needs at least one metric")
    ours = np.array([value(transfer.get(m)) for m in metrics])
    theirs = np.array([value(baseline.get(m)) for m in metrics])
    show_gain = math.isfinite(value(gain))
    width = 6.8 if show_gain else 5.0
    with new_figure(width, 3.5, constrained=show_gain) as fig:
        if show_gain:
            ax, gx = fig.subplots(1, 2, width_ratios=[3.2, 1.25])
        else:
            ax, gx = fig.add_subplot(), None
        x = np.arange(len(metrics))
        w = 0.36
        b1 = ax.bar(x - w / 2, np.nan_to_num(theirs), w, color=BASELINE_COLOR, label=short(baseline_name, 40))
        b2 = ax.bar(x + w / 2, np.nan_to_num(ours), w, color=TRANSFER_COLOR, label=short(name, 40))
        for bars, values in ((b1, theirs), (b2, ours)):
            for rect, v in zip(bars, values, strict=True):
                text = "n/a" if math.isnan(v) else f"{100 * v:.1f}%"
                ax.annotate(text, (rect.get_x() + rect.get_width() / 2, 0 if math.isnan(v) else v),
                            xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8.5)
        ax.set_xticks(x, [_METRIC_NAMES.get(m, m) for m in metrics])
        ax.set_ylim(0, 1.12)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="y", color=GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(axis="x", length=0)
        ax.set_title("Baseline vs transfer (test set)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, handlelength=1.2)
        if gx is not None:
            _gain_panel(gx, value(gain), ci, gain_metric, confidence, verdict)
        return to_png(fig)


def _gain_panel(ax: Any, gain: float, ci: tuple[float, float] | None, metric: str, confidence: float | None,
                verdict: str | None) -> None:
    color = VERDICT_COLORS.get(str(verdict), TRANSFER_COLOR if verdict is None else MUTED)
    g = 100 * gain
    lo = hi = None
    if ci is not None and all(not math.isnan(value(c)) for c in ci):
        lo, hi = sorted((100 * float(ci[0]), 100 * float(ci[1])))
    ax.bar([0], [g], 0.5, color=color, alpha=0.85)
    if lo is not None and hi is not None:
        ax.errorbar([0], [g], yerr=[[max(g - lo, 0.0)], [max(hi - g, 0.0)]], fmt="none", ecolor=TEXT,
                    elinewidth=1.4, capsize=6, capthick=1.4)
    ax.axhline(0, color=TEXT, linewidth=0.9)
    top = max(g, hi if hi is not None else g, 0.0)
    bottom = min(g, lo if lo is not None else g, 0.0)
    span = max(top - bottom, 1.0)
    ax.set_ylim(bottom - 0.25 * span, top + 0.3 * span)
    ax.set_xlim(-0.8, 0.8)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    label = f"{g:+.1f}".replace("-", "−")
    anchor = hi if (hi is not None and g >= 0) else g if g >= 0 else (lo if lo is not None else g)
    ax.annotate(label, (0, anchor), xytext=(0, 6 if g >= 0 else -6), textcoords="offset points",
                ha="center", va="bottom" if g >= 0 else "top", fontsize=10, fontweight="bold", color=color)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:+g}".replace("-", "−") if abs(v) > 1e-9 else "0")
    ax.set_ylabel("percentage points")
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    conf = f"{100 * confidence:.0f}% CI" if confidence is not None and lo is not None else ("CI" if lo is not None else "")
    metric_name = _METRIC_NAMES.get(metric, metric)
    ax.set_title(f"Gain in {metric_name.lower()}" + (f"\n(with {conf})" if conf else ""), fontsize=10)


# --------------------------------------------------------------------------------------------------------
# 4. 2-D projection


def projection_png(points: Sequence[Sequence[float]] | np.ndarray, labels: Sequence[Any], *,
                   classes: Sequence[Any] | None = None, title: str = "Test items in 2-D",
                   max_legend: int = 20) -> bytes:
    """Scatter of a 2-D embedding of the test items, one colour per class, with a legend.

    ``classes`` fixes the order of the colours (default: the order of first appearance in ``labels``);
    classes in ``labels`` but not in ``classes`` are appended. The legend lists at most ``max_legend``
    classes (the most frequent ones, in class order) and says how many were left out. Points are drawn in
    a fixed shuffled order so no class hides under another.
    """
    try:
        xy = np.array(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError("projection points must be a list of [x, y] pairs") from exc
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] == 0:
        raise ConfigError(f"projection points must be a non-empty list of [x, y] pairs, got shape {xy.shape}")
    check_len("projection labels", labels, xy.shape[0], "projection points")
    names = [str(x) for x in labels]
    order: list[str] = []
    seen: set[str] = set()
    for c in [str(c) for c in (classes or [])] + names:
        if c not in seen:
            seen.add(c)
            order.append(c)
    present = [c for c in order if c in set(names)]
    index = {c: i for i, c in enumerate(present)}
    colors = np.array(class_colors(len(present)))
    codes = np.array([index[c] for c in names])
    keep = np.isfinite(xy).all(axis=1)
    draw = np.random.default_rng(0).permutation(xy.shape[0])
    draw = draw[keep[draw]]
    n = int(keep.sum())
    size = float(np.clip(9000.0 / max(n, 1), 3.0, 30.0))
    with new_figure(5.6, 5.6) as fig:  # square axes; the legend goes outside, the PNG is cropped to fit
        ax = fig.add_subplot()
        ax.scatter(xy[draw, 0], xy[draw, 1], c=colors[codes[draw]], s=size, linewidths=0, alpha=0.8,
                   rasterized=False)
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        for side in ax.spines.values():
            side.set_color(GRID)
        ax.set_title(short(title, 70))
        ax.set_aspect("equal", adjustable="datalim")
        if len(present) > 1:
            counts = {c: 0 for c in present}
            for c in names:
                counts[c] += 1
            listed = set(sorted(present, key=lambda c: -counts[c])[:max_legend])
            handles = [
                Line2D([], [], linestyle="none", marker="o", markersize=6.5,
                                        markerfacecolor=colors[index[c]], markeredgewidth=0)
                for c in present if c in listed
            ]
            texts = [short(c, 24) for c in present if c in listed]
            extra = len(present) - len(listed)
            if extra:
                handles.append(Line2D([], [], linestyle="none"))
                texts.append(f"+ {extra} more classes")
            ax.legend(handles, texts, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                      handletextpad=0.3, labelspacing=0.45, fontsize=8.5 if len(texts) <= 12 else 7.5)
        return to_png(fig)


# --------------------------------------------------------------------------------------------------------
# 5. learning curves


def learning_curves_png(epochs: Sequence[Mapping[str, Any]], stage_boundary: float | None = None) -> bytes:
    """Loss and accuracy per epoch, training (solid) and validation (dashed), side by side.

    The boundary between training stages (e.g. head only, then unfrozen backbone) is drawn as a vertical
    line. It is taken from the ``stage`` of each epoch when given (between the last epoch of one stage and
    the first of the next); otherwise ``stage_boundary`` is read as the last epoch of the first stage.
    Values that are missing or ``None`` leave a gap.
    """
    if not epochs:
        raise ConfigError("learning_curves_png needs at least one epoch")
    if not all(isinstance(e, Mapping) for e in epochs):
        raise ConfigError("history epochs must be dictionaries with epoch, train_loss, val_loss, ...")
    x = floats([e.get("epoch", i + 1) for i, e in enumerate(epochs)], "epoch")
    lines = _stage_lines(epochs, x, stage_boundary)
    panels = [("Loss", "train_loss", "val_loss", False), ("Accuracy", "train_acc", "val_acc", True)]
    panels = [p for p in panels
              if any(math.isfinite(value(e.get(key))) for e in epochs for key in (p[1], p[2]))]
    if not panels:
        raise ConfigError("history epochs have no train_loss, val_loss, train_acc or val_acc values")
    with new_figure(4.6 * len(panels) + 0.4, 3.6, constrained=True) as fig:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (title, train_key, val_key, is_acc) in zip(axes, panels, strict=True):
            train = np.array([value(e.get(train_key)) for e in epochs])
            val = np.array([value(e.get(val_key)) for e in epochs])
            marker = "o" if len(epochs) <= 40 else None
            ax.plot(x, train, color=TRAIN_COLOR, marker=marker, markersize=3.5, linewidth=1.8, label="training")
            ax.plot(x, val, color=VAL_COLOR, marker=marker, markersize=3.5, linewidth=1.8, linestyle="--",
                    label="validation")
            if is_acc and np.nanmax(np.concatenate([train, val, [0.0]])) <= 1.0:
                ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(color=GRID, linewidth=0.8)
            ax.set_axisbelow(True)
            for k, pos in enumerate(lines):
                ax.axvline(pos, color=MUTED, linestyle=":", linewidth=1.3)
                ax.annotate(f"stage {k + 2} →", (pos, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(4, -4), textcoords="offset points", ha="left", va="top", fontsize=8,
                            color=MUTED)
        handles, texts = axes[0].get_legend_handles_labels()
        fig.legend(handles, texts, loc="outside lower center", ncol=2, handlelength=2.6)
        return to_png(fig)


def _stage_lines(epochs: Sequence[Mapping[str, Any]], x: np.ndarray, stage_boundary: float | None) -> list[float]:
    stages = [e.get("stage") for e in epochs]
    if all(s is not None for s in stages):
        out = []
        for i in range(1, len(stages)):
            if stages[i] != stages[i - 1] and math.isfinite(x[i]) and math.isfinite(x[i - 1]):
                out.append(float((x[i] + x[i - 1]) / 2))
        return out
    b = value(stage_boundary)
    return [b + 0.5] if math.isfinite(b) else []


__all__ = [
    "BASELINE_COLOR",
    "DPI",
    "TRANSFER_COLOR",
    "VERDICT_COLORS",
    "class_colors",
    "comparison_bars_png",
    "confusion_matrix_png",
    "learning_curves_png",
    "per_class_f1_png",
    "projection_png",
]
