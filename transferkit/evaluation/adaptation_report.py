"""The report of `transferkit adapt`: source and target metrics, the verdict against source-only, the
selection table (each candidate's label-free scores next to its target accuracy when evaluation labels
were given), the domain discriminator's accuracy over training, and a 2-D map (PCA) of source and target
embeddings before (source-only) and after adaptation."""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from .plots import _figure, _png, projection_png


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _pca2(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def domain_map_png(sample: dict[str, np.ndarray], title: str) -> bytes:
    pts = np.vstack([sample["source"], sample["target"]])
    labels = ["source"] * len(sample["source"]) + ["target"] * len(sample["target"])
    return projection_png(_pca2(pts), labels, classes=["source", "target"], title=title)


def discriminator_png(histories: dict[str, list[dict[str, Any]]]) -> bytes | None:
    curves = {m: [e.get("train_domain_acc") for e in h] for m, h in histories.items()
              if h and h[0].get("train_domain_acc") is not None}
    if not curves:
        return None
    with _figure(5.0, 3.0) as fig:
        ax = fig.add_subplot()
        for m, acc in curves.items():
            ax.plot(np.arange(1, len(acc) + 1), acc, marker="o", label=m)
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xlabel("epoch")
        ax.set_ylabel("discriminator accuracy")
        ax.set_title("Domain discriminator during training")
        ax.legend()
        return _png(fig)


def adaptation_report_html(results: dict[str, Any], maps: dict[str, dict[str, np.ndarray]]) -> str:
    a = results["adaptation"]
    ev = results.get("evaluation") or {}
    acc = {r["method"]: r.get("target_accuracy") for r in ev.get("selection", [])}
    head = ["method", "kind", "DEV risk", "IWV risk", "domain acc.", "target entropy", "source val acc.",
            "target acc." if acc else None, "fit s"]
    rows = []
    for r in a["selection"]:
        cells = [r["method"] + (" (kept)" if r["method"] == a["method"] else ""), r["kind"], f"{r['dev_risk']:.3f}",
                 f"{r['iwv_risk']:.3f}", f"{r['domain_accuracy']:.2f}", f"{r['target_entropy']:.3f}",
                 f"{r['source_val_accuracy']:.3f}"]
        if acc:
            cells.append(f"{acc.get(r['method'], float('nan')):.3f}")
        cells.append(f"{r['fit_s']:.1f}")
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>transferkit adapt</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}td,th{padding:2px 8px;text-align:right}"
        "img{max-width:460px}</style></head><body>",
        f"<h1>Domain adaptation: {html.escape(results['source']['name'])} → {html.escape(results['target']['name'])}</h1>",
        f"<p>Kept <b>{html.escape(a['method'])}</b> ({html.escape(a['selected_by'])}); baseline "
        f"{html.escape(a['baseline'])} (same trunk, budget and seed). Source: {results['source']['n']} labelled items; "
        f"target: {results['target']['n']} items, labels {'read for evaluation only' if acc else 'absent'}.</p>",
    ]
    if ev:
        parts.append(f"<h2>Verdict on the target</h2><p>{html.escape(ev['verdict']['text'])}. The oracle (best "
                     f"candidate on the target labels) is {html.escape(ev['oracle'])} at {ev['oracle_accuracy']:.3f}.</p>")
    parts.append("<h2>Selection (no target labels)</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in head if h)
                 + "</tr>" + "".join(rows) + "</table><p>DEV: source-validation loss weighted by the target/source "
                 "density ratio of each candidate's own features (lower is better); domain acc.: a logistic domain "
                 "classifier on those features (0.5 = the domains are indistinguishable).</p>")
    disc = discriminator_png(a.get("histories") or {})
    if disc is not None:
        parts.append("<h2>Domain discriminator over training</h2>" + _img(disc, "discriminator accuracy"))
    if maps:
        parts.append("<h2>Source and target embeddings (PCA)</h2>" + "".join(
            _img(domain_map_png(sample, f"{name}"), name) for name, sample in maps.items()))
    parts.append("</body></html>")
    return "\n".join(parts)
