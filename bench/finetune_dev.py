#!/usr/bin/env python
"""Development-split runs for choosing fine-tuning defaults, without touching any test set.

Fashion-MNIST: 100 labelled images per class and 2,000 development images, all drawn from the *training*
set with ``numpy.random.default_rng(100)`` (disjoint from each other); the test set is never read. Each
configuration is a dict of ``TransferClassifier(strategy="fine-tune")`` parameters; one JSON line per
configuration is printed with the development accuracy, the wall time and the learning curve.

Usage: python bench/finetune_dev.py '[{}, {"epochs": 20}, {"fine_tune_params": {"layer_decay": 0.8}}]'
       [--backbone mobilenet_v2] [--seed 0] [--also-hflip]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fashion_dev_split  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", help="JSON list of TransferClassifier parameter dicts")
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--seed", type=int, default=0, help="random_state of the classifier")
    p.add_argument("--also-hflip", action="store_true",
                   help="also score each fitted model with tta='hflip' (mirror-averaged prediction features)")
    args = p.parse_args()
    configs = json.loads(args.configs)

    from transferkit import TransferClassifier

    X, y, X_dev, y_dev = fashion_dev_split()
    for cfg in configs:
        t0 = time.perf_counter()
        clf = TransferClassifier(args.backbone, strategy="fine-tune", random_state=args.seed, progress=False,
                                 cache=False, **cfg)
        clf.fit(X, y)
        fit_s = time.perf_counter() - t0
        history = clf.history_
        extra = {}
        if args.also_hflip:
            plain = clf.tta
            clf.tta = "hflip"  # read at prediction time only; the fitted network and head are unchanged
            extra["dev_acc_hflip"] = round(float(clf.score(X_dev, y_dev)), 4)
            clf.tta = plain
        print(json.dumps({
            "cfg": cfg, "dev_acc": round(float(clf.score(X_dev, y_dev)), 4), **extra, "fit_s": round(fit_s, 1),
            "load": os.getloadavg()[0],
            "stages": [(s["name"], s["epochs_run"], s["best_epoch"]) for s in history["stages"]],
            "curve": [(e["epoch"], round(e["train_loss"], 3), round(e.get("val_loss", -1), 3),
                       round(e.get("val_acc", -1), 3)) for e in history["epochs"]],
        }), flush=True)


if __name__ == "__main__":
    main()
