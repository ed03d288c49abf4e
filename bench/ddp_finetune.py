#!/usr/bin/env python
"""Data-parallel training with torch.distributed: 1 vs 2 processes (gloo, CPU), same global batch and seed.

Both runs are launched the same way, by ``torchrun --standalone --nproc-per-node N`` on this script's worker
mode, and train a SmallCNN (16/32/64 channels; its BatchNorm layers see each rank's half of the batch, the one
place the two runs compute differently) from the same seeded initialisation on Fashion-MNIST with transferkit's Trainer,
``RankBatches`` (each rank's share of the single process's global batch) and ``GradientSync`` (gradient
all-reduce). Reported per run: wall time of the training (without process start-up), test accuracy, and the
largest weight difference between the 1- and 2-process runs' final models. Three runs: 1 process with 2
intra-op threads, 1 process with 1 thread, 2 processes with 1 thread each (the 1-thread single process
separates the data-parallel gain from the cost of intra-op threading on a busy machine).

Usage: python bench/ddp_finetune.py [--quick] [--train 4000] [--test 2000] [--epochs 3] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


class CnnTask:
    def __init__(self, seed: int) -> None:
        import torch

        from transferkit.backbones.vision import SmallCNN

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = SmallCNN(widths=(16, 32, 64), num_classes=10)

    def _step(self, batch: Any) -> Any:
        import torch.nn.functional as F

        from transferkit.training import StepOutput

        (x,), y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        acc = float((logits.argmax(1) == y).float().mean())
        return StepOutput(loss, {"loss": float(loss.detach()), "acc": acc}, len(y))

    training_step = validation_step = _step

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"name": "all", "params": list(self.model.named_parameters()), "weight_decay": 0.0}]


def _tensors(n: int, split: str) -> tuple[Any, Any]:
    import torch

    from transferkit.data.datasets import load_fashion_mnist

    ds = load_fashion_mnist(split)
    x = torch.from_numpy(ds.X[:n].copy()).float().div(255).sub(0.5).div(0.25).unsqueeze(1).expand(-1, 3, -1, -1)
    return x.contiguous(), torch.as_tensor(ds.y[:n].astype("int64"))


def worker(args: argparse.Namespace) -> None:
    import torch

    from transferkit.training import ItemBatches, Stage, Trainer
    from transferkit.training.distributed import GradientSync, RankBatches, init_from_env, is_main, world

    init_from_env()
    rank, size = world()
    torch.set_num_threads(args.threads or max(1, 2 // size))
    x, y = _tensors(args.train, "train")
    batches = RankBatches(ItemBatches(x, y, lambda b: (torch.stack(b),), batch_size=args.batch, shuffle=True,
                                      seed=0))
    task = CnnTask(seed=0)
    t0 = time.perf_counter()
    Trainer([GradientSync()], seed=0).fit(task, batches, None, [Stage("train", args.epochs, args.lr, warmup=0.1)])
    seconds = time.perf_counter() - t0
    if is_main():
        xt, yt = _tensors(args.test, "test")
        task.model.eval()
        with torch.no_grad():
            acc = float((task.model(xt).argmax(1) == yt).float().mean())
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in task.model.state_dict().items()}, f"{args.out}.safetensors")
        Path(f"{args.out}.json").write_text(json.dumps({"processes": size, "seconds": seconds,
                                                         "test_accuracy": acc}))


def launch(nproc: int, args: argparse.Namespace, out: str, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", __file__,
           "--worker", "--out", out, "--train", str(args.train), "--test", str(args.test), "--epochs",
           str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr), "--threads", str(threads)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    result = json.loads(Path(f"{out}.json").read_text())
    result["threads_per_process"] = threads
    result["wall_with_startup_s"] = time.perf_counter() - t0
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.train, args.test, args.epochs = 512, 256, 1
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        # 1 process with the machine's 2 threads, 1 process with 1 thread, 2 processes with 1 thread each
        runs = [launch(n, args, f"{tmp}/run{n}x{t}", t) for n, t in ((1, 2), (1, 1), (2, 1))]
        a, b = load_file(f"{tmp}/run1x2.safetensors"), load_file(f"{tmp}/run2x1.safetensors")
        diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    print(json.dumps({"benchmark": "ddp_finetune", "quick": args.quick, "train": args.train, "test": args.test,
                      "epochs": args.epochs, "global_batch": args.batch, "runs": runs,
                      "max_weight_diff_1_vs_2": diff}, indent=2))


if __name__ == "__main__":
    main()
