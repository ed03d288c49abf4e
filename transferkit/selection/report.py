"""The self-contained HTML report of ``transferkit rank`` (``rank.html``).

:func:`render_rank_report` turns a ranking dictionary (what ``rank.json`` holds,
:meth:`~transferkit.selection.ranking.Ranking.to_dict`) into one HTML file with the conventions of the fit
report (:mod:`transferkit.evaluation.report`): inline CSS, plots as PNG ``data:`` URIs, every user string
escaped, written atomically.

Sections: the recommendation and the controls check; the ranking table; a bar chart of every score per
candidate; when fits of the same data were attached, the ranking score against the accuracy each fit
obtained; the rule behind the recommendation; timings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from markupsafe import Markup
from matplotlib.ticker import PercentFormatter

from .._utils import atomic_write_text
from ..evaluation import plot_style as style
from ..evaluation.page import Section, figure, package_template, page_html
from ..exceptions import ConfigError

PRETRAINED_COLOR = style.TRANSFER_COLOR
CONTROL_COLOR = style.BASELINE_COLOR
TOP_COLOR = "#15803d"

_EXTRA_CSS = """
.rec { margin-top: 18px; border-radius: 12px; padding: 18px 22px; border: 1px solid var(--line);
       border-left: 6px solid var(--pos); background: #f0faf3; }
.rec .choice { font-size: 20px; font-weight: 600; margin: 0 0 6px; }
.rec p { margin: 4px 0; max-width: 95ch; }
.controls-ok { color: var(--pos); font-weight: 600; }
.controls-bad { color: var(--neg); font-weight: 600; }
tr.control td, tr.control th { color: var(--muted); }
"""


def render_rank_report(ranking: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of a ranking (the content of ``rank.json``) to ``path``, atomically."""
    document = rank_report_html(ranking)
    out = Path(path)
    atomic_write_text(out, document)
    return out


def rank_report_html(ranking: Mapping[str, Any]) -> str:
    """The report as one HTML string."""
    if not isinstance(ranking, Mapping) or ranking.get("kind") != "transferkit-ranking":
        raise ConfigError("not a ranking: pass the dictionary of rank.json (Ranking.to_dict())")
    cands = [c for c in ranking.get("candidates", []) if isinstance(c, Mapping)]
    if not cands:
        raise ConfigError("the ranking has no candidates")
    name = (ranking.get("dataset") or {}).get("name")
    sections = [_ranking_table(ranking, cands), _plots(ranking, cands), _fits_table(ranking), _rule(ranking),
                _timings(ranking)]
    return page_html(title="transferkit ranking" + (f" — {name}" if name else ""), header=_header(ranking, cands),
                     sections=[s for s in sections if s is not None], css=_EXTRA_CSS,
                     version=ranking.get("transferkit_version"))


def _template(name: str) -> Any:
    return package_template(__package__, name)


def _fmt(v: Any) -> str | Markup:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return Markup('<span class="na">n/a</span>')
    v = float(v)
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.4g}"


def _header(ranking: Mapping[str, Any], cands: list[Mapping[str, Any]]) -> Markup:
    ds = ranking.get("dataset") or {}
    ctrl = ranking.get("controls") or {}
    bad = [f"{p['backbone']}:{p['layer']}" for p in ctrl.get("pairs", []) if not p.get("below")]
    return Markup(_template("rank_header.html.j2").render(
        name=ds.get("name"), ds=ds, score=ranking.get("score", ""), n_candidates=len(cands),
        n_controls=sum(1 for c in cands if c.get("control")), rec=ranking.get("recommendation") or {},
        controls={"checked": ctrl.get("checked"), "bad": bad}))


