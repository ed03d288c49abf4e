#!/usr/bin/env python
"""Fine-tuning cost of mobilenet_v2 per image size on this CPU: the measurement behind the default 112 px.

For each size: training steps per second of the fine-tuning network as transferkit trains it in stage 2
(all blocks unfrozen, BatchNorm in inference mode, AdamW, batch 32), in plain (NCHW) and channels-last
memory layout, and eager inference images per second (stage 1's single pass over the frozen base). Prints
img/s and the projected wall time of one default fine-tuning run on 900 training images (stage 2: 11 epochs).

Usage: flock /tmp/transferkit-bench.lock python bench/finetune_throughput.py [--sizes 96,112,128,160,224]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CpuMonitor, emit, environment, loadavg, log, set_threads, wait_for_idle  # noqa: E402


def measure(size: int, channels_last: bool, batch: int, steps: int) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from transferkit.backbones import load_backbone

    torch.manual_seed(0)
    net = copy.deepcopy(load_backbone("mobilenet_v2", image_size=size).feature_module())
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    head = torch.nn.Linear(1280, 10)
    x = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))
    with torch.inference_mode():
        net.eval()
        net(x)
        t0 = time.perf_counter()
        for _ in range(steps):
            net(x)
        infer = batch * steps / (time.perf_counter() - t0)
    net.train()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=1e-4)

    def step() -> None:
        loss = F.cross_entropy(head(net(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    train = batch * steps / (time.perf_counter() - t0)
    return {"size": size, "channels_last": channels_last, "train_img_per_s": round(train, 1),
            "inference_img_per_s": round(infer, 1),
            "projected_stage2_s_900x11": round(900 * 11 / train, 0)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="96,112,128,160,224")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-wait", type=float, default=600.0, help="seconds to wait for other processes to go quiet")
    args = p.parse_args()
    threads = set_threads(args.threads)
    idle = wait_for_idle(args.max_wait)
    log(f"load {loadavg()}, idle check {idle}")
    rows = []
    with CpuMonitor() as mon:
        for size in (int(s) for s in args.sizes.split(",")):
            for cl in (False, True):
                rows.append(measure(size, cl, args.batch, args.steps))
                log(str(rows[-1]))
    emit({"benchmark": "finetune_throughput", "backbone": "mobilenet_v2", "batch": args.batch, "rows": rows,
          "idle_check": idle, "foreign_cpu_share": round(mon.foreign_share, 3), "load_end": loadavg(),
          "environment": environment(threads)})


if __name__ == "__main__":
    main()
