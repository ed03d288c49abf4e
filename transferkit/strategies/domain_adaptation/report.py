"""What domain adaptation contributes to ``report.html`` (:class:`~transferkit.evaluation.page.Section`s):
the verdict on the target against the source-only model, the selection table (each candidate's label-free
scores next to its target accuracy when evaluation labels were given), the domain discriminator's accuracy
over training, and a 2-D map (PCA) of source and target embeddings before (source-only) and after
adaptation. The markup is this package's ``templates/adaptation.html.j2``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...evaluation.formatting import decimal, mapping, text
from ...evaluation.page import Section, figure, package_template, page_html


def _pca2(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def domain_map_png(sample: Mapping[str, np.ndarray], title: str) -> bytes:
    from ...evaluation.plots import projection_png

    pts = np.vstack([sample["source"], sample["target"]])
    labels = ["source"] * len(sample["source"]) + ["target"] * len(sample["target"])
    return projection_png(_pca2(pts), labels, classes=["source", "target"], title=title)


def discriminator_png(curves: Mapping[str, list[float]]) -> bytes:
    from ...evaluation.plot_style import new_figure, to_png

    with new_figure(5.0, 3.0) as fig:
        ax = fig.add_subplot()
        for m, acc in curves.items():
            ax.plot(np.arange(1, len(acc) + 1), acc, marker="o", label=m)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xlabel("epoch")
        ax.set_ylabel("discriminator accuracy")
        ax.set_title("Domain discriminator during training")
        ax.legend()
        return to_png(fig)


def adaptation_sections(results: Mapping[str, Any], maps: Mapping[str, Mapping[str, np.ndarray]]) -> list[Section]:
    """The sections of ``results`` (``results.json`` of ``adapt``) and the candidates' embedding ``maps``
    (name → ``{"source": array, "target": array}``)."""
    a = mapping(results.get("adaptation"))
    if not a:
        return []
    ev = mapping(results.get("evaluation"))
    acc = {r["method"]: r.get("target_accuracy") for r in ev.get("selection") or []}
    table = a.get("selection") or []
    clusters = any(r.get("cluster_ami") is not None for r in table)
    head = ["method", "kind", "DEV risk", "± s.e.", "IWV risk", "domain acc.", "target entropy", "source val acc.",
            *(["cluster AMI"] if clusters else []), *(["target acc."] if acc else []), "fit s"]
    rows = []
    for r in table:
        row = [r["method"] + (" (kept)" if r["method"] == a.get("method") else ""), r["kind"], decimal(r["dev_risk"]),
               decimal(r.get("dev_se")), decimal(r["iwv_risk"]), decimal(r["domain_accuracy"], "{:.2f}"),
               decimal(r["target_entropy"]), decimal(r["source_val_accuracy"])]
        if clusters:
            row.append(decimal(r.get("cluster_ami")))
        if acc:
            row.append(decimal(acc.get(r["method"])))
        rows.append([*row, decimal(r.get("fit_s"), "{:.1f}")])
    curves = {m: [e.get("train_domain_acc") for e in h] for m, h in mapping(a.get("histories")).items()
              if h and h[0].get("train_domain_acc") is not None}
    disc = figure("plot-discriminator", lambda: discriminator_png(curves), "Discriminator accuracy",
                  "Accuracy of the domain discriminator on the training batches per epoch (0.5 = chance: the "
                  "features no longer tell source from target).") if curves else None
    figs = [figure(f"plot-domains-{i}", lambda s=sample, n=name: domain_map_png(s, n), f"Embeddings: {name}",
                   "Source and target items in the candidate's feature space, first two principal components.")
            for i, (name, sample) in enumerate(maps.items())]
    verdict = mapping(ev.get("verdict"))
    intro = (f"Kept {text(a.get('method'))} ({text(a.get('selected_by'))}); baseline {text(a.get('baseline'))} "
             "(same trunk, budget and seed).")
    dev, clusters = a.get("dev_choice"), a.get("cluster_choice")
    if isinstance(dev, str) and isinstance(clusters, str) and dev != clusters:
        intro += (f" The two label-free criteria disagree: DEV picks {text(dev)}, agreement with the target's own "
                  f"clusters (cluster AMI) picks {text(clusters)} — label a few target items to decide.")
    return [Section("adaptation", "Domain adaptation: selection (no target labels)", intro=intro,
                    template=package_template(__package__, "adaptation.html.j2"),
                    context={"head": head, "rows": rows, "verdict": text(verdict.get("text")),
                             "oracle": text(ev.get("oracle")), "oracle_accuracy": decimal(ev.get("oracle_accuracy")),
                             "discriminator": disc, "maps": figs})]


def adaptation_report_html(results: Mapping[str, Any], sections: list[Section]) -> str:
    """``report.html`` of ``transferkit adapt``: a header line on source and target, then ``sections``."""
    src, tgt = mapping(results.get("source")), mapping(results.get("target"))
    labelled = tgt.get("labelled_for_evaluation")
    header = Section("data", f"Domain adaptation: {text(src.get('name'))} → {text(tgt.get('name'))}",
                     body=f"Source: {src.get('n')} labelled items; target: {tgt.get('n')} items, labels "
                          f"{'read for evaluation only' if labelled else 'absent'}.")
    return page_html(title="transferkit adapt", sections=[header, *sections])
