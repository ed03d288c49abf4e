"""ONNX export of a fitted model: backbone and head as one graph.

Image models take ``pixels``: uint8 ``(N, S, S, 3)`` RGB already resized to the model's input size (the
same resize the library does: shorter side to S, centre crop); normalisation is inside the graph. Text
models take the tokenizer's ``input_ids`` and ``attention_mask`` (int64, ``(N, T)``). The output is
``probabilities`` ``(N, n_classes)`` (class scores for a head without probabilities), columns in the order
of ``model.json``'s ``classes``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import TransferKitError
from .extraction import export_feature_onnx, make_session


def export_onnx(model: Any, path: str | os.PathLike[str], check_items: int = 4) -> dict[str, Any]:
    """Write ``model`` (a fitted TransferClassifier) to ``path`` and verify the graph against the library.

    Returns ``{"inputs", "output", "max_abs_diff", "checked_items"}``; raises if the graph's outputs differ
    from the library's by more than 1e-4.
    """
    from .estimators import _check_fitted

    _check_fitted(model, "head_")
    extractor = model._extractor()
    backbone = extractor.backbone
    head = model.head_.torch_module().eval()
    path = Path(path)
    export_feature_onnx(backbone, model.layer_, path, head=head, tta=extractor.tta)

    rng = np.random.default_rng(0)
    if backbone.modality == "image":
        size = backbone.image_size  # type: ignore[attr-defined]
        images = rng.integers(0, 256, size=(check_items, size, size, 3), dtype=np.uint8)
        inputs = {"pixels": images}
        X: Any = images
    else:
        X = ["a first example sentence", "another, somewhat longer example sentence for the check",
             "short", "the fourth and final sentence"][:check_items]
        inputs = backbone.prepare(X)
    session = make_session(path)
    got = session.run(None, dict(zip([i.name for i in session.get_inputs()], inputs.values(), strict=True)))[0]
    model_no_cache = model.__class__(**{**model.get_params(), "cache": False, "progress": False})
    for attr in ("classes_", "backbone_", "layer_", "weights_id_", "n_features_", "head_", "network_"):
        if hasattr(model, attr):  # network_: the fine-tuned backbone of strategy="fine-tune"
            setattr(model_no_cache, attr, getattr(model, attr))
    if model.head_.probabilistic:
        want = model_no_cache.predict_proba(X)
    else:
        want = model_no_cache.decision_function(X)
    diff = float(np.max(np.abs(got - want)))
    if not np.isfinite(diff) or diff > 1e-4:
        path.unlink(missing_ok=True)
        raise TransferKitError(f"the exported graph differs from the library by {diff:.2e}; not written")
    return {
        "inputs": [i.name for i in session.get_inputs()],
        "output": session.get_outputs()[0].name,
        "max_abs_diff": diff,
        "checked_items": len(X),
    }
