"""Rank pretrained backbones and layers for a labelled dataset, before training anything.

A *candidate* is a registry backbone of the data's modality at one of its layers, pretrained or a
random-initialised copy (a negative control). For each candidate the features of every item come from the
extraction engine, hence from the embedding cache when a fit or an earlier ranking already computed them,
and every applicable transferability score is computed on them and timed. LEEP and NCE read the source
classifier's probabilities (the :data:`~transferkit.backbones.config.SOURCE_PROBS` pseudo-layer, cached
like any layer); they depend on the backbone only, not on the layer, and do not apply to backbones without
a source classifier (the text encoders), where they are reported as not applicable.

The ranking sorts candidates by one score, :data:`DEFAULT_SCORE` unless told otherwise, checks that
each random control ranks below its pretrained counterpart at the same layer, and recommends a backbone,
a layer and a strategy (:func:`recommend`).

The ranking uses the labels it is given and nothing else: ``fit --backbone auto`` ranks on the training
split only, so the test score of the chosen model stays an unbiased estimate.

The pieces live by concern: :mod:`.candidates` (what is ranked), :mod:`.results` (what a ranking holds,
fits matched to it), :mod:`.recommendation` (controls check and recommendation); this module runs the
ranking and re-exports them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backbones import get_config
from ..backbones.config import SOURCE_PROBS
from ..data.cache import EmbeddingCache
from ..data.datasets import check_labels
from ..data.items import as_items
from ..exceptions import ConfigError, DataError, TransferKitError, WeightsError
from ..extraction import ENGINES, Extractor
from . import SCORE_REGISTRY, SCORES, score_info
from .candidates import LAYER_SETS, Candidate, control_layers, make_candidates, select_layers, stage_layers
from .recommendation import (
    CLEAR_GAP,
    FEW_PER_CLASS,
    STRATEGY_RULE,
    check_controls,
    ranking_next_steps,
    recommend,
)
from .results import CandidateResult, Ranking, attach_fits

log = logging.getLogger(__name__)

#: The score candidates are sorted by unless another is asked for: the leave-one-out accuracy of a ridge
#: classifier on standardised features. Chosen by measurement over four datasets (Fashion-MNIST,
#: MNIST-5k, scikit-learn digits, Rotten Tomatoes): its Kendall tau with the linear-probe test accuracy
#: was the highest of the cheap scores on every one (0.72-0.92, LogME 0.49-0.81); see docs/benchmarks.md.
DEFAULT_SCORE = "ridge_loo"
#: Breaks ties of the ranking score (leave-one-out accuracies of small datasets tie often).
TIE_BREAK_SCORE = "logme"
#: The scores computed by default: every cheap one (the cross-validated linear probe trains models and is
#: only computed when asked for).
DEFAULT_SCORES: tuple[str, ...] = tuple(n for n in SCORES if SCORE_REGISTRY.get(n).cost == "cheap")


def _check_scores(scores: Sequence[str] | str | None, score: str) -> tuple[list[str], str]:
    if scores is None:
        names = list(DEFAULT_SCORES)
    elif isinstance(scores, str):
        names = list(SCORES) if scores == "all" else [s.strip() for s in scores.split(",") if s.strip()]
    else:
        names = [str(s) for s in scores]
    names = [SCORE_REGISTRY.canonical(n) for n in names]  # unknown → did-you-mean
    score = SCORE_REGISTRY.canonical(score)
    return list(dict.fromkeys([score, *names])), score  # the ranking score first


def rank_candidates(
    X: Any,
    y: Any,
    *,
    backbones: str | Sequence[str] | None = None,
    layers: str | Sequence[str] = "last",
    controls: bool = True,
    scores: Sequence[str] | str | None = None,
    score: str = DEFAULT_SCORE,
    candidates: Sequence[Candidate] | None = None,
    modality: str | None = None,
    image_size: int | None = None,
    engine: str = "auto",
    batch_size: int | None = None,
    seed: int = 0,
    cache: EmbeddingCache | None | bool = None,
    progress: bool = True,
    dataset_name: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Ranking:
    """Score every candidate on the labelled items ``X``, ``y`` and rank them by ``score``.

    Args:
        X: the items, in any form :func:`~transferkit.data.items.as_items` accepts (image paths, uint8
            arrays, PIL images, texts); the modality is taken from the candidates' backbones, or guessed.
        y: one class label per item.
        backbones: registry names (a list or ``"a,b"``), or ``None``/``"all"`` for every backbone of the
            data's modality.
        layers: ``"last"``, ``"stages"`` (see :func:`stage_layers`), ``"all"``, or a list of layer names.
        controls: add random-initialised copies (see :func:`control_layers`) as negative controls.
        scores: score names to compute (default: every cheap score; ``"all"`` adds the linear probe).
        score: the score to sort by (default :data:`DEFAULT_SCORE`); must apply to every candidate. Ties
            are broken by :data:`TIE_BREAK_SCORE` when it is among ``scores``.
        candidates: an explicit candidate list instead of ``backbones``/``layers``/``controls``.
        modality: ``"image"`` or ``"text"``; default: from the named backbones, else guessed from ``X``.
        image_size, engine, batch_size: passed to the extraction engine (``image_size`` only for images).
        seed: seed of the random-init controls.
        cache: the embedding cache (default location when ``None``; ``False`` disables it).

    Backbones whose weights cannot be had (not installed, no network) are skipped with a warning when
    ranking every backbone, and are an error when named explicitly.
    """
    say = say or (lambda msg: log.info(msg))
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    score_names, score = _check_scores(scores, score)
    y_arr = check_labels(y)
    items = as_items(X, modality or _modality_hint(backbones, candidates))
    modality = items.modality
    if len(items) != len(y_arr):
        raise DataError(f"X has {len(items)} items but y has {len(y_arr)} labels; they must match one to one")
    classes, counts = np.unique(y_arr, return_counts=True)
    if counts.min() < 2:
        rare = classes[int(np.argmin(counts))].item()
        raise DataError(f"class {rare!r} has only 1 item; ranking needs at least 2 items per class (add items or drop the class)")
    explicit = candidates is not None or (backbones is not None and backbones != "all")
    cands = list(candidates) if candidates is not None else make_candidates(
        modality, backbones, layers, controls=controls, seed=seed)
    if not cands:
        raise ConfigError("no candidate to rank")
    for c in cands:
        config = get_config(c.backbone)
        if config.modality != modality:
            raise DataError(f"candidate {c.label} takes {config.modality} input but the data is {modality}")
        config.resolve_layer(c.layer)
    for name in score_names:
        info = score_info(name)
        if info.needs_source_probs and name == score:
            lacking = sorted({c.backbone for c in cands if not get_config(c.backbone).has_source_classifier})
            if lacking:
                raise ConfigError(
                    f"cannot rank by {name!r}: {', '.join(lacking)} have no source classifier, so {name} does not "
                    f"apply to them; rank by a feature score ({', '.join(n for n in SCORES if not score_info(n).needs_source_probs)})"
                )
    if image_size is not None and modality != "image":
        raise ConfigError(f"image_size={image_size} was given but the data is {modality}")
    if cache is None or cache is True:
        cache = EmbeddingCache()

    def extractor(backbone: str, layer: str, pretrained: bool, cand_seed: int) -> Extractor:
        return Extractor(backbone, layer, pretrained=pretrained, image_size=image_size, seed=cand_seed,
                         batch_size=batch_size, engine=engine, cache=cache, show_progress=progress)

    t_start = time.perf_counter()
    results: list[CandidateResult] = []
    skipped: list[dict[str, str]] = []
    unavailable: dict[str, str] = {}
    source_probs: dict[tuple[str, bool, int], tuple[np.ndarray, float, float]] = {}
    codes = np.unique(y_arr, return_inverse=True)[1].reshape(-1)
    for i, cand in enumerate(cands, 1):
        if cand.backbone in unavailable:
            continue
        config = get_config(cand.backbone)
        say(f"[{i}/{len(cands)}] {cand.label}")
        try:
            ex = extractor(cand.backbone, cand.layer, cand.pretrained, cand.seed)
            t0 = time.perf_counter()
            feats = ex.extract(items)
            extract_s = time.perf_counter() - t0
            from_cache = ex.stats_.get("cached", 0) / max(1, ex.stats_.get("items", 1))
            probs = None
            if config.has_source_classifier and any(score_info(n).needs_source_probs for n in score_names):
                key = (cand.backbone, cand.pretrained, cand.seed)
                if key not in source_probs:
                    sx = extractor(cand.backbone, SOURCE_PROBS, cand.pretrained, cand.seed)
                    t0 = time.perf_counter()
                    p = sx.extract(items)
                    source_probs[key] = (p, time.perf_counter() - t0,
                                         sx.stats_.get("cached", 0) / max(1, sx.stats_.get("items", 1)))
                probs = source_probs[key][0]
        except WeightsError as exc:
            if explicit:
                raise
            unavailable[cand.backbone] = str(exc).splitlines()[0]
            skipped.append({"backbone": cand.backbone, "reason": unavailable[cand.backbone]})
            log.warning("skipping %s: %s", cand.backbone, unavailable[cand.backbone])
            continue
        values: dict[str, float | None] = {}
        times: dict[str, float] = {}
        not_applicable: dict[str, str] = {}
        for name in score_names:
            info = score_info(name)
            if info.needs_source_probs and probs is None:
                values[name] = None
                not_applicable[name] = f"{config.name} has no source classifier"
                continue
            t0 = time.perf_counter()
            values[name] = _score(name, feats, codes, probs)
            times[name] = time.perf_counter() - t0
        results.append(CandidateResult(cand, int(feats.shape[1]), values, not_applicable, extract_s, times, from_cache))
        del feats
    if not results:
        reasons = "; ".join(f"{s['backbone']}: {s['reason']}" for s in skipped)
        raise WeightsError(f"no candidate could be ranked ({reasons})")
    if not any(r.candidate.pretrained for r in results):
        raise ConfigError("every candidate is a random-init control; rank at least one pretrained backbone")

    results.sort(key=lambda r: _sort_key(r, score))
    for pos, r in enumerate(results, 1):
        r.rank = pos
    total_s = time.perf_counter() - t_start
    timings = {
        "extract_s": sum(r.extract_s for r in results),
        "source_probs_s": sum(v[1] for v in source_probs.values()),
        "scores_s": sum(sum(r.score_s.values()) for r in results),
        "total_s": total_s,
    }
    dataset = {
        "name": dataset_name,
        "modality": modality,
        "n_items": int(len(y_arr)),
        "n_classes": int(len(classes)),
        "min_per_class": int(counts.min()),
        "class_counts": {str(c): int(n) for c, n in zip(classes, counts, strict=True)},
    }
    settings = {
        "backbones": sorted({c.backbone for c in cands}, key=[c.backbone for c in cands].index),
        "layers": layers if isinstance(layers, str) else list(layers),
        "controls": bool(controls) if candidates is None else any(c.control for c in cands),
        "image_size": image_size,
        "engine": engine,
        "seed": seed,
        "source_probs_from_cache": {f"{k[0]}{'' if k[1] else ' (random init)'}": v[2] for k, v in source_probs.items()},
    }
    ranking = Ranking(results, score, score_names, dataset, settings, check_controls(results, score_names, score),
                      {}, timings, skipped)
    ranking.recommendation = recommend(ranking)
    return ranking


def _modality_hint(backbones: Any, candidates: Sequence[Candidate] | None) -> str | None:
    """The modality the named backbones take (``None`` when every backbone is ranked: guess from X)."""
    if candidates:
        return get_config(candidates[0].backbone).modality
    if backbones is None or backbones == "all":
        return None
    names = backbones.split(",") if isinstance(backbones, str) else [str(b) for b in backbones]
    first = next((n.strip() for n in names if n.strip() and n.strip() != "all"), None)
    return get_config(first).modality if first else None


def _score(name: str, feats: np.ndarray, codes: np.ndarray, probs: np.ndarray | None) -> float:
    from threadpoolctl import threadpool_limits

    info = score_info(name)
    try:
        # One BLAS thread: these decompositions are small, and multi-threaded OpenBLAS is several times
        # slower on them, up to 10x on a busy machine (measured: LogME of 1,000 x 1,280 features 1.5 s
        # with one thread, 14.6 s with two while other jobs ran).
        with threadpool_limits(limits=1, user_api="blas"):
            value = info.function(probs, codes) if info.needs_source_probs else info.function(feats, codes)
    except TransferKitError as exc:  # e.g. constant features of a dead random layer
        log.warning("score %s failed: %s", name, exc)
        return float("nan")
    return float(value)


def _sort_key(r: CandidateResult, score: str) -> tuple[int, float, float, int]:
    """Best first: by ``score`` (higher is better for every score), ties broken by :data:`TIE_BREAK_SCORE`
    when it was computed, then pretrained before control."""
    v = r.scores.get(score)
    bad = v is None or not math.isfinite(v)
    t = r.scores.get(TIE_BREAK_SCORE) if score != TIE_BREAK_SCORE else None
    tie = -float(t) if t is not None and math.isfinite(t) else 0.0
    return (1 if bad else 0, 0.0 if bad else -float(v), tie, 1 if r.candidate.control else 0)  # type: ignore[arg-type]




def rank_for_fit(
    X: Any,
    y: Any,
    *,
    modality: str,
    layer: str | None = "last",
    backbones: str | Sequence[str] | None = None,
    image_size: int | None = None,
    engine: str = "auto",
    seed: int = 0,
    progress: bool = True,
    dataset_name: str | None = None,
    say: Callable[[str], None] | None = None,
) -> Ranking:
    """The ranking behind ``fit --backbone auto``, on the training items only.

    ``layer`` names the layer set to rank (``last``, ``stages`` or ``all``; a single layer name makes no
    sense without a backbone). Controls are included, as in ``transferkit rank``, so a later ``rank`` of the
    same data reads everything from the cache.
    """
    layer_set = "last" if layer in (None, "last") else layer
    if layer_set not in LAYER_SETS:
        raise ConfigError(
            f"--layer {layer!r} needs a backbone; with --backbone auto use one of {', '.join(LAYER_SETS)} "
            "(the layers to rank)"
        )
    say = say or (lambda msg: log.info(msg))
    say(f"ranking {modality} backbones ({layer_set} layers) on the {len(y)} training items")
    candidates = make_candidates(modality, backbones, layer_set, controls=True, seed=seed)
    return rank_candidates(X, y, candidates=candidates, layers=layer_set, modality=modality, image_size=image_size, engine=engine,
                           seed=seed, progress=progress, dataset_name=dataset_name, say=say)


__all__ = [
    "CLEAR_GAP",
    "DEFAULT_SCORE",
    "DEFAULT_SCORES",
    "TIE_BREAK_SCORE",
    "FEW_PER_CLASS",
    "LAYER_SETS",
    "STRATEGY_RULE",
    "Candidate",
    "CandidateResult",
    "Ranking",
    "attach_fits",
    "check_controls",
    "control_layers",
    "make_candidates",
    "rank_candidates",
    "rank_for_fit",
    "ranking_next_steps",
    "recommend",
    "select_layers",
    "stage_layers",
]
