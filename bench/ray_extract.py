#!/usr/bin/env python
"""Embeddings of the same images by the local engine and by Ray Data with 1 and 2 workers, in one run;
then a long synthetic run of the local Parquet writer that shows whether memory stays flat.

Part 1 (throughput): the first ``--images`` Fashion-MNIST test images written as PNG files, mobilenet_v2
(last layer, 224 px, ONNX Runtime), embedding cache off everywhere. Rows:

- ``local``: ``write_embeddings`` in this process (2 intra-op threads, 2 decode threads);
- ``ray-1x2``: one Ray actor with 2 intra-op threads; ``ray-2x1``: two actors with 1 thread each.

Ray rows report the extraction time on an already started local cluster and, separately, the cluster start.
All rows must give the same embeddings (max abs diff vs local is reported). On one 2-core machine Ray cannot
be faster than the local engine: this measures what it costs.

Part 2 (memory): ``--synthetic`` random 32x32 images (an in-memory array, so no disk reads dominate) through
``write_embeddings`` with a seeded random-init SmallCNN; RSS is sampled every 0.2 s and reported at each
10 % of the run, so a leak shows as a rising series.

Usage: python bench/ray_extract.py [--quick] [--images 5000] [--synthetic 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, emit, environment, log, own_cache_dir  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_pngs(n: int, folder: Path) -> list[str]:
    from PIL import Image

    from transferkit.data.datasets import load_fashion_mnist

    ds = load_fashion_mnist("test")
    paths = []
    for i in range(n):
        p = folder / f"{i:05d}.png"
        Image.fromarray(ds.X[i % len(ds.X)]).save(p)
        paths.append(str(p))
    return paths


def read_sorted(path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    table = pq.read_table(path).sort_by("id")
    return table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)


def throughput(n: int, work: Path) -> dict:
    import ray

    from transferkit.extraction import Extractor
    from transferkit.extraction.ray_extract import extract_with_ray
    from transferkit.extraction.writer import write_embeddings

    paths = write_pngs(n, work / "images")
    Extractor("mobilenet_v2", cache=False, show_progress=False).extract(paths[:2])  # export + verify ONNX once
    rows = []
    t0 = time.perf_counter()
    write_embeddings(Extractor("mobilenet_v2", cache=False, show_progress=False), paths, work / "local.parquet")
    dt = time.perf_counter() - t0
    ref = read_sorted(work / "local.parquet")
    rows.append({"path": "local", "workers": 0, "threads_per_worker": 2, "seconds": dt, "images_per_s": n / dt})
    log(f"local: {n / dt:.1f} img/s")
    for workers, threads in ((1, 2), (2, 1)):
        t0 = time.perf_counter()
        ray.init(num_cpus=workers * threads + 1, log_to_driver=False, include_dashboard=False,
                 configure_logging=False)
        start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            out = work / f"ray-{workers}x{threads}"
            extract_with_ray(paths, out, backbone="mobilenet_v2", workers=workers, threads_per_worker=threads,
                             block_size=256)
            dt = time.perf_counter() - t0
        finally:
            ray.shutdown()
        diff = float(np.max(np.abs(read_sorted(out) - ref)))
        rows.append({"path": f"ray-{workers}x{threads}", "workers": workers, "threads_per_worker": threads,
                     "cluster_start_s": start, "seconds": dt, "images_per_s": n / dt, "max_abs_diff_vs_local": diff})
        log(f"ray {workers}x{threads}: {n / dt:.1f} img/s (cluster start {start:.1f} s), max diff {diff:.2e}")
    return {"images": n, "backbone": "mobilenet_v2", "rows": rows}


def memory(n: int, work: Path) -> dict:
    from transferkit.backbones import BackboneConfig, WeightsSource
    from transferkit.extraction import Extractor
    from transferkit.extraction.writer import write_embeddings

    config = BackboneConfig(name="bench-smallcnn", family="smallcnn", architecture="smallcnn", modality="image",
                            description="random-init SmallCNN", weights=WeightsSource(sha256="none (random init)"), layers={"features.0": 16, "features.1": 32, "features.2": 64},
                            blocks=("features.0", "features.1", "features.2"),
                            input_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_source_classes=10,
                            extra={"widths": [16, 32, 64]})
    X = np.random.default_rng(0).integers(0, 256, size=(n, 32, 32), dtype=np.uint8)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            time.sleep(0.2)

    before = rss_mb()
    extractor = Extractor(config, pretrained=False, cache=False, show_progress=False)
    extractor.extract(X[:2])
    thread = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    summary = write_embeddings(extractor, X, work / "synthetic.parquet", chunk_size=1024, show_progress=False)
    dt = time.perf_counter() - t0
    stop.set()
    thread.join()
    rss = [r for _, r in samples]
    deciles = [rss[min(len(rss) - 1, int(q * (len(rss) - 1)))] for q in np.linspace(0.1, 1.0, 10)]
    return {"items": n, "rows_written": summary["rows"], "dim": summary["dim"], "seconds": dt,
            "items_per_s": n / dt, "rss_before_mb": before, "input_array_mb": X.nbytes / 2**20,
            "rss_at_each_10pct_mb": deciles, "rss_peak_mb": max(rss), "rss_first_10pct_mb": deciles[0],
            "output_mb": (work / "synthetic.parquet").stat().st_size / 2**20}


def _round(obj):  # type: ignore[no-untyped-def]
    if isinstance(obj, float):
        return float(f"{obj:.4g}") if abs(obj) < 1e-2 else round(obj, 3)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--images", type=int, default=5000)
    p.add_argument("--synthetic", type=int, default=100_000)
    args = p.parse_args()
    if args.quick:
        args.images, args.synthetic = 200, 10_000
    with own_cache_dir(args.cache_dir, "bench-ray-"), tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        work = Path(tmp)
        (work / "images").mkdir()
        result = {"benchmark": "ray_extract", "quick": args.quick, "environment": environment(),
                  "throughput": throughput(args.images, work), "memory": memory(args.synthetic, work)}
    emit(_round(result))


if __name__ == "__main__":
    main()
