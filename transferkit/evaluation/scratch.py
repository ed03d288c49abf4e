"""The from-scratch baseline of any objective: the modality's raw inputs (pixels, TF-IDF) and the objective's
own linear model (ridge regression for a number, a logistic regression per tag for multi-label ...).

Single-label classification keeps its dedicated baselines (:mod:`transferkit.evaluation.baselines`); this
one serves the other objectives with the same inputs, so a verdict always compares representations, not
tuning efforts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.items import as_items, native_square_size
from .baselines import mfcc_stats, raw_pixels, tfidf_vectorizer

_INPUTS = {"image": "raw-pixel", "text": "TF-IDF", "audio": "MFCC"}


class ScratchBaseline:
    """``fit(X, y)`` / ``predict(X)`` in the user's terms, with ``name`` and ``description_``."""

    def __init__(self, modality: str, objective: Any, random_state: int | None = 0) -> None:
        if modality not in _INPUTS:
            raise ValueError(f"no from-scratch inputs for modality {modality!r}")
        self.modality, self.objective, self.random_state = modality, objective, random_state
        self.name = f"{_INPUTS[modality]} {objective.linear_model_name}"

    def fit(self, X: Any, y: Any) -> ScratchBaseline:
        Y = self.objective.encode(y)
        if self.modality == "image":
            self.size_ = native_square_size(X) or 32
            P, self.grey_ = raw_pixels(X, self.size_, None)
            # plain pixels: no power normalisation (they are non-negative, "auto" would apply it)
            self.head_, _ = self.objective.fit_head(P, Y, self.objective.heads[0], {"power": 1.0},
                                                    random_state=self.random_state, n_jobs=None)
            what = f"{self.size_}×{self.size_} {'grey' if self.grey_ else 'RGB'} pixels"
            how = ", ".join(f"{k}={v:g}" for k, v in self.head_.params.items() if isinstance(v, float) and k != "power")
        elif self.modality == "audio":
            self.head_, _ = self.objective.fit_head(mfcc_stats(X), Y, self.objective.heads[0], {"power": 1.0},
                                                    random_state=self.random_state, n_jobs=None)
            what = "MFCC statistics"
            how = ", ".join(f"{k}={v:g}" for k, v in self.head_.params.items() if isinstance(v, float) and k != "power")
        else:
            texts = list(as_items(X, "text").texts)  # type: ignore[attr-defined]
            self.vectorizer_ = tfidf_vectorizer()
            V = self.vectorizer_.fit_transform(texts)
            self.model_, how = self.objective.fit_sparse(V, Y, self.random_state)
            what = f"TF-IDF of words and word pairs ({V.shape[1]} terms)"
        self.description_ = f"{self.objective.linear_model_name} on {what}" + (f" ({how})" if how else "")
        return self

    def predict(self, X: Any) -> np.ndarray:
        if self.modality == "image":
            P, _ = raw_pixels(X, self.size_, self.grey_)
            return self.objective.decode(self.head_, self.head_.logits(P))
        if self.modality == "audio":
            return self.objective.decode(self.head_, self.head_.logits(mfcc_stats(X)))
        texts = list(as_items(X, "text").texts)  # type: ignore[attr-defined]
        return self.objective.predict_sparse(self.model_, self.vectorizer_.transform(texts))
