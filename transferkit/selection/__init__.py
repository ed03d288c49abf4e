"""Transferability scores: how well will a pretrained model transfer to a labelled target dataset?

Every score is a pure function of arrays that returns a float; higher is better for all of them.

- ``logme``: :func:`logme_score` (features, labels); You et al., ICML 2021.
- ``leep``: :func:`leep_score` (source_probs, labels); Nguyen et al., ICML 2020.
- ``nce``: :func:`nce_score` (source_probs, labels); Tran et al., ICCV 2019.
- ``hscore``: :func:`h_score` (features, labels), H-score with Ledoit-Wolf shrinkage; Ibrahim et al. 2022.
- ``hscore_raw``: :func:`h_score_raw` (features, labels), the original H-score; Bao et al., ICIP 2019.
- ``ridge_loo``: :func:`ridge_loo_accuracy` (features, labels, ``power="auto"``), leave-one-out accuracy
  of a ridge classifier on the features as the heads see them (the signed square root of non-negative
  features), standardised, in closed form: a cheap linear probe.
- ``linear_probe``: :func:`linear_probe_accuracy` (features, labels), cross-validated logistic regression
  accuracy: the costly ground-truth proxy the others try to predict.

``features`` (N, D) are a backbone's features of the N target items, ``labels`` (N,) their classes (any
hashable values) and ``source_probs`` (N, Z) the source classifier's softmax outputs on the target
items. :func:`compute_score` calls any of them by name with one signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._registry import Registry
from ..exceptions import ConfigError
from .hscore import h_score, h_score_raw
from .leep import leep_score
from .linear_probe import linear_probe_accuracy
from .logme import logme_score
from .nce import nce_score
from .ridge import ridge_loo_accuracy


def ridge_loo_as_heads_see(features: Any, labels: Any) -> float:
    """:func:`ridge_loo_accuracy` with ``power="auto"``: the registered ``ridge_loo`` score."""
    return ridge_loo_accuracy(features, labels, power="auto")


@dataclass(frozen=True)
class ScoreInfo:
    """What the registry knows about a score.

    ``function`` takes ``(source_probs, labels)`` when ``needs_source_probs`` and ``(features, labels)``
    otherwise; ``cost`` is ``"cheap"`` (closed form, one decomposition) or ``"costly"`` (trains models).
    """

    name: str
    function: Callable[[Any, Any], float]
    needs_source_probs: bool
    higher_is_better: bool
    cost: str
    summary: str


SCORE_REGISTRY: Registry[ScoreInfo] = Registry("score")
for _info in (
    ScoreInfo("logme", logme_score, False, True, "cheap", "log maximum evidence of Bayesian linear regression"),
    ScoreInfo("leep", leep_score, True, True, "cheap", "log expected empirical prediction of the source head"),
    ScoreInfo("nce", nce_score, True, True, "cheap", "negative conditional entropy H(target | source argmax)"),
    ScoreInfo("hscore", h_score, False, True, "cheap", "H-score with Ledoit-Wolf shrinkage of the covariance"),
    ScoreInfo("hscore_raw", h_score_raw, False, True, "cheap", "H-score without shrinkage (unreliable if N <~ D)"),
    ScoreInfo("ridge_loo", ridge_loo_as_heads_see, False, True, "cheap",
              "leave-one-out accuracy of a ridge classifier on the features as the heads see them (closed form)"),
    ScoreInfo("linear_probe", linear_probe_accuracy, False, True, "costly", "cross-validated logistic-regression accuracy"),
):
    SCORE_REGISTRY.register(_info.name, _info)

#: The registered score names, in registry order.
SCORES: tuple[str, ...] = tuple(SCORE_REGISTRY.names())


def score_info(name: str) -> ScoreInfo:
    """The :class:`ScoreInfo` of ``name``; an unknown name raises with the closest match."""
    if not isinstance(name, str):
        raise ConfigError(f"score name {name!r} is not a string; pick one of {', '.join(SCORES)}")
    return SCORE_REGISTRY.get(name)


def compute_score(name: str, features: Any, labels: Any, source_probs: Any = None) -> float:
    """Compute the score ``name`` with one signature for all scores.

    ``features`` (N, D) are the backbone's features of the N target items, ``labels`` (N,) their target
    classes, ``source_probs`` (N, Z) the source classifier's probabilities. Scores that need
    ``source_probs`` (``leep``, ``nce``) ignore ``features`` (which may be ``None``); the others ignore
    ``source_probs``. Returns a float, higher is better.
    """
    info = score_info(name)
    if info.needs_source_probs:
        if source_probs is None:
            raise ConfigError(
                f"score {info.name!r} needs source_probs, the source classifier's (N, Z) probabilities; "
                f"pass source_probs=... or use a feature-based score ({', '.join(_feature_scores())})"
            )
        return info.function(source_probs, labels)
    if features is None:
        raise ConfigError(f"score {info.name!r} needs features, an (N, D) array; pass features=...")
    return info.function(features, labels)


def _feature_scores() -> list[str]:
    return [n for n in SCORES if not SCORE_REGISTRY.get(n).needs_source_probs]


__all__ = [
    "SCORES",
    "SCORE_REGISTRY",
    "ScoreInfo",
    "compute_score",
    "h_score",
    "h_score_raw",
    "leep_score",
    "linear_probe_accuracy",
    "logme_score",
    "nce_score",
    "ridge_loo_accuracy",
    "score_info",
]
