"""ONNX export of a fitted model: backbone and head as one graph, checked before it is kept.

The graph comes from the model's strategy (:meth:`~transferkit.strategies.Strategy.write_onnx`). Image
models take ``pixels``: uint8 ``(N, S, S, 3)`` RGB already resized to the model's input size (the same
resize the library does: shorter side to S, centre crop); normalisation is inside the graph. Text models
take the tokenizer's ``input_ids`` and ``attention_mask`` (int64, ``(N, T)``). The output is
``probabilities`` ``(N, n_classes)`` (class scores for a head without probabilities), columns in the order
of ``model.json``'s ``classes``.

The graph is written to a temporary sibling, run by its own onnxruntime session on probe inputs, compared
with the library's predictions, and only then renamed onto ``path``: a failed check leaves nothing (and an
earlier file at ``path`` intact).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._utils import atomic_path
from .exceptions import TransferKitError
from .extraction.onnx_graph import probe_inputs

TOLERANCE = 1e-4


def export_onnx(model: Any, path: str | os.PathLike[str], check_items: int = 4) -> dict[str, Any]:
    """Write ``model`` (a fitted estimator) to ``path`` as one ONNX graph and verify it against the library.

    Returns ``{"inputs", "output", "max_abs_diff", "checked_items"}``; raises if the graph's outputs differ
    from the library's by more than 1e-4 (nothing is written then).
    """
    from .estimators import check_fitted
    from .extraction import make_session

    check_fitted(model, "strategy_")
    strategy = model.strategy_
    path = Path(path)
    with atomic_path(path) as tmp:
        strategy.write_onnx(tmp)
        session = make_session(tmp)
        X, feeds = probe_inputs(strategy.extractor().backbone, check_items)
        names = [i.name for i in session.get_inputs()]
        got = session.run(None, {name: np.asarray(feeds[name]) for name in names})[0]
        uncached = strategy.context
        strategy.context = uncached.replace(cache=False, progress=False)
        try:
            features = strategy.features(X)
        finally:
            strategy.context = uncached
        logits = strategy.logits(features)
        # the head's probabilities (softmax, a sigmoid per tag, a softmax per task), or its values
        want = model.head_.probabilities(logits) if model.head_.probabilistic else logits
        diff = float(np.max(np.abs(got - want)))
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise TransferKitError(f"the exported graph differs from the library by {diff:.2e}; not written")
    return {"inputs": names, "output": session.get_outputs()[0].name, "max_abs_diff": diff, "checked_items": len(X)}
