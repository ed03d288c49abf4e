#!/usr/bin/env python
"""Text extraction: padding and engines. MiniLM-L6 (mean pooling, 384-d) on Rotten Tomatoes snippets.

Arms, all on the same ``--n`` snippets in one process, batch 32:

- ``loop_max_length``: the plain transformers loop padding every batch to ``max_length`` (256).
- ``loop_dynamic``: the plain transformers loop padding each batch to its own longest snippet (the usual
  ``padding=True``), snippets in their given order. This is the issue's reference loop.
- ``loop_sorted``: the same loop with the snippets sorted by length first (dynamic padding + length
  buckets, still eager PyTorch): what sorting alone is worth.
- ``transferkit_fp32``: ``Extractor("minilm-l6")``: sorted by length, padded per batch, ONNX Runtime.
- ``transferkit_int8``: the same with ``precision="int8"`` (dynamic quantization of the encoder).

Fine-tuning batches (``--fine-tune-epochs``, default 1): one training epoch (forward, backward, AdamW step) of
MiniLM with a linear head, batch 16, over the same snippets batched by transferkit's ``ItemBatches`` —
shuffled and padded to each batch's longest (``ft_shuffled``, the usual loop) vs shuffled in length groups
(``ft_length_grouped``, what fine-tuning uses for text): snippets/s and padded tokens per real token.

Reported: snippets/s, the ratio to ``loop_dynamic``, padded tokens per real token, the largest feature
difference to ``loop_dynamic`` (fp32 arms) and, for int8, the mean cosine to fp32 and the accuracy of one
logistic-regression head (train on the first half, test on the second) for fp32 and int8 features.

Usage: python bench/text_padding.py [--n 2000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, emit, environment, loadavg, log, own_cache_dir, rounded, set_threads  # noqa: E402

BATCH = 32


def plain_loop(texts: list[str], padding: str, sort: bool) -> tuple[np.ndarray, float, float]:
    """The transformers loop; returns features (in the input order), seconds, padded/real token ratio."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    from transferkit.backbones import get_config
    from transferkit.backbones.weights import resolve_weights

    directory = str(resolve_weights(get_config("minilm-l6")).path)
    tok, model = AutoTokenizer.from_pretrained(directory), AutoModel.from_pretrained(directory).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort else list(range(len(texts)))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    padded = real = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(order), BATCH):
            idx = order[s : s + BATCH]
            enc = tok([texts[i] for i in idx], padding=padding, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out[idx] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy()
            padded += int(enc["attention_mask"].numel())
            real += int(enc["attention_mask"].sum())
    return out, time.perf_counter() - t0, padded / max(1, real)


def fine_tune_epoch(texts: list[str], y: np.ndarray, grouped: bool, epochs: int) -> dict:
    """Training epochs of MiniLM + a linear head over ``texts`` batched by transferkit's ``ItemBatches``."""
    import torch
    from transformers import AutoModel

    from transferkit.backbones import get_config, load_backbone
    from transferkit.backbones.weights import resolve_weights
    from transferkit.strategies.fine_tuning.data import prepare_inputs
    from transferkit.training import ItemBatches

    inputs, collate = prepare_inputs(load_backbone(get_config("minilm-l6")), texts)
    lengths = [len(t) for t in inputs] if grouped else None
    labels = np.unique(y, return_inverse=True)[1]
    batches = ItemBatches(inputs, labels, collate, batch_size=16, shuffle=True, seed=0, lengths=lengths)
    torch.manual_seed(0)
    model = AutoModel.from_pretrained(str(resolve_weights(get_config("minilm-l6")).path)).train()
    head = torch.nn.Linear(384, int(labels.max()) + 1)
    opt = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=2e-5)
    padded = real = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for (ids, mask), target in batches.epoch(epoch):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            loss = torch.nn.functional.cross_entropy(head((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            padded += int(mask.numel())
            real += int(mask.sum())
    secs = time.perf_counter() - t0
    return {"items_per_s": rounded(epochs * len(texts) / secs, 2), "seconds": rounded(secs, 2),
            "padded_per_real_token": rounded(padded / max(1, real), 3)}


def accuracy(F: np.ndarray, y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    h = len(F) // 2
    head = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    return float(head.fit(F[:h], y[:h]).score(F[h:], y[h:]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--n", type=int, default=2000, help="snippets (drawn with the seed)")
    p.add_argument("--fine-tune-epochs", type=int, default=1, help="training epochs per fine-tuning arm (0: skip)")
    args = p.parse_args()
    if args.quick:
        args.n = 200
    threads = set_threads(args.threads)
    from transferkit.data.datasets import load_rotten_tomatoes
    from transferkit.extraction import Extractor

    ds = load_rotten_tomatoes()
    rng = np.random.default_rng(args.seeds[0])
    pick = rng.choice(len(ds.X), args.n, replace=False)
    texts, y = [str(ds.X[i]) for i in pick], np.asarray(ds.y)[pick]
    result: dict = {"benchmark": "text_padding", "backbone": "minilm-l6", "n": args.n, "batch": BATCH,
                    "quick": args.quick, "environment": environment(threads), "arms": {}}
    feats = {}
    for name, padding, sort in (("loop_max_length", "max_length", False), ("loop_dynamic", True, False),
                                ("loop_sorted", True, True)):
        log(name)
        F, secs, ratio = plain_loop(texts, padding, sort)
        feats[name] = F
        result["arms"][name] = {"items_per_s": rounded(args.n / secs, 2), "seconds": rounded(secs, 2),
                                "padded_per_real_token": rounded(ratio, 3)}
    with own_cache_dir(args.cache_dir, "text-padding"):
        for name, kw in (("transferkit_fp32", {}), ("transferkit_int8", {"precision": "int8"})):
            log(name)
            ex = Extractor("minilm-l6", cache=False, show_progress=False, batch_size=BATCH, **kw)
            t0 = time.perf_counter()
            ex.extract(texts[:4])  # export / quantize once, outside the timing
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            feats[name] = ex.extract(texts)
            secs = time.perf_counter() - t0
            result["arms"][name] = {"items_per_s": rounded(args.n / secs, 2), "seconds": rounded(secs, 2),
                                    "one_off_setup_s": rounded(setup, 1), "engine": ex.engine_used_}
    base = result["arms"]["loop_dynamic"]["seconds"]
    for name, arm in result["arms"].items():
        arm["x_loop_dynamic"] = rounded(base / arm["seconds"], 2)
        if name != "transferkit_int8":
            arm["max_abs_diff_to_loop_dynamic"] = float(np.max(np.abs(feats[name] - feats["loop_dynamic"])))
    a, b = feats["transferkit_fp32"], feats["transferkit_int8"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    result["arms"]["transferkit_int8"]["cosine_to_fp32_mean"] = rounded(float(cos.mean()), 4)
    if args.fine_tune_epochs:
        result["fine_tuning"] = {}
        for name, grouped in (("ft_shuffled", False), ("ft_length_grouped", True)):
            log(name)
            result["fine_tuning"][name] = fine_tune_epoch(texts, y, grouped, args.fine_tune_epochs)
        ft = result["fine_tuning"]
        ft["ft_length_grouped"]["x_ft_shuffled"] = rounded(ft["ft_shuffled"]["seconds"] / ft["ft_length_grouped"]["seconds"], 2)
    result["loadavg_end"] = loadavg()
    result["accuracy"] = {"fp32": rounded(accuracy(a, y), 4), "int8": rounded(accuracy(b, y), 4)}
    emit(result)


if __name__ == "__main__":
    main()