def _ranking_table(ranking: Mapping[str, Any], cands: list[Mapping[str, Any]]) -> Section:
    scores = list(ranking.get("scores", []))
    score = ranking.get("score")
    info = ranking.get("score_info") or {}
    rows = [{"rank": c.get("rank"), "backbone": c.get("backbone"), "layer": c.get("layer"),
             "control": bool(c.get("control")), "total_s": (c.get("times") or {}).get("total_s"),
             "cells": [_fmt((c.get("scores") or {}).get(s)) for s in scores]} for c in cands]
    return Section("ranking", "Ranking", template=_template("ranking.html.j2"), context={
        "head": ["#", "Backbone", "Layer", "Weights"] + [s + (" ▼" if s == score else "") for s in scores] + ["Time"],
        "rows": rows, "scores": scores, "score": score,
        "summaries": [(info.get(s) or {}).get("summary", "") for s in scores],
        "needs_source_probs": any((info.get(s) or {}).get("needs_source_probs") for s in scores),
        "not_applicable": sorted({f"{n} ({why})" for c in cands for n, why in (c.get("not_applicable") or {}).items()}),
    }, intro="Best first by the ranking score (▼). Higher is better for every score. Time: feature extraction "
             "(from the embedding cache when already computed) plus the scores.")


def scores_bars_png(labels: Sequence[str], controls: Sequence[bool], values: Mapping[str, Sequence[float | None]],
                    *, ranked_by: str | None = None, top: int | None = 0) -> bytes:
    """One horizontal bar panel per score, candidates top to bottom in ranking order.

    ``values[score]`` holds one value per candidate (``None`` = not applicable). Controls are grey, the
    ``top`` candidate green, the others blue. Panels share the candidate axis; each has its own scale.
    """
    names = [s for s, v in values.items() if any(x is not None for x in v)]
    if not names or not labels:
        raise ConfigError("nothing to plot: no candidate has a score")
    for s in names:
        style.check_len(f"scores of {s}", values[s], len(labels), "labels")
    n = len(labels)
    ncols = min(len(names), 3)
    nrows = math.ceil(len(names) / ncols)
    height = max(2.2, 0.24 * n + 1.0)
    colors = [CONTROL_COLOR if ctrl else (TOP_COLOR if i == top else PRETRAINED_COLOR)
              for i, ctrl in enumerate(controls)]
    with style.new_figure(2.4 + 2.5 * ncols, height * nrows) as fig:
        axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False,
                            gridspec_kw={"wspace": 0.12, "hspace": 0.5 / nrows if nrows > 1 else 0.2}).ravel()
        y = np.arange(n)
        for ax, s in zip(axes, names, strict=False):
            v = np.array([np.nan if x is None else float(x) for x in values[s]])
            ax.barh(y, np.nan_to_num(v), color=colors, height=0.7)
            for yi, vi in zip(y, v, strict=True):
                if np.isnan(vi):
                    ax.annotate("n/a", (0, yi), xytext=(3, 0), textcoords="offset points", va="center",
                                fontsize=7.5, color=style.MUTED)
            ax.axvline(0, color="#9ca3af", linewidth=0.8)
            ax.set_title(s + (" (ranking)" if s == ranked_by else ""), fontsize=10)
            ax.grid(axis="x", color=style.GRID, linewidth=0.8)
            ax.set_axisbelow(True)
            ax.tick_params(axis="y", length=0)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        axes[0].set_yticks(y, [style.short(lbl, 42) for lbl in labels], fontsize=8)
        axes[0].invert_yaxis()
        return style.to_png(fig)


