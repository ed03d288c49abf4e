#!/usr/bin/env python
"""Peak memory of extracting features of all 70,000 Fashion-MNIST images (train + test) with Extractor.

The Extractor streams: it decodes/resizes a batch at a time in worker threads and writes one cache shard
per 1,024 items, so memory should stay bounded by the model, a few batches and the (N, D) output array.
The naive approach (materialise every preprocessed float32 tensor first, then run the model) would need
N x 3 x S x S x 4 bytes; this is reported for comparison (computed, not run).

Peak RSS is measured two ways: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at the end, and
``VmHWM``/``VmRSS`` from ``/proc/self/status`` sampled every ``--sample-interval`` seconds in a thread.

Usage: python bench/extract_rss.py [--image-size 224] [--layer last] [--limit N] [--quick]
(the full run takes about 10 minutes at ~130 img/s on 2 cores).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CpuMonitor,
    add_common_args,
    emit,
    environment,
    loadavg,
    log,
    own_cache_dir,
    rounded,
    seed_everything,
    set_threads,
)

MB = 1024 * 1024


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) * 1024
    return out


class RssSampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (t, VmRSS, VmHWM)
        self._stop_event = threading.Event()
        self.t0 = time.perf_counter()

    def run(self) -> None:
        while not self._stop_event.is_set():
            s = proc_status()
            self.samples.append((time.perf_counter() - self.t0, s.get("VmRSS", 0), s.get("VmHWM", 0)))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--layer", default="last", help="mobilenet_v2 layer (default: last)")
    p.add_argument("--limit", type=int, default=None,
                   help="extract only N images (a seeded random subset of train+test); default all 70,000")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--sample-interval", type=float, default=0.5)
    p.add_argument("--target-gb", type=float, default=2.0, help="target peak RSS in GB (10^9 bytes)")
    args = p.parse_args()
    if args.quick:
        args.limit = min(args.limit or 10**9, 256)
        args.image_size = min(args.image_size, 96)
    seed = args.seeds[0]
    seed_everything(seed)
    threads = set_threads(args.threads)

    sampler = RssSampler(args.sample_interval)
    sampler.start()
    rss_after_import = proc_status()

    from transferkit.data.datasets import load_fashion_mnist
    from transferkit.extraction import Extractor

    with own_cache_dir(args.cache_dir, "rss") as cache:
        train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
        X = np.concatenate([train.X, test.X])
        del train, test
        if args.limit is not None and args.limit < len(X):
            rng = np.random.default_rng(seed)
            X = np.ascontiguousarray(X[np.sort(rng.choice(len(X), size=args.limit, replace=False))])
        n = len(X)
        rss_before = proc_status()
        load_start = loadavg()
        log(f"extracting {n} images at {args.image_size} px, layer {args.layer}; load {load_start}; "
            f"RSS before {rss_before['VmRSS'] / MB:.0f} MB")

        ex = Extractor("mobilenet_v2", args.layer, image_size=args.image_size, batch_size=args.batch_size,
                       show_progress=sys.stderr.isatty())
        with CpuMonitor() as mon:
            t0 = time.perf_counter()
            feats = ex.extract(X)
            elapsed = time.perf_counter() - t0
        rss_after = proc_status()
        sampler.stop()
        ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        cache_bytes = dir_size(cache / "embeddings")
        finite = bool(np.isfinite(feats).all())
        feat_shape = list(feats.shape)
        feat_bytes = int(feats.nbytes)
        engine = ex.engine_used_

    hwm = max((s[2] for s in sampler.samples), default=0)
    peak_sampled_rss = max((s[1] for s in sampler.samples), default=0)
    step = max(1, len(sampler.samples) // 40)
    timeline = [[round(t, 1), round(r / MB)] for t, r, _ in sampler.samples[::step]]
    size = args.image_size
    naive = n * 3 * size * size * 4
    peak = max(ru_maxrss, hwm)
    result = {
        "benchmark": "extract_rss",
        "backbone": "mobilenet_v2",
        "layer": ex.layer,
        "image_size": size,
        "n_images": n,
        "engine": engine,
        "threads": threads,
        "batch_size": ex.batch_size,
        "elapsed_s": rounded(elapsed, 1),
        "img_per_s": rounded(n / elapsed, 2),
        "peak_rss_bytes": int(peak),
        "peak_rss_gb": rounded(peak / 1e9, 3),
        "peak_rss_gib": rounded(peak / 1024**3, 3),
        "ru_maxrss_mb": rounded(ru_maxrss / MB, 1),
        "vmhwm_sampled_mb": rounded(hwm / MB, 1),
        "vmrss_sampled_max_mb": rounded(peak_sampled_rss / MB, 1),
        "rss_after_import_mb": rounded(rss_after_import["VmRSS"] / MB, 1),
        "rss_before_extract_mb": rounded(rss_before["VmRSS"] / MB, 1),
        "rss_after_extract_mb": rounded(rss_after["VmRSS"] / MB, 1),
        "output_features_shape": feat_shape,
        "output_features_mb": rounded(feat_bytes / MB, 1),
        "features_finite": finite,
        "cache_on_disk_mb": rounded(cache_bytes / MB, 1),
        "naive_float32_tensors_bytes": naive,
        "naive_float32_tensors_gb": rounded(naive / 1e9, 2),
        "naive_over_measured_peak": rounded(naive / peak, 2),
        "target_peak_rss_gb": args.target_gb,
        "meets_target": peak <= args.target_gb * 1e9,
        "contention": mon.as_dict(),
        "load_start": load_start,
        "load_end": loadavg(),
        "rss_timeline_mb": timeline,
        "environment": environment(threads),
        "quick": bool(args.quick),
        "limit": args.limit,
    }
    emit(result)


if __name__ == "__main__":
    main()
