#!/usr/bin/env python
"""Extraction from a folder of large JPEG photos: transferkit vs the plain eager PyTorch loop, same run.

Users' own pictures are mostly phone photos of about 12 megapixels, where decoding the JPEG costs far more
than the network at 224 px. The photos are made from scikit-image's sample photographs (chelsea, astronaut,
coffee, rocket; BSD), each a different random crop, brightness and mirror, resized to ``--width`` ×
``--height`` (default 4032 × 3024) and saved at JPEG quality 90 in a temporary folder.

Arms, mobilenet_v2 at 224 px, last layer (global average pool), batches of 32, one round each:

(a) ``eager``: the loop a user would write: ``PIL.Image.open(path).convert("RGB")`` (full decode),
    torchvision ``Resize(224)``, ``CenterCrop(224)``, ``ToTensor``, ``Normalize`` (ImageNet), then
    ``model.features`` + mean under ``torch.inference_mode()``.
(b) ``transferkit``: ``Extractor("mobilenet_v2").extract(paths)`` with an empty embedding cache (ONNX graph
    exported beforehand, as after a first use), whose loader decodes each JPEG at a reduced DCT scale that
    keeps at least twice 224 px.
(c) ``transferkit_full_decode``: the same with the reduced-scale decode switched off (each JPEG decoded at
    full size), to isolate what the decode brings from what ONNX Runtime brings.

Agreement: features of (b) against (c) (``max_abs_diff_decode``, ``min_cosine_decode``) and against (a)
(``max_abs_diff_vs_eager``); ``max_abs_diff_full_decode_vs_eager`` checks that, decoded at full size, the
pixels and features are the eager loop's (same torchvision resize and crop arithmetic).

Usage: python bench/photo_throughput.py [--n-images 64] [--width 4032 --height 3024] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CpuMonitor, emit, environment, loadavg, log, set_threads  # noqa: E402
from extract_throughput import IMAGENET_MEAN, IMAGENET_STD, eager_model  # noqa: E402


def make_photos(folder: Path, n: int, width: int, height: int, seed: int) -> list[Path]:
    from PIL import Image, ImageEnhance
    from skimage import data

    sources = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img = Image.fromarray(src[top : top + ch, left : left + cw]).resize((width, height), Image.Resampling.BICUBIC)
        img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.8, 1.2)))
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"photo_{i:03d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def eager_loop(paths: list[Path], batch_size: int) -> tuple[np.ndarray, dict]:
    import torch
    from PIL import Image
    from torchvision import transforms as T

    t0 = time.perf_counter()
    model, _ = eager_model()
    tf = T.Compose([T.Resize(224), T.CenterCrop(224), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    decode_s = forward_s = 0.0
    outs = []
    with torch.inference_mode():
        for s in range(0, len(paths), batch_size):
            t1 = time.perf_counter()
            batch = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[s : s + batch_size]])
            t2 = time.perf_counter()
            outs.append(model.features(batch).mean(dim=(2, 3)))
            decode_s += t2 - t1
            forward_s += time.perf_counter() - t2
    feats = torch.cat(outs).numpy()
    return feats, {"total_s": time.perf_counter() - t0, "decode_and_resize_s": decode_s, "forward_s": forward_s}


def full_decode_paths(paths: list[Path]):
    """An ImagePaths whose sized loads decode every JPEG at full size (arm c)."""
    from transferkit.data.items import ImagePaths

    class FullDecode(ImagePaths):
        def load_sized(self, i: int, size: int | None):
            return self.load(i)

    return FullDecode(paths)


def transferkit_arm(items, cache_dir: Path, batch_size: int) -> tuple[np.ndarray, float]:
    from transferkit.backbones import clear_loaded
    from transferkit.data.cache import EmbeddingCache
    from transferkit.extraction import Extractor

    clear_loaded()
    t0 = time.perf_counter()
    ex = Extractor("mobilenet_v2", batch_size=batch_size, cache=EmbeddingCache(cache_dir), show_progress=False)
    feats = ex.extract(items)
    seconds = time.perf_counter() - t0
    assert ex.stats_["computed"] == len(feats), ex.stats_
    assert ex.engine_used_ == "onnx", ex.engine_used_
    return feats, seconds


def cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(num / den))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-images", type=int, default=64)
    p.add_argument("--width", type=int, default=4032)
    p.add_argument("--height", type=int, default=3024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="smoke run: 8 photos of 1024x768, batches of 4")
    args = p.parse_args()
    if args.quick:
        args.n_images, args.width, args.height, args.batch_size = 8, 1024, 768, 4
    threads = set_threads(args.threads)
    load_start = loadavg()

    import os

    with tempfile.TemporaryDirectory(prefix="tk-photos-") as tmp:
        root = Path(tmp)
        os.environ["TRANSFERKIT_CACHE_DIR"] = str(root / "cache")
        (root / "photos").mkdir()
        log(f"writing {args.n_images} JPEG photos of {args.width}x{args.height}")
        paths = make_photos(root / "photos", args.n_images, args.width, args.height, args.seed)
        mb = sum(p.stat().st_size for p in paths) / 1e6

        from transferkit.data.cache import EmbeddingCache
        from transferkit.extraction import Extractor

        # export the ONNX graph once (as after a first use), on other pictures
        Extractor("mobilenet_v2", cache=EmbeddingCache(root / "warm"), show_progress=False).extract(
            np.zeros((2, 64, 64), np.uint8))

        contention = {}
        log("eager loop")
        with CpuMonitor() as mon:
            eager_feats, eager = eager_loop(paths, args.batch_size)
        contention["eager"] = mon.as_dict()
        log("transferkit")
        with CpuMonitor() as mon:
            tk_feats, tk_s = transferkit_arm([str(x) for x in paths], root / "emb-tk", args.batch_size)
        contention["transferkit"] = mon.as_dict()
        log("transferkit, full-size decode")
        with CpuMonitor() as mon:
            full_feats, full_s = transferkit_arm(full_decode_paths(paths), root / "emb-full", args.batch_size)
        contention["transferkit_full_decode"] = mon.as_dict()

    n = args.n_images
    out = {
        "benchmark": "photo_throughput",
        "backbone": "mobilenet_v2",
        "image_size": 224,
        "n_images": n,
        "photo_size": [args.width, args.height],
        "jpeg_megabytes": round(mb, 1),
        "batch_size": args.batch_size,
        "threads": threads,
        "eager_img_per_s": round(n / eager["total_s"], 2),
        "eager_decode_and_resize_s": round(eager["decode_and_resize_s"], 2),
        "eager_forward_s": round(eager["forward_s"], 2),
        "transferkit_img_per_s": round(n / tk_s, 2),
        "transferkit_full_decode_img_per_s": round(n / full_s, 2),
        "ratio": round(eager["total_s"] / tk_s, 2),
        "ratio_full_decode": round(eager["total_s"] / full_s, 2),
        "decode_speedup": round(full_s / tk_s, 2),
        "max_abs_diff_decode": float(np.max(np.abs(tk_feats - full_feats))),
        "min_cosine_decode": round(cosine_min(tk_feats, full_feats), 6),
        "max_abs_feature": float(np.max(np.abs(full_feats))),
        "max_abs_diff_vs_eager": float(np.max(np.abs(tk_feats - eager_feats))),
        "min_cosine_vs_eager": round(cosine_min(tk_feats, eager_feats), 6),
        "min_cosine_full_decode_vs_eager": round(cosine_min(full_feats, eager_feats), 6),
        "max_abs_diff_full_decode_vs_eager": float(np.max(np.abs(full_feats - eager_feats))),
        "contention": contention,
        "load_start": load_start,
        "load_end": loadavg(),
        "environment": environment(threads),
    }
    emit(out)


if __name__ == "__main__":
    main()
