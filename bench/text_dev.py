#!/usr/bin/env python
"""Development-pool runs for choosing few-label text defaults, without touching the benchmark draws.

Rotten Tomatoes: for each seed, ``n`` snippets per class for training and 1,000 other snippets for scoring,
all drawn with ``numpy.random.default_rng(seed)`` from the fixed 3,000-snippet development pool that
``bench/text_table.py`` leaves out. Each arm is a dict of ``TransferClassifier("minilm-l6", ...)`` parameters;
one JSON line per (seed, arm) is printed with the development accuracy and the wall time.

Usage: python bench/text_dev.py '{"fe": {}, "ft": {"strategy": "fine-tune"},
       "ft+contrastive": {"strategy": "fine-tune", "fine_tune_params": {"contrastive": 20}}}' [--n 8] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_table import corpus, pools  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arms", help="JSON object: arm name -> TransferClassifier parameters")
    p.add_argument("--n", type=int, default=8, help="labelled snippets per class")
    p.add_argument("--n-dev", type=int, default=1000, help="development snippets scored per seed")
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args()

    from transferkit import TransferClassifier

    X, y = corpus()
    dev = pools()[1]
    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        tr = np.concatenate([rng.choice(dev[y[dev] == c], args.n, replace=False) for c in np.unique(y)])
        te = rng.choice(np.setdiff1d(dev, tr), args.n_dev, replace=False)
        Xtr, ytr, Xte, yte = [X[i] for i in tr], y[tr], [X[i] for i in te], y[te]
        for name, params in json.loads(args.arms).items():
            t0 = time.perf_counter()
            clf = TransferClassifier("minilm-l6", random_state=seed, progress=False, **params).fit(Xtr, ytr)
            print(json.dumps({"seed": seed, "n_per_class": args.n, "arm": name, "params": params,
                              "dev_accuracy": round(float(np.mean(clf.predict(Xte) == yte)), 4),
                              "time_s": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
