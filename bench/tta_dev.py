#!/usr/bin/env python
"""Development-split check of mirror-averaged embeddings (``tta="hflip"``) for feature extraction.

Fashion-MNIST: the same 100 labelled images per class and 2,000 development images as
``bench/finetune_dev.py`` (all from the *training* set, ``numpy.random.default_rng(100)``); the test set is
never read. For each backbone's last layer, the library's default logreg head is trained on plain
embeddings, on mirror-averaged ones (what ``tta="hflip"`` computes), and on plain + mirrored training
embeddings stacked (flip as training augmentation, mirror-averaged development embeddings). One JSON line
per (backbone, variant).

Usage: python bench/tta_dev.py [--backbones tf_efficientnet_lite0,mobilenet_v2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fashion_dev_split  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", default="tf_efficientnet_lite0,mobilenet_v2")
    args = p.parse_args()

    from transferkit.extraction import Extractor
    from transferkit.heads import fit_head

    X, y, Xd, yd = fashion_dev_split()
    for backbone in args.backbones.split(","):
        ex = Extractor(backbone, "last", show_progress=False)
        F, Fd = ex.extract(X), ex.extract(Xd)
        Fm, Fdm = ex.extract(X[:, :, ::-1].copy()), ex.extract(Xd[:, :, ::-1].copy())
        variants = {"plain": (F, y, Fd), "hflip_average": ((F + Fm) / 2, y, (Fd + Fdm) / 2),
                    "flip_augmented_train+hflip_average": (np.vstack([F, Fm]), np.concatenate([y, y]), (Fd + Fdm) / 2)}
        for name, (a, ya, b) in variants.items():
            head, _ = fit_head("logreg", a, ya, random_state=0)
            print(json.dumps({"backbone": backbone, "layer": "last", "variant": name,
                              "dev_accuracy": round(float(np.mean(head.predict_index(b) == yd)), 4)}), flush=True)


if __name__ == "__main__":
    main()
