"""The common ground of every report plot: resolution, colours, a fixed Matplotlib style, a figure that
leaks nothing, PNG bytes without metadata, and the input checks. The report's plots
(:mod:`transferkit.evaluation.plots`) and the ranking's (:mod:`transferkit.selection.report`) draw with it.

Figures are made with :class:`matplotlib.figure.Figure` on an Agg canvas, never through ``pyplot``: nothing
is registered in pyplot's figure list, the caller's backend is left alone, and the figure is cleared as soon
as the PNG is written. Matplotlib's default style is applied over whatever ``matplotlibrc`` the user has and
the PNG carries no version or date metadata, so the same input gives the same bytes.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..exceptions import ConfigError

#: Resolution of every PNG. The report shows images at 100 CSS pixels per inch, so they stay sharp on
#: high-density screens.
DPI = 150
#: Colours shared by all plots (and by the report's tables).
TRANSFER_COLOR = "#2563eb"
BASELINE_COLOR = "#9ca3af"
TRAIN_COLOR = "#2563eb"
VAL_COLOR = "#ea580c"
VERDICT_COLORS = {
    "positive transfer": "#15803d",
    "no significant gain": "#6b7280",
    "negative transfer": "#b91c1c",
}
TEXT = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
MAX_LABEL = 28  # characters of a class name shown on an axis or in a legend

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",  # bundled with Matplotlib: identical rendering on every machine
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlepad": 10,
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": TEXT,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.color": TEXT,
    "xtick.color": TEXT,
    "ytick.color": TEXT,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "text.parse_math": False,  # a class name such as "$5 bill" is text, not TeX
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
    "path.simplify": False,
}


@contextlib.contextmanager
def new_figure(width: float, height: float, *, constrained: bool = False) -> Iterator[Figure]:
    """A white figure in a fixed style; cleared on exit whatever happens.

    Single-panel figures need no layout engine (the PNG is cropped to its content, labels and legends
    included); ``constrained`` keeps the panels of multi-panel figures apart, at some cost in speed.
    """
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # ignore the user's matplotlibrc: same pictures everywhere
        matplotlib.rcParams.update(STYLE)
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)
        FigureCanvasAgg(fig)
        try:
            yield fig
        finally:
            fig.clear()


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`, cropped to its content, without metadata."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.12)
    return buf.getvalue()


def short(name: Any, limit: int = MAX_LABEL) -> str:
    """A name on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(name).split())  # newlines and tabs would break the layout
    return text if len(text) <= limit else text[: limit - 1] + "…"


def floats(values: Any, what: str) -> np.ndarray:
    """A 1-D float array; ``None`` becomes NaN."""
    try:
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a list of numbers, got {values!r:.80}") from exc
    return arr


def check_len(name: str, values: Sequence[Any] | np.ndarray, n: int, other: str) -> None:
    """:class:`ConfigError` unless ``values`` has ``n`` entries (as ``other`` has)."""
    if len(values) != n:
        raise ConfigError(f"{name} has {len(values)} entries but {other} has {n}; they must have the same length")


def class_colors(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` qualitative colours: tab10 up to 10 classes, tab20 up to 20, then tab20 + tab20b + tab20c
    (60 colours, repeated beyond)."""
    cmaps = matplotlib.colormaps
    if n <= 10:
        return [cmaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [cmaps["tab20"](i) for i in range(n)]
    pool = [cmaps[name](i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)]
    return [pool[i % len(pool)] for i in range(n)]


def value(v: Any) -> float:
    """``v`` as a float; missing, ``None``, a bool or not a number → NaN (a gap in a line)."""
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan
