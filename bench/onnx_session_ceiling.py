#!/usr/bin/env python
"""The ceiling of the extraction engine: ONNX Runtime alone on mobilenet_v2 at 224 px, no pipeline.

Times ``session.run`` on random inputs for (a) the graph transferkit exports (uint8 NHWC input,
normalisation inside the graph, global average pool of ``features``) and (b) a plain float NCHW export of
the same torchvision network, each with transferkit's session options, after two warm-up runs. Together with
``bench/extract_throughput.py`` it shows how much of the time is the network and how much the pipeline.

``--rounds R`` (R > 0) then times, R times interleaved, the eager PyTorch forward of the same network
(``model.features(x).mean((2, 3))`` under ``torch.inference_mode()``, float NCHW input, no preprocessing) and
transferkit's graph on the same batch, and reports ``ceiling_ratio`` per round: the largest ratio any
pipeline built on this ONNX Runtime session could reach over the eager loop (preprocessing excluded from both).

Usage: python bench/onnx_session_ceiling.py [--batch-size 8] [--repeats 16] [--rounds 0] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, set_threads  # noqa: E402


def time_session(session, feed: dict, n_items: int, repeats: int) -> float:
    for _ in range(2):
        session.run(None, feed)
    t0 = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feed)
    return n_items * repeats / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=16)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rounds", type=int, default=0, help="interleaved eager vs ONNX rounds (0: none)")
    p.add_argument("--quick", action="store_true", help="smoke run: batch 2, 2 repeats, at most 1 round")
    args = p.parse_args()
    if args.quick:
        args.batch_size, args.repeats, args.rounds = 2, 2, min(args.rounds, 1)
    threads = set_threads(args.threads)

    import torch
    import torchvision

    from transferkit.backbones import get_config, load_backbone
    from transferkit.backbones.weights import resolve_weights
    from transferkit.extraction import export_feature_onnx, make_session

    rng = np.random.default_rng(0)
    load_start = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        ours = export_feature_onnx(load_backbone("mobilenet_v2"), None, Path(tmp) / "ours.onnx")
        s1 = make_session(ours)
        pixels = rng.integers(0, 256, (args.batch_size, 224, 224, 3), dtype=np.uint8)
        ours_rate = time_session(s1, {s1.get_inputs()[0].name: pixels}, args.batch_size, args.repeats)

        model = torchvision.models.mobilenet_v2()
        path = resolve_weights(get_config("mobilenet_v2")).path
        model.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        model.eval()

        class Features(torch.nn.Module):
            def __init__(self, m: torch.nn.Module) -> None:
                super().__init__()
                self.m = m

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.m.features(x).mean((2, 3))

        plain = Path(tmp) / "plain.onnx"
        torch.onnx.export(Features(model), torch.randn(args.batch_size, 3, 224, 224), str(plain),
                          input_names=["x"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
        s2 = make_session(plain)
        x = rng.standard_normal((args.batch_size, 3, 224, 224)).astype(np.float32)
        plain_rate = time_session(s2, {"x": x}, args.batch_size, args.repeats)

        rounds = []
        feed = {s1.get_inputs()[0].name: pixels}
        xt = torch.from_numpy(x)
        for _ in range(args.rounds):
            with torch.inference_mode():
                model.features(xt).mean((2, 3))  # warm-up
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    model.features(xt).mean((2, 3))
                eager_rate = args.batch_size * args.repeats / (time.perf_counter() - t0)
            onnx_rate = time_session(s1, feed, args.batch_size, args.repeats)
            rounds.append({"eager_forward_img_per_s": round(eager_rate, 1), "onnx_img_per_s": round(onnx_rate, 1),
                           "ceiling_ratio": round(onnx_rate / eager_rate, 2)})
    out = {"benchmark": "onnx_session_ceiling", "batch_size": args.batch_size, "repeats": args.repeats,
           "transferkit_graph_img_per_s": round(ours_rate, 1), "plain_float_nchw_graph_img_per_s": round(plain_rate, 1)}
    if rounds:
        ratios = sorted(r["ceiling_ratio"] for r in rounds)
        out.update({"rounds": rounds, "ceiling_ratio_median": ratios[len(ratios) // 2],
                    "ceiling_ratio_range": [ratios[0], ratios[-1]]})
    emit({**out, "load_start": load_start, "load_end": loadavg(), "environment": environment(threads)})


if __name__ == "__main__":
    main()
