"""int8 feature graphs: ONNX Runtime quantization of a verified fp32 feature graph.

Image graphs use static quantization in the QDQ format with per-channel int8 weights and uint8
activations whose ranges are calibrated on the user's own items; this is ONNX Runtime's recommended recipe
for CNNs on x86 CPUs. The ranges are the 99.99th percentile of each activation's magnitude (ONNX Runtime's
percentile calibrator), not its min/max: on mobilenet_v2 that brought int8 features closer to fp32's on
unlabelled training images (mean cosine 0.977 vs 0.963 on OpenVINO, 0.974 vs 0.958 on ONNX Runtime) and
the head's development-split accuracy from 0.826 to 0.837–0.840 (fp32 0.846; docs/benchmarks.md).
Activations are collected a few items at a time, so memory stays bounded. Text encoders use dynamic quantization (int8 weights, activation
ranges computed per batch), the recipe ONNX Runtime recommends for transformers, so they need no
calibration items. The calibration set is part of the feature identity (and so of the cache key).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path
from ..exceptions import ConfigError, ModelFileError, TransferKitError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
#: items used to calibrate the activation ranges of an image graph (spread over the data)
CALIBRATION_ITEMS = 256
#: the int8 accuracy guard of a fit: int8 features are kept only when the head's validation score on them
#: is at most this much (0.5 point) below its score on fp32 features
INT8_TOLERANCE = 0.005
#: the ONNX Runtime release whose ``quantize_static`` reads and writes calibration ranges as JSON
#: (``calibration_cache_path``), which lets a saved int8 model re-quantize identically without its items
RANGES_ORT = "1.27"

#: calibration ranges: each calibrated tensor's name → ``(lowest, highest)`` activation value
Ranges = dict[str, tuple[float, float]]
#: the calibration recipe, part of the identity (and cache key) of int8 image features
RECIPE = "percentile-99.99"
#: the percentile of activation magnitudes that bounds each range, and the items per collection step
#: (the percentile calibrator keeps every activation of a step in memory: ~30 MB per mobilenet_v2 image)
PERCENTILE = 99.99
CALIBRATION_CHUNK = 8


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
                   calibration: Iterable[dict[str, np.ndarray]] | None = None,
                   ranges_path: Path | None = None) -> Path:
    """Write the int8 version of the feature graph ``fp32_path`` to ``int8_path`` (atomically).

    Image graphs are calibrated on the input batches ``calibration``; with ``ranges_path`` the activation
    ranges found are written there as JSON (ONNX Runtime's calibration cache), or, when that file exists
    already, read from it instead of calibrating — so a saved model re-quantizes its graph identically
    without its calibration items (:func:`write_ranges`)."""
    from onnxruntime.quantization import (
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
            if ranges_path is None:
                raise ValueError("static int8 quantization of an image graph keeps its ranges: give ranges_path")
            _check_ranges_support()
            if ranges_path.exists():  # an earlier calibration's ranges (this cache's, or a saved model's)
                _check_range_names(read_ranges(ranges_path), prepared)
            elif calibration is None:
                raise ValueError("static int8 quantization of an image graph needs calibration items")
            else:
                _calibrate(prepared, calibration, ranges_path, Path(tmp))
            quantize_static(str(prepared), str(out), _Reader([]), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=_input_nodes(prepared),
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                            calibration_cache_path=str(ranges_path))
    return int8_path


class _Reader:
    """ONNX Runtime's calibration data reader over input batches."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]]) -> None:
        self.batches: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


def _calibrate(prepared: Path, batches: Iterable[dict[str, np.ndarray]], ranges_path: Path, tmp: Path) -> None:
    """Percentile ranges of the activations of ``prepared`` over ``batches`` (re-cut into steps of
    :data:`CALIBRATION_CHUNK` items, each collected into the calibrator's histograms and then dropped),
    written to ``ranges_path`` as ONNX Runtime's calibration cache."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.calibrate import save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    calibrator = create_calibrator(prepared, sorted(set(QLinearOpsRegistry) | set(QDQRegistry)),
                                   augmented_model_path=str(tmp / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.Percentile,
                                   extra_options={"percentile": PERCENTILE, "symmetric": True})
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints progress lines on stdout
        for batch in batches:
            for name, value in batch.items():
                for s in range(0, len(value), CALIBRATION_CHUNK):
                    calibrator.collect_data(_Reader([{name: value[s : s + CALIBRATION_CHUNK]}]))
        ranges = calibrator.compute_data()
    save_tensors_data(ranges, ranges_path)


def _check_ranges_support() -> None:
    import inspect

    from onnxruntime.quantization import quantize_static

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        import onnxruntime

        raise ConfigError(f"int8 models need onnxruntime>={RANGES_ORT} (this one is {onnxruntime.__version__}) to keep "
                          f"their calibration; `pip install -U onnxruntime`, or use precision 'fp32'")


def read_ranges(path: Path) -> Ranges:
    """The calibration ranges in ONNX Runtime's calibration cache ``path`` (see :func:`quantize_graph`)."""
    import json

    doc = json.loads(Path(path).read_text())
    out: Ranges = {}
    for name, entry in doc["data"].items():
        lo, hi = (np.asarray(entry[k]["data"] if isinstance(entry[k], dict) else entry[k], dtype=np.float64)
                  for k in ("lowest", "highest"))
        if lo.size != 1 or hi.size != 1:  # MinMax ranges are per tensor
            raise TransferKitError(f"calibration range of {name!r} is not one number per end ({lo.size}, {hi.size})")
        out[name] = (float(lo.ravel()[0]), float(hi.ravel()[0]))
    return out


def check_ranges(value: Any) -> Ranges:
    """``value`` (e.g. from a model folder's JSON) as :data:`Ranges`, or :class:`ModelFileError` naming
    what is wrong: a mapping of tensor names to two finite numbers, lowest first."""
    if not isinstance(value, dict) or not value or len(value) > 100_000:
        raise ModelFileError("the model's int8 calibration is not a mapping of tensor names to ranges; the model "
                             "directory is corrupt")
    out: Ranges = {}
    for name, pair in value.items():
        ok = (isinstance(name, str) and 0 < len(name) <= 1024 and isinstance(pair, (list, tuple)) and len(pair) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in pair)
              and pair[0] <= pair[1])
        if not ok:
            raise ModelFileError(f"the model's int8 calibration has a bad entry for {str(name)[:80]!r}: {str(pair)[:80]} "
                                 f"(expected [lowest, highest]); the model directory is corrupt")
        out[name] = (float(pair[0]), float(pair[1]))
    return out


