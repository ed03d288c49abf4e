#!/usr/bin/env python
"""int8 extraction: the eager PyTorch loop vs transferkit fp32 (ONNX Runtime) vs transferkit int8 (ONNX
Runtime static QDQ quantization, calibrated on the labelled training items), in one process.

mobilenet_v2 at 224 px, last layer. Per seed: ``--per-class`` labelled Fashion-MNIST *training* images per
class (the head's training set and the int8 calibration set, stratified) and ``--n-test`` *test* images.

- throughput: images/s of each arm extracting the test images end to end (decode, resize, network), the
  network already built (eager) or the graph already exported / quantized (fp32, int8; the one-off export
  and quantization times are reported apart), and the ratio to the eager loop.
- accuracy: the same head (StandardScaler + LogisticRegression, C=1) fitted on each arm's training
  features, scored on its test features. The eager arm's features equal fp32's within ``max_abs_diff``, so
  its accuracy is fp32's.
- guarded fit: ``TransferClassifier(precision="int8")`` against ``TransferClassifier()`` (default head, its
  C chosen by internal cross-validation) on the same training items: test accuracy of each, the int8
  guard's decision and the validation scores it compared, fit seconds, and test-prediction images/s.
- graph only: the same fp32 and int8 graphs under ONNX Runtime and OpenVINO (when ``pip install openvino``
  is there) on the same preprocessed uint8 batches: network images/s without decoding and resizing, and
  the head's accuracy on each engine's features.

Usage: python bench/int8_extraction.py [--seeds 0] [--per-class 100] [--n-test 1000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_common_args, emit, environment, loadavg, log, own_cache_dir, rounded, set_threads  # noqa: E402
from extract_throughput import eager_loop  # noqa: E402


def head_accuracy(F_train: np.ndarray, y_train: np.ndarray, F_test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    return float(head.fit(F_train, y_train).score(F_test, y_test))


def graph_only(ex, X_train, y_train, X_test, y_test, batch_size: int) -> dict:  # noqa: ANN001
    """The two graphs (fp32, int8) under ONNX Runtime and, when installed, OpenVINO, on the same
    preprocessed uint8 batches: network images/s (preprocessing excluded) and head accuracy."""
    from transferkit.backbones.base import ImageInputs
    from transferkit.data.items import as_items
    from transferkit.extraction import make_session

    inputs = ImageInputs(ex.config)

    def batches(X: np.ndarray) -> list[np.ndarray]:
        items = as_items(X, "image")
        return [inputs.collate([inputs.prepare_item(items.load_sized(i, inputs.image_size))
                                for i in range(s, min(s + batch_size, len(X)))])["pixels"]
                for s in range(0, len(X), batch_size)]

    train_b, test_b = batches(X_train), batches(X_test)
    graphs = {"fp32": ex._onnx_path(), "int8": ex._int8_path()}
    runners = {}
    for precision, path in graphs.items():
        session = make_session(path)
        runners[f"ort_{precision}"] = lambda b, s=session: s.run(None, {"pixels": b})[0]
    try:
        import openvino as ov

        core = ov.Core()
        for precision, path in graphs.items():
            compiled = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
            runners[f"openvino_{precision}"] = lambda b, c=compiled: c(b)[0]
        ov_version = ov.__version__
    except ImportError:
        ov_version = None
    out: dict = {"openvino": ov_version}
    for name, run in runners.items():
        run(test_b[0])  # warm-up
        F_train = np.concatenate([run(b) for b in train_b])
        t0 = time.perf_counter()
        F_test = np.concatenate([run(b) for b in test_b])
        secs = time.perf_counter() - t0
        out[name] = {"network_images_per_s": rounded(len(X_test) / secs, 2),
                     "accuracy": rounded(head_accuracy(F_train, y_train, F_test, y_test), 4)}
        log(f"  graph only, {name}: {out[name]}")
    return out


def guarded_fit(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, seed: int) -> dict:
    """The estimator end to end: an int8 fit (with its accuracy guard) against the fp32 fit."""
    from transferkit import TransferClassifier

    out: dict = {}
    for name in ("fp32", "int8"):
        clf = TransferClassifier("mobilenet_v2", precision=name, random_state=seed, progress=False, cache=False)
        t0 = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_s = time.perf_counter() - t0
        clf.predict(X_test[:8])  # the predict-time graph (int8: re-quantized from the kept ranges) outside the timing
        t0 = time.perf_counter()
        acc = float(np.mean(clf.predict(X_test) == y_test))
        secs = time.perf_counter() - t0
        out[name] = {"accuracy": rounded(acc, 4), "fit_s": rounded(fit_s, 1),
                     "predict_images_per_s": rounded(len(X_test) / secs, 2), "precision_used": clf.precision_,
                     "guard": clf.strategy_.guard}
        log(f"  guarded fit, {name}: {out[name]}")
    out["int8_minus_fp32_points"] = rounded(100 * (out["int8"]["accuracy"] - out["fp32"]["accuracy"]), 2)
    return out


def one_seed(seed: int, per_class: int, n_test: int, batch_size: int, eager: bool = True,
             graphs: bool = True, fit: bool = True) -> dict:
    from transferkit.data.datasets import load_fashion_mnist
    from transferkit.extraction import Extractor

    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(train.y == c), per_class, replace=False) for c in range(10)])
    X_train, y_train = train.X[idx], train.y[idx]
    t_idx = rng.choice(len(test.X), n_test, replace=False)
    X_test, y_test = test.X[t_idx], test.y[t_idx]
    warm = X_train[:8]
    out: dict = {"seed": seed, "train_items": len(X_train), "test_items": len(X_test)}

    eager_feats, eager_s = None, float("nan")
    if eager:
        log(f"seed {seed}: eager loop on {n_test} test images")
        eager_feats, info = eager_loop(X_test, batch_size)
        eager_s = info["total_s"] - info["setup_s"]
        out["eager"] = {"images_per_s": rounded(n_test / eager_s, 2), "seconds": rounded(eager_s, 2)}

    arms = {"fp32": {}, "int8": {"precision": "int8", "calibration": X_train}}
    feats = {}
    for name, kw in arms.items():
        ex = Extractor("mobilenet_v2", cache=False, show_progress=False, batch_size=batch_size, **kw)
        if name == "int8":
            ex.calibrate(X_train, y_train)
        t0 = time.perf_counter()
        ex.extract(warm)  # export (fp32) / quantize (int8) once, outside the timing
        setup = time.perf_counter() - t0
        F_train = ex.extract(X_train)
        t0 = time.perf_counter()
        F_test = ex.extract(X_test)
        secs = time.perf_counter() - t0
        acc = head_accuracy(F_train, y_train, F_test, y_test)
        feats[name] = F_test
        out[name] = {"images_per_s": rounded(n_test / secs, 2), "seconds": rounded(secs, 2),
                     "x_eager": rounded(eager_s / secs, 2), "accuracy": rounded(acc, 4),
                     "one_off_setup_s": rounded(setup, 1), "engine": ex.engine_used_}
        log(f"  {name}: {out[name]}")
    if graphs:
        out["graph_only"] = graph_only(ex, X_train, y_train, X_test, y_test, batch_size)
    if fit:
        out["guarded_fit"] = guarded_fit(X_train, y_train, X_test, y_test, seed)
    out["int8"]["x_fp32"] = rounded(out["fp32"]["seconds"] / out["int8"]["seconds"], 2)
    out["int8"]["accuracy_minus_fp32_points"] = rounded(100 * (out["int8"]["accuracy"] - out["fp32"]["accuracy"]), 2)
    a, b = feats["fp32"], feats["int8"]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    out["int8"]["cosine_to_fp32_mean"] = rounded(float(cos.mean()), 4)
    if eager_feats is not None:
        out["eager"]["max_abs_diff_to_fp32"] = float(np.max(np.abs(eager_feats - a)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--no-eager", action="store_true", help="skip the eager loop (accuracy runs)")
    p.add_argument("--no-graph-only", action="store_true", help="skip the graph-only engine comparison")
    p.add_argument("--no-fit", action="store_true", help="skip the guarded estimator fits")
    args = p.parse_args()
    if args.quick:
        args.per_class, args.n_test = 20, 160
    threads = set_threads(args.threads)
    with own_cache_dir(args.cache_dir, "int8-bench"):
        runs = [one_seed(s, args.per_class, args.n_test, args.batch_size, not args.no_eager, not args.no_graph_only,
                         not args.no_fit) for s in args.seeds]
    summary = {arm: {k: rounded(float(np.mean([r[arm][k] for r in runs])), 4)
                     for k in runs[0][arm] if isinstance(runs[0][arm][k], (int, float))}
               for arm in ("eager", "fp32", "int8") if arm in runs[0]}
    emit({"benchmark": "int8_extraction", "backbone": "mobilenet_v2", "per_class": args.per_class,
          "n_test": args.n_test, "quick": args.quick, "environment": environment(threads), "loadavg_end": loadavg(), "runs": runs,
          "mean": summary})


if __name__ == "__main__":
    main()
