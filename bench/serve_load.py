#!/usr/bin/env python
"""`transferkit serve` under load: ``--clients`` concurrent clients for ``--seconds`` against a real server
on 127.0.0.1, each posting one Fashion-MNIST PNG per request, then the same model's offline throughput
(the server's predictor called directly on batches of ``--max-batch`` images) in the same run.

The model: mobilenet_v2 features + logistic regression fitted on 600 images of the bundled Fashion-MNIST sample, saved,
and served by ``python -m transferkit serve`` in a subprocess (the CLI users run). The clients are threads
of this process (httpx), so on a 2-core machine they compete with the server for the CPU, as a local
load generator does.

Reported: requests/s, p50 / p99 latency, failures, the mean batch the server ran, and the server's
throughput as a fraction of offline throughput.

Usage: python bench/serve_load.py [--clients 16] [--seconds 30] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, log, own_cache_dir, rounded  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    p.add_argument("--quick", action="store_true", help="4 clients for 5 s")
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    if args.quick:
        args.clients, args.seconds = 4, 5.0
    import httpx

    from transferkit import TransferClassifier
    from transferkit.data.datasets import load_fashion_mnist_sample
    from transferkit.serving import Predictor

    with own_cache_dir(args.cache_dir, "serve-load") as cache, tempfile.TemporaryDirectory() as tmp:
        ds = load_fashion_mnist_sample()
        X, y = np.asarray(ds.X)[:600], np.asarray(ds.y)[:600]
        log(f"fitting the served model on {len(X)} images")
        model_dir = TransferClassifier("mobilenet_v2", progress=False).fit(X, y).save(Path(tmp) / "model")
        bodies = [png(x) for x in X[:256]]

        port = free_port()
        env = {**os.environ, "TRANSFERKIT_CACHE_DIR": str(cache)}
        cmd = [sys.executable, "-m", "transferkit", "serve", str(model_dir), "--port", str(port), "--log-level",
               "warning", "--max-batch", str(args.max_batch), "--batch-window-ms", str(args.batch_window_ms)]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 300
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"server did not start: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
            log(f"{args.clients} clients for {args.seconds:g} s")
            latencies: list[float] = []
            failures = [0]
            lock = threading.Lock()
            stop_at = time.perf_counter() + args.seconds

            def client(k: int) -> None:
                with httpx.Client(timeout=60) as c:
                    i = k
                    while time.perf_counter() < stop_at:
                        t0 = time.perf_counter()
                        try:
                            r = c.post(f"{url}/predict", files={"file": ("x.png", bodies[i % len(bodies)], "image/png")})
                            ok = r.status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        dt = time.perf_counter() - t0
                        with lock:
                            if ok:
                                latencies.append(dt)
                            else:
                                failures[0] += 1
                        i += args.clients

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=30)

        log("offline throughput of the same predictor")
        from PIL import Image

        predictor = Predictor(model_dir, batch_size=args.max_batch)
        images = [Image.open(io.BytesIO(b)).convert("RGB") for b in bodies]
        predictor(images[:8])
        t0 = time.perf_counter()
        for s in range(0, len(images), args.max_batch):
            predictor(images[s : s + args.max_batch])
        offline = len(images) / (time.perf_counter() - t0)

    lat = np.asarray(latencies) * 1000
    rps = len(latencies) / wall
    emit({"benchmark": "serve_load", "backbone": "mobilenet_v2", "clients": args.clients, "seconds": args.seconds,
          "max_batch": args.max_batch, "batch_window_ms": args.batch_window_ms, "quick": args.quick,
          "environment": environment(), "loadavg_end": loadavg(), "requests": len(latencies), "failures": failures[0],
          "requests_per_s": rounded(rps, 2), "latency_ms_p50": rounded(float(np.percentile(lat, 50)), 1),
          "latency_ms_p99": rounded(float(np.percentile(lat, 99)), 1),
          "offline_images_per_s": rounded(offline, 2), "served_fraction_of_offline": rounded(rps / offline, 3)})


if __name__ == "__main__":
    main()