def write_ranges(ranges: Ranges, path: Path) -> Path:
    """Write ``ranges`` as ONNX Runtime's (percentile) calibration cache at ``path`` (atomically)."""
    import json

    def array(v: float) -> dict[str, Any]:
        return {"data": float(v), "dtype": "float32", "CLS": "numpy.array"}

    doc = {"CLS": "TensorsData", "calibration_method": {"CLS": "CalibrationMethod", "value": "CalibrationMethod.Percentile"},
           "data": {k: {"lowest": array(lo), "highest": array(hi), "CLS": "TensorData"} for k, (lo, hi) in ranges.items()},
           "smooth_quant": False}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc))
    return path


def _check_range_names(ranges: Ranges, prepared: Path) -> None:
    """Every calibrated tensor must exist in the graph about to be quantized: ranges from another export of
    the backbone (another PyTorch or ONNX version names tensors differently) are refused, not misapplied."""
    import onnx

    graph = onnx.load(str(prepared), load_external_data=False).graph
    names = {i.name for i in graph.input} | {o for node in graph.node for o in node.output}
    missing = sorted(set(ranges) - names)
    if missing:
        raise TransferKitError(f"the int8 calibration names {len(missing)} tensors this backbone's graph does not have "
                               f"(e.g. {missing[0]!r}): it was made by another export of the backbone; refit the model, "
                               f"or predict with precision 'fp32'")


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


#: the engines that run an int8 image graph: ``auto`` is OpenVINO where installed, else ONNX Runtime
INT8_ENGINES = ("auto", "openvino", "onnxruntime")


def openvino_available() -> bool:
    """Whether OpenVINO can run int8 graphs here (``pip install openvino``; ``TRANSFERKIT_OPENVINO=0`` hides it)."""
    import importlib.util

    return os.environ.get("TRANSFERKIT_OPENVINO", "1") != "0" and importlib.util.find_spec("openvino") is not None


def resolve_int8_engine(engine: str) -> str:
    """``openvino`` or ``onnxruntime``: the engine an int8 image graph runs on for the setting ``engine``.
    OpenVINO ran the same QDQ graph 1.3–1.7× faster than ONNX Runtime here; which of the two is closer to
    fp32 changed with the data and the calibration (docs/benchmarks.md), so a fit's guard tries both."""
    if engine not in INT8_ENGINES:
        raise ConfigError(f"int8_engine={engine!r} is not one of {', '.join(INT8_ENGINES)}")
    if engine == "auto":
        return "openvino" if openvino_available() else "onnxruntime"
    if engine == "openvino" and not openvino_available():
        raise ConfigError("int8_engine='openvino' needs OpenVINO; `pip install openvino` (or the openvino extra)")
    return engine


def openvino_runner(path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A runner of the int8 graph ``path`` on OpenVINO's CPU plugin."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    names = [p.get_any_name() for p in compiled.inputs]
    request = compiled.create_infer_request()

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        result = request.infer(dict(zip(names, inputs.values(), strict=True)))
        return np.asarray(result[compiled.outputs[0]], dtype=np.float32)

    return run
