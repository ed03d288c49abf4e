#!/usr/bin/env python
"""How far can a head on frozen MiniLM features go with 8 snippets per class? Development pool only.

Rotten Tomatoes, the fixed 3,000-snippet development pool that ``bench/text_table.py`` leaves out: for each
draw, ``--n`` snippets per class for training and 1,000 other snippets for scoring (as ``bench/text_dev.py``).
The features are extracted once (embedding cache); each variant is a head or a feature combination:

- ``fit_head``: the library's head (standardise, logistic regression, C by 5-fold CV);
- ``l2_logreg_C1``, ``l2_logreg_C10``: L2-normalised embeddings (SetFit's geometry), logistic regression;
- ``l2_logreg_cv``: the same with C by cross-validation on log-loss;
- ``raw_logreg_cv``: un-standardised embeddings, C by cross-validation;
- ``nearest_centroid_cosine``: the class whose mean normalised embedding is closest in cosine;
- ``glove``: the library's head on averaged GloVe vectors;
- ``minilm_layer4``: the library's head on MiniLM's fifth layer;
- ``concat_minilm_glove``, ``concat_layers_4_5``: the library's head on concatenated normalised features.

Prints one JSON object: per variant the mean development accuracy and the per-draw values.

Usage: python bench/text_heads_dev.py [--n 8] [--draws 12]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, set_threads  # noqa: E402
from text_table import corpus, pools  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=8, help="labelled snippets per class")
    p.add_argument("--draws", type=int, default=12)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    threads = set_threads(args.threads)
    warnings.filterwarnings("ignore")

    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from transferkit.extraction import Extractor
    from transferkit.heads import fit_head

    X, y = corpus()
    dev = pools()[1]
    texts, Y = [X[i] for i in dev], y[dev]
    M = Extractor("minilm-l6", show_progress=False).extract(texts).astype(np.float64)
    M4 = Extractor("minilm-l6", layer="encoder.layer.4", show_progress=False).extract(texts).astype(np.float64)
    G = Extractor("glove-6b-50d", show_progress=False).extract(texts).astype(np.float64)

    def unit(Z: np.ndarray) -> np.ndarray:
        return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)

    def library(F: np.ndarray):
        def fit_predict(a, b, ya, seed):
            classes, yi = np.unique(ya, return_inverse=True)
            head, _ = fit_head("logreg", F[a], yi, random_state=seed)
            return classes[head.predict_index(F[b])]
        return fit_predict

    def sk(F: np.ndarray, make):
        def fit_predict(a, b, ya, seed):
            return make(seed).fit(F[a], ya).predict(F[b])
        return fit_predict

    def cv(seed: int):
        return StratifiedKFold(min(5, args.n), shuffle=True, random_state=seed)

    def lrcv(seed: int):
        return LogisticRegressionCV(Cs=np.logspace(-2, 3, 11), cv=cv(seed), max_iter=2000, scoring="neg_log_loss")

    def centroid(a, b, ya, seed):
        U = unit(M)
        classes = np.unique(ya)
        cents = unit(np.stack([U[a][ya == c].mean(0) for c in classes]))
        return classes[np.argmax(U[b] @ cents.T, axis=1)]

    variants = {
        "fit_head": library(M),
        "l2_logreg_C1": sk(unit(M), lambda s: LogisticRegression(C=1.0, max_iter=2000)),
        "l2_logreg_C10": sk(unit(M), lambda s: LogisticRegression(C=10.0, max_iter=2000)),
        "l2_logreg_cv": sk(unit(M), lrcv),
        "raw_logreg_cv": sk(M, lrcv),
        "nearest_centroid_cosine": centroid,
        "glove": library(G),
        "minilm_layer4": library(M4),
        "concat_minilm_glove": library(np.hstack([unit(M), unit(G)])),
        "concat_layers_4_5": library(np.hstack([unit(M), unit(M4)])),
    }
    pos = {int(i): k for k, i in enumerate(dev)}
    results: dict[str, list[float]] = {k: [] for k in variants}
    for seed in range(args.draws):
        rng = np.random.default_rng(seed)
        tr = np.concatenate([rng.choice(dev[y[dev] == c], args.n, replace=False) for c in np.unique(y)])
        te = rng.choice(np.setdiff1d(dev, tr), 1000, replace=False)
        a = np.array([pos[int(i)] for i in tr])
        b = np.array([pos[int(i)] for i in te])
        for name, fit_predict in variants.items():
            results[name].append(round(float(np.mean(fit_predict(a, b, Y[a], seed) == Y[b])), 4))
    emit({"benchmark": "text_heads_dev", "n_per_class": args.n, "draws": args.draws, "n_scored": 1000,
          "mean": {k: round(float(np.mean(v)), 4) for k, v in results.items()}, "per_draw": results,
          "environment": environment(threads)})


if __name__ == "__main__":
    main()
