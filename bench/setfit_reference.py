#!/usr/bin/env python
"""A plain SetFit loop (no transferkit training code): contrastive pairs, cosine-similarity MSE, AdamW with
linear warm-up/decay, then scikit-learn logistic regression on the mean-pooled embeddings. Used as the
reference for transferkit's ``contrastive`` option and to choose its learning rate, on the development pool
of Rotten Tomatoes (the same draws as ``bench/text_dev.py``). Prints one JSON line per seed.

Usage: python bench/setfit_reference.py [--rounds 20] [--lr 6e-5] [--n 8] [--seeds 0,1,2] [--pairs own|library]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_table import corpus, pools  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--lr", type=float, default=6e-5)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--pairs", choices=("own", "library"), default="own",
                   help="draw the pairs in this loop (own) or with transferkit's contrastive_pairs (library)")
    args = p.parse_args()

    from sklearn.linear_model import LogisticRegression

    from transferkit.backbones import load_backbone
    from transferkit.strategies.fine_tuning import contrastive_pairs

    torch.set_num_threads(2)
    X, y = corpus()
    dev = pools()[1]
    backbone = load_backbone("minilm-l6")
    tok = backbone.tokenizer

    def pooled(model: torch.nn.Module, texts: list[str]) -> torch.Tensor:
        enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1)

    @torch.no_grad()
    def embed(model: torch.nn.Module, texts: list[str]) -> np.ndarray:
        model.eval()
        return np.concatenate([pooled(model, texts[i:i + 64]).numpy() for i in range(0, len(texts), 64)])

    for seed in [int(s) for s in args.seeds.split(",")]:
        rng = np.random.default_rng(seed)
        tr = np.concatenate([rng.choice(dev[y[dev] == c], args.n, replace=False) for c in np.unique(y)])
        te = rng.choice(np.setdiff1d(dev, tr), 1000, replace=False)
        Xtr, ytr, Xte, yte = [X[i] for i in tr], y[tr], [X[i] for i in te], y[te]
        fe = LogisticRegression(max_iter=2000).fit(embed(backbone.model, Xtr), ytr).score(embed(backbone.model, Xte), yte)
        pairs = []
        for _ in range(args.rounds):
            for i in range(len(ytr)):
                pairs.append((i, rng.choice(np.flatnonzero(ytr == ytr[i])), 1.0))
                pairs.append((i, rng.choice(np.flatnonzero(ytr != ytr[i])), 0.0))
        if args.pairs == "library":  # the same number of pairs, drawn as transferkit draws them
            _, y_index = np.unique(ytr, return_inverse=True)
            pairs = [(int(i), int(j), float(s)) for i, j, s in contrastive_pairs(y_index, args.rounds, seed)]
        order = rng.permutation(len(pairs))
        torch.manual_seed(seed)
        model = copy.deepcopy(backbone.model).train()
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
        steps = -(-len(pairs) // 16)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, n=steps: min(1.0, (s + 1) / max(1, 0.1 * n)) * max(0.0, 1 - s / n))
        t0 = time.perf_counter()
        for k in range(0, len(pairs), 16):
            batch = [pairs[j] for j in order[k:k + 16]]
            cos = F.cosine_similarity(pooled(model, [Xtr[i] for i, _, _ in batch]),
                                      pooled(model, [Xtr[j] for _, j, _ in batch]))
            loss = F.mse_loss(cos, torch.tensor([s for *_, s in batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        train_s = time.perf_counter() - t0
        sf = LogisticRegression(max_iter=2000).fit(embed(model, Xtr), ytr).score(embed(model, Xte), yte)
        print(json.dumps({"seed": seed, "n_per_class": args.n, "rounds": args.rounds, "lr": args.lr, "pairs": args.pairs,
                          "fe_logreg": round(float(fe), 4), "setfit_logreg": round(float(sf), 4),
                          "train_s": round(train_s, 1)}), flush=True)


if __name__ == "__main__":
    main()
