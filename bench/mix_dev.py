#!/usr/bin/env python
"""Development-split measurement of batch mixing (CutMix / MixUp) in stage 2 of image fine-tuning.

Not a library option: this script replaces ``ClassificationTask.training_step`` for its own run so the
idea can be measured before anyone builds it. For batches of images (4-D inputs) while the network
trains, a weight ``lam ~ Beta(alpha, alpha)`` mixes every image with another of the batch — the whole
image (MixUp) or a box of area ``1 - lam`` pasted in (CutMix) — and the loss is the same mixture of the
two labels' (smoothed) cross-entropies. Stage 1 (the head on cached features) and validation are
unchanged. Same data as ``bench/finetune_dev.py``: 100 Fashion-MNIST images per class and 2,000
development images, all from the training set; the test set is never read.

Usage: python bench/mix_dev.py cutmix 1.0      # → one JSON line
       python bench/mix_dev.py mixup 0.4 [--seed 0] [--config '{"image_size": 160}']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fashion_dev_split  # noqa: E402


def mixing_step(mode: str, alpha: float):
    import torch
    import torch.nn.functional as F

    from transferkit.training import StepOutput

    def step(self, batch):  # replaces ClassificationTask.training_step
        inputs, y = batch
        x = inputs[0]
        if x.dim() == 4 and self.model.training:
            lam = float(torch.distributions.Beta(alpha, alpha).sample())
            perm = torch.randperm(len(y))
            if mode == "mixup":
                x = lam * x.float() + (1 - lam) * x[perm].float()
            else:
                H, W = x.shape[1:3]
                r = (1 - lam) ** 0.5
                h, w = int(H * r), int(W * r)
                cy, cx = int(torch.randint(H, ())), int(torch.randint(W, ()))
                y0, y1, x0, x1 = max(cy - h // 2, 0), min(cy + h // 2, H), max(cx - w // 2, 0), min(cx + w // 2, W)
                x = x.clone()
                x[:, y0:y1, x0:x1] = x[perm][:, y0:y1, x0:x1]
                lam = 1 - (y1 - y0) * (x1 - x0) / (H * W)  # the area actually kept
            logits = self.model(x, *inputs[1:])
            loss = (lam * F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
                    + (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=self.label_smoothing))
        else:
            logits = self.model(*inputs)
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.l2sp > 0:
            loss = loss + self.l2sp_penalty()
        with torch.no_grad():
            ce = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
        return StepOutput(loss, {"loss": float(ce), "acc": float(acc)}, len(y))

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("cutmix", "mixup"))
    p.add_argument("alpha", type=float, help="Beta(alpha, alpha) of the mixing weight")
    p.add_argument("--seed", type=int, default=0, help="random_state of the classifier")
    p.add_argument("--config", default="{}", help="further TransferClassifier parameters, as JSON")
    args = p.parse_args()
    cfg = json.loads(args.config)

    from transferkit import TransferClassifier
    from transferkit.strategies import fine_tuning

    fine_tuning.ClassificationTask.training_step = mixing_step(args.mode, args.alpha)
    X, y, X_dev, y_dev = fashion_dev_split()
    t0 = time.perf_counter()
    clf = TransferClassifier("mobilenet_v2", strategy="fine-tune", random_state=args.seed, progress=False,
                             cache=False, **cfg).fit(X, y)
    print(json.dumps({"mode": args.mode, "alpha": args.alpha, "cfg": cfg, "seed": args.seed,
                      "dev_acc": round(float(clf.score(X_dev, y_dev)), 4),
                      "fit_s": round(time.perf_counter() - t0, 1),
                      "stages": [(s["name"], s["epochs_run"], s["best_epoch"]) for s in clf.history_["stages"]]}),
          flush=True)


if __name__ == "__main__":
    main()
