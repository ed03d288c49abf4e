#!/usr/bin/env python
"""The library's contrastive tuning (``fine_tune_params={"contrastive": 20}``, ``unfreeze="none"``: SetFit's
recipe) on the Rotten Tomatoes development pool, scored three ways on the same tuned encoder: the library's
prediction, its head (``fit_head``) refitted on the tuned embeddings, and scikit-learn's logistic regression
with C = 1 on the raw embeddings (what ``bench/setfit_reference.py`` fits). ``--no-grad-clip`` trains
without the training loop's gradient-norm clipping (it patches the loop's default for this run only).
Same draws as ``bench/text_dev.py``. Prints one JSON line per draw.

Usage: python bench/text_contrastive_heads.py [--no-grad-clip] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_table import corpus, pools  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-grad-clip", action="store_true")
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()

    from sklearn.linear_model import LogisticRegression

    from transferkit import TransferClassifier
    from transferkit.heads import fit_head
    from transferkit.strategies import fine_tuning
    from transferkit.training import Trainer

    if args.no_grad_clip:
        fine_tuning.Trainer = functools.partial(Trainer, grad_clip=None)
    X, y = corpus()
    dev = pools()[1]
    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        tr = np.concatenate([rng.choice(dev[y[dev] == c], 8, replace=False) for c in np.unique(y)])
        te = rng.choice(np.setdiff1d(dev, tr), 1000, replace=False)
        Xtr, ytr, Xte, yte = [X[i] for i in tr], y[tr], [X[i] for i in te], y[te]
        clf = TransferClassifier("minilm-l6", strategy="fine-tune", unfreeze="none", random_state=seed,
                                 progress=False, fine_tune_params={"contrastive": 20}).fit(Xtr, ytr)
        F_tr, F_te = clf.features(Xtr).astype(np.float64), clf.features(Xte).astype(np.float64)
        classes, y_index = np.unique(ytr, return_inverse=True)
        head, _ = fit_head("logreg", F_tr, y_index, random_state=seed)
        print(json.dumps({
            "seed": seed, "grad_clip": not args.no_grad_clip,
            "library": round(float(np.mean(clf.predict(Xte) == yte)), 4),
            "fit_head": round(float(np.mean(classes[head.predict_index(F_te)] == yte)), 4),
            "logreg_C1_raw": round(float(LogisticRegression(max_iter=2000).fit(F_tr, ytr).score(F_te, yte)), 4),
        }), flush=True)


if __name__ == "__main__":
    main()
