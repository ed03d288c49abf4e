"""A saved model as a callable for a server: items in, JSON-ready predictions out.

The model folder is read by :func:`transferkit.saved.load_predictor` (verified manifest, JSON + safetensors
only; no scikit-learn estimator is built). The
feature extractor is built once, without the on-disk embedding cache (a server must not grow a cache of
every upload) and with its ONNX session kept open, so a request pays for inference only.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from ..exceptions import DataError


class Predictor:
    """Predictions of the saved model at ``path`` for lists of loaded items (RGB PIL images or strings)."""

    def __init__(self, path: str | os.PathLike[str], *, weights: str | os.PathLike[str] | None = None,
                 batch_size: int | None = None, precision: str | None = None) -> None:
        from ..saved import load_predictor

        self.path = str(path)
        self.model = load_predictor(path, weights=weights)
        if precision is not None:
            self.model.use_precision(precision)
        strategy = self.model.strategy_
        strategy.context = strategy.context.replace(cache=False, progress=False, batch_size=batch_size)
        self.extractor = strategy.extractor()
        self.objective = self.model.objective_
        self.head = self.model.head_
        self.modality = self.extractor.config.modality
        self.outputs = [str(n) for n in self.objective.output_names()]

    def warm_up(self) -> None:
        """Run one item through the network, so the ONNX graph is exported and checked before serving."""
        if self.modality == "image":
            from PIL import Image

            size = int(getattr(self.extractor, "image_size", None) or self.extractor.config.input_size or 224)
            self([Image.new("RGB", (size, size), (127, 127, 127))])
        elif self.modality == "text":
            self(["warm-up"])

    def __call__(self, items: list[Any]) -> list[dict[str, Any]]:
        features = self.extractor.extract(items)
        logits = self.model.strategy_.logits(features)
        preds = self.objective.decode(self.head, logits)
        probs = self.head.probabilities(logits) if self.head.probabilistic else None
        out = []
        for i, p in enumerate(preds):
            row: dict[str, Any] = {"prediction": _jsonable(p, self.objective)}
            if probs is not None:
                row["probabilities"] = {name: float(v) for name, v in zip(self.outputs, probs[i], strict=True)}
            out.append(row)
        return out

    def metadata(self) -> dict[str, Any]:
        from .. import __version__

        return {
            "model": os.path.basename(os.path.abspath(self.path)),
            "objective": self.objective.name,
            "classes": self.outputs,
            "backbone": self.model.backbone_,
            "layer": self.model.layer_,
            "modality": self.modality,
            "strategy": type(self.model.strategy_).__name__,
            "precision": getattr(self.extractor, "precision", "fp32"),
            "engine": self.extractor.engine_used_,
            "transferkit_version": __version__,
        }


def _jsonable(p: Any, objective: Any) -> Any:
    """One prediction in JSON terms: a label or a number as is; a row of outputs (multi-label tags) as the
    text `transferkit predict` writes for it."""
    if isinstance(p, np.ndarray):
        return objective.format_prediction(p)
    return p.item() if isinstance(p, np.generic) else p


def decode_image(data: bytes, name: str) -> Any:
    """An uploaded image file as an RGB PIL image (turned upright by its EXIF tag, as for files on disk)."""
    from ..data.items import read_image
    from ..exceptions import ImageReadError

    try:
        return read_image(io.BytesIO(data), name=f"upload {name!r}")  # type: ignore[arg-type]
    except ImageReadError as exc:
        if "megapixels" in str(exc) or "decompression-bomb" in str(exc):  # the pixel budget, said as such
            raise DataError(str(exc).replace("image upload", "upload").split("; shrink")[0]
                            + "; send a smaller image") from exc
        raise DataError(f"upload {name!r} is not a readable image; send a PNG, JPEG, WebP, BMP, GIF or TIFF "
                        "file") from exc