def score_vs_accuracy_png(points: Sequence[tuple[float, float, str, bool]], score: str) -> bytes:
    """Scatter of the ranking score (x) against the accuracy a fit obtained (y), one labelled dot per fit."""
    pts = [p for p in points if p[0] is not None and p[1] is not None and math.isfinite(p[0]) and math.isfinite(p[1])]
    if not pts:
        raise ConfigError("no fit matches a ranked candidate")
    with style.new_figure(6.0, 4.2) as fig:
        ax = fig.add_subplot()
        for x, yv, label, ctrl in pts:
            ax.scatter([x], [yv], s=42, color=CONTROL_COLOR if ctrl else PRETRAINED_COLOR, zorder=3)
            ax.annotate(style.short(label, 36), (x, yv), xytext=(5, 4), textcoords="offset points", fontsize=8)
        ax.set_xlabel(f"{score} (ranking score, before training)")
        ax.set_ylabel("test accuracy of the fit")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(color=style.GRID, linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title("Ranking score vs obtained accuracy")
        return style.to_png(fig)


def _plots(ranking: Mapping[str, Any], cands: list[Mapping[str, Any]]) -> Section:
    scores = list(ranking.get("scores", []))
    score = ranking.get("score")
    labels = [f"{c.get('rank')}. {c.get('backbone')}:{c.get('layer')}" + (" (random)" if c.get("control") else "")
              for c in cands]
    controls = [bool(c.get("control")) for c in cands]
    top = next((i for i, c in enumerate(cands) if not c.get("control")), None)
    values = {s: [(c.get("scores") or {}).get(s) for c in cands] for s in scores}
    caption = ("Every score of every candidate, in ranking order (best at the top). Blue: pretrained, green: the "
               "recommended candidate, grey: random-init controls. Each panel has its own scale; bars start at zero.")
    figures = [figure("plot-scores", lambda: scores_bars_png(labels, controls, values, ranked_by=score, top=top),
                      "Scores per candidate", caption, layout="wide")]
    fits = [f for f in ranking.get("fits", []) if isinstance(f, Mapping)]
    if fits:
        pts = [((f.get("scores") or {}).get(score), f.get("accuracy"), f.get("candidate") or f.get("source"),
                not f.get("pretrained", True)) for f in fits]
        tau = _kendall([p[0] for p in pts], [p[1] for p in pts])
        cap = (f"Each dot is a fit of the same data: its candidate's {score} (x) and the test accuracy the fit "
               "obtained (y). A good score puts the dots on a rising line.")
        if tau is not None:
            cap += f" Kendall τ between the two: {tau:.2f} over {sum(1 for p in pts if p[0] is not None)} fits."
        figures.append(figure("plot-fits", lambda: score_vs_accuracy_png(pts, str(score)),
                              "Score vs obtained accuracy", cap, layout="side"))
    return Section("plots", "Plots", template="plots.html.j2", context={"figures": figures})


def _kendall(x: Sequence[Any], y: Sequence[Any]) -> float | None:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    if len(pairs) < 3:
        return None
    from scipy.stats import kendalltau

    tau = kendalltau(*zip(*pairs, strict=True)).statistic
    return float(tau) if math.isfinite(tau) else None


def _fits_table(ranking: Mapping[str, Any]) -> Section | None:
    fits = [f for f in ranking.get("fits", []) if isinstance(f, Mapping)]
    if not fits:
        return None
    score = ranking.get("score")
    rows = [{**{k: f.get(k) for k in ("source", "backbone", "layer", "strategy", "accuracy", "rank", "note")},
             "value": _fmt((f.get("scores") or {}).get(score))} for f in fits]
    return Section("fits", "Fits of the same data", template=_template("fits.html.j2"),
                   context={"fits": rows, "score": str(score)})


def _rule(ranking: Mapping[str, Any]) -> Section | None:
    rec = ranking.get("recommendation") or {}
    if not rec.get("rule"):
        return None
    skipped = [f"{s.get('backbone')}: {s.get('reason')}" for s in ranking.get("skipped") or []]
    return Section("rule", "How the recommendation is made", template=_template("rule.html.j2"),
                   context={"score": ranking.get("score"), "rule": rec["rule"], "skipped": skipped})


def _timings(ranking: Mapping[str, Any]) -> Section | None:
    t = ranking.get("timings") or {}
    names = [("extract_s", "Feature extraction"), ("source_probs_s", "Source-classifier probabilities"),
             ("scores_s", "Scores"), ("total_s", "Total")]
    rows = [(n, t.get(k), k == "total_s") for k, n in names if k in t]
    return Section("timings", "Timings", template=_template("timings.html.j2"), context={"rows": rows}) if rows else None


__all__ = ["rank_report_html", "render_rank_report", "score_vs_accuracy_png", "scores_bars_png"]
