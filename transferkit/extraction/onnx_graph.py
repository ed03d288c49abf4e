"""ONNX export of a feature module (optionally with its head) and the onnxruntime session that runs it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._utils import atomic_path

if TYPE_CHECKING:
    import torch

    from ..backbones import Backbone

#: largest accepted difference between ONNX and PyTorch features, relative to the features' scale
ONNX_TOLERANCE = 1e-4


def probe_inputs(backbone: Backbone, n: int = 2, seed: int = 0) -> tuple[Any, dict[str, np.ndarray]]:
    """``(items, feeds)``: up to ``n`` probe items for the library and the same items as a graph's inputs —
    random images (the ``pixels`` themselves), or the backbone's :meth:`probe_items` (texts, waveforms)."""
    if backbone.modality == "image":
        size = backbone.image_size  # type: ignore[attr-defined]
        images = np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
        return images, {"pixels": images}
    items = list(backbone.probe_items())[:n]
    return items, dict(backbone.prepare(items))


def export_feature_onnx(backbone: Backbone, layer: str | None, path: Path, head: torch.nn.Module | None = None,
                        tta: str = "none") -> Path:
    """Export ``backbone``'s feature module (with test-time augmentation ``tta``, optionally followed by
    ``head``) to ONNX at ``path``, atomically."""
    import torch

    from .modules import TextWithHead, feature_module

    module = feature_module(backbone, layer, tta)
    if head is not None:
        module = torch.nn.Sequential(module, head) if backbone.modality == "image" else TextWithHead(module, head)
    module.eval()
    if backbone.modality == "image":
        size = backbone.image_size  # type: ignore[attr-defined]
        args: tuple[Any, ...] = (torch.zeros(2, size, size, 3, dtype=torch.uint8),)
        names = ["pixels"]
        axes: dict[str, dict[int, str]] = {"pixels": {0: "batch"}}
    else:  # text tokens, audio windows / frames: every axis of every input may change size
        _, sample = probe_inputs(backbone)
        args = tuple(torch.from_numpy(v) for v in sample.values())
        names = list(sample)
        if backbone.modality == "text":
            axes = {k: {0: "batch", 1: "tokens"} for k in names}
        else:
            axes = {k: {i: f"{k}_{i}" for i in range(v.ndim)} for k, v in sample.items()}
    output = "probabilities" if head is not None else "features"
    axes[output] = {0: "batch"}
    with atomic_path(path) as tmp:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(tmp),
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    return path


def make_session(path: Path) -> Any:
    """An onnxruntime CPU session with full graph optimisation, using as many threads as PyTorch does (when
    it is loaded: benchmarks pin it) or every core."""
    import onnxruntime as ort

    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else (os.cpu_count() or 1)

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = max(1, threads)
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


