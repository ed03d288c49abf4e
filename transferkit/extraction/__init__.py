"""The feature-extraction engine: items → cached, batched, streamed features of one backbone layer.

For each request the engine hashes the items, serves what the embedding cache already holds, and runs
the backbone only on the rest, in chunks (one cache shard each) so memory stays bounded whatever the
dataset size. Decoding and resizing run in worker threads while the network runs.

Two execution paths, chosen by ``engine``:

- ``"onnx"``: the feature module (normalisation included) is exported once to ONNX, cached on disk, and
  run by onnxruntime with full graph optimisation. The export is checked against PyTorch on a probe batch
  (max abs diff ≤ 1e-4) before it is used.
- ``"torch"``: eager PyTorch under ``inference_mode`` with channels-last memory.

``"auto"`` (default) takes ONNX where the backbone supports it and falls back to PyTorch otherwise.

Modules: :mod:`.engine` (the :class:`Extractor`), :mod:`.spec` (what keys the cache), :mod:`.modules`
(the PyTorch modules that run or are exported), :mod:`.onnx_graph` (export and onnxruntime sessions),
:mod:`.quantize` (int8 graphs).
"""

from __future__ import annotations

from typing import Any

from .engine import ENGINES, SHARD_SIZE, Extractor, Runner, extract_features
from .onnx_graph import ONNX_TOLERANCE, export_feature_onnx, make_session
from .quantize import CALIBRATION_ITEMS, PRECISIONS, calibration_indices, quantize_graph
from .spec import TTA_MODES, check_tta, preprocessing_spec


def __getattr__(name: str) -> Any:
    # the PyTorch modules load on first use, so that running a cached, verified ONNX graph (a saved model's
    # predict, the server) never imports torch (PEP 562)
    if name in ("FlipAveraged", "TextWithHead", "feature_module"):
        from . import modules

        return getattr(modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CALIBRATION_ITEMS",
    "ENGINES",
    "ONNX_TOLERANCE",
    "PRECISIONS",
    "SHARD_SIZE",
    "TTA_MODES",
    "Extractor",
    "FlipAveraged",
    "Runner",
    "calibration_indices",
    "TextWithHead",
    "check_tta",
    "export_feature_onnx",
    "extract_features",
    "feature_module",
    "make_session",
    "preprocessing_spec",
    "quantize_graph",
]
