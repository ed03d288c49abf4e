"""int8 feature graphs: ONNX Runtime quantization of a verified fp32 feature graph.

Image graphs use static quantization in the QDQ format with per-channel int8 weights and uint8
activations whose ranges are calibrated (min/max) on the user's own items; this is ONNX Runtime's
recommended recipe for CNNs on x86 CPUs. Text encoders use dynamic quantization (int8 weights, activation
ranges computed per batch), the recipe ONNX Runtime recommends for transformers, so they need no
calibration items. The calibration set is part of the feature identity (and so of the cache key).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from .._utils import atomic_path

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
#: items used to calibrate the activation ranges of an image graph (spread over the data)
CALIBRATION_ITEMS = 256


def calibration_indices(n: int, labels: np.ndarray | None = None, k: int = CALIBRATION_ITEMS,
                        seed: int = 0) -> np.ndarray:
    """Up to ``k`` of ``n`` items for calibration: stratified by ``labels`` when given (each class in
    proportion, at least one of each), else evenly spread; sorted, deterministic for a seed."""
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, size=k, replace=False))
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    share = np.maximum(1, np.floor(counts / counts.sum() * k).astype(int))
    picked = [rng.choice(np.flatnonzero(labels == c), size=min(int(s), int(cnt)), replace=False)
              for c, s, cnt in zip(classes, share, counts, strict=True)]
    return np.sort(np.concatenate(picked))


def quantize_graph(fp32_path: Path, int8_path: Path, modality: str,
                   calibration: Iterable[dict[str, np.ndarray]] | None = None) -> Path:
    """Write the int8 version of the feature graph ``fp32_path`` to ``int8_path`` (atomically)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="transferkit-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=modality != "image")
        with atomic_path(int8_path) as out:
            if modality != "image":
                quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True)
                return int8_path
            if calibration is None:
                raise ValueError("static int8 quantization of an image graph needs calibration items")

            class Reader(CalibrationDataReader):
                def __init__(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
                    self.batches: Iterator[dict[str, np.ndarray]] = iter(batches)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self.batches, None)

            quantize_static(str(prepared), str(out), Reader(calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=_input_nodes(prepared),
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return int8_path


def _input_nodes(path: Path) -> list[str]:
    """The nodes before the first convolution / matrix product: the graph's own normalisation of uint8
    pixels (transpose, cast, subtract mean, scale). Left in float they cost little, and quantizing them
    added a rounding step to every input: on mobilenet_v2 excluding them was faster (1.53× vs 1.33× fp32)
    and closer to fp32 (mean cosine 0.962 vs 0.959)."""
    import onnx

    names = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if node.op_type in ("Conv", "MatMul", "Gemm"):
            break
        names.append(node.name)
    return names


def openvino_runner(path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """A runner of the int8 graph ``path`` on OpenVINO's CPU plugin, or ``None`` when OpenVINO is not
    installed (``pip install openvino``) or ``TRANSFERKIT_OPENVINO=0``. On the benchmark machine it ran the
    same QDQ graph 1.7× faster than ONNX Runtime, with features closer to fp32 (docs/benchmarks.md)."""
    if os.environ.get("TRANSFERKIT_OPENVINO", "1") == "0":
        return None
    try:
        import openvino as ov
    except ImportError:
        return None
    compiled = ov.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    names = [p.get_any_name() for p in compiled.inputs]
    request = compiled.create_infer_request()

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        result = request.infer(dict(zip(names, inputs.values(), strict=True)))
        return np.asarray(result[compiled.outputs[0]], dtype=np.float32)

    return run
