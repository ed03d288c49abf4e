"""What fine-tuning contributes to ``report.html``: its learning curves and a table of its stages
(learning rate, epochs allowed and run, the epoch whose weights were kept), from the ``history`` block of
``results.json``. The markup is this package's ``templates/training.html.j2``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...evaluation import plots
from ...evaluation.formatting import count, is_list, mapping, num, param, text
from ...evaluation.page import Section, figure, package_template


def training_sections(results: Mapping[str, Any], title: str = "Fine-tuning") -> list[Section]:
    """The learning curves and stages of ``results["history"]``; none when there is no epoch log."""
    history = mapping(results.get("history")) if isinstance(results, Mapping) else {}
    epochs = history.get("epochs")
    if not is_list(epochs) or not epochs:
        return []
    boundary = num(history.get("stage_boundary"))
    staged = boundary is not None or any(isinstance(e, Mapping) and e.get("stage") not in (None, 1) for e in epochs)
    caption = ("Loss and accuracy per epoch on the training data (solid) and the validation data (dashed)."
               + (" The dotted line marks the start of the next training stage." if staged else "")
               + " A validation loss that rises while the training loss keeps falling is a sign of over-fitting.")
    curves = figure("plot-history", lambda: plots.learning_curves_png(epochs, boundary), "Learning curves", caption,
                    layout="wide")
    stages = [[text(s.get("name")) or f"stage {i + 1}", param(s["lr"]) if num(s.get("lr")) is not None else "—",
               count(s.get("max_epochs")), count(s.get("epochs_run")), count(s.get("best_epoch"))]
              for i, s in enumerate(history.get("stages") or []) if isinstance(s, Mapping)] \
        if is_list(history.get("stages")) else []
    facts = []
    if num(history.get("n_train")) is not None and num(history.get("n_val")) is not None:
        facts.append(f"{count(history['n_train'])} training items, {count(history['n_val'])} held out for "
                     "validation and early stopping.")
    blocks = history.get("unfrozen_blocks")
    if is_list(blocks) and blocks:
        facts.append(f"Unfrozen in the last stage: {', '.join(str(b) for b in blocks)}.")
    return [Section("training", f"{title}: learning curves and stages",
                    template=package_template(__package__, "training.html.j2"),
                    context={"curves": curves, "stages": stages, "facts": facts})]
