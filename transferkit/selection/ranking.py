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
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..backbones import BackboneConfig, get_config, list_backbones
from ..backbones.config import SOURCE_PROBS
from ..data.cache import EmbeddingCache
from ..data.datasets import check_labels
from ..data.items import as_items
from ..exceptions import ConfigError, DataError, TransferKitError, WeightsError
from ..extraction import ENGINES, Extractor
from ..strategies import advice_rules, default_strategy, get_strategy, strategy_names
from . import SCORE_REGISTRY, SCORES, score_info

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
#: Named layer sets: the last layer of each backbone, the end of each stage in the deeper half of the
#: network (:func:`stage_layers`), or every selectable layer.
LAYER_SETS = ("last", "stages", "all")

#: Fewer items than this in the smallest class → feature extraction (fine-tuning would over-fit).
FEW_PER_CLASS = 50
#: An intermediate layer "clearly" beats the last layer of its backbone when its lead is at least this
#: fraction of the spread of the ranking score over all candidates.
CLEAR_GAP = 0.15


# --------------------------------------------------------------------------------------------------------
# candidates


@dataclass(frozen=True)
class Candidate:
    """A backbone at one layer; ``pretrained=False`` is a random-initialised copy drawn from ``seed``."""

    backbone: str
    layer: str
    pretrained: bool = True
    seed: int = 0

    @property
    def control(self) -> bool:
        return not self.pretrained

    @property
    def label(self) -> str:
        return f"{self.backbone}:{self.layer}" + ("" if self.pretrained else " (random init)")


def stage_layers(config: BackboneConfig) -> list[str]:
    """The curated intermediate layers of a backbone: stage outputs in the deeper half, plus the last layer.

    A stage ends where the feature width changes (the last block at each resolution/width of a CNN; for
    MobileNetV2 these are blocks 4, 7, 11, 14, 17, 18 and 19 counted from 1). When fewer than three widths
    exist (transformer layers all have the same width) every layer counts as a stage end. Of these, the
    deeper half is kept: early stages hold generic edges and textures that rarely beat later ones. A
    config may list its own in ``extra["rank_layers"]``.
    """
    custom = config.extra.get("rank_layers")
    if custom:
        return [config.resolve_layer(name) for name in custom]
    names = list(config.layers)
    ends = [n for i, n in enumerate(names) if i == len(names) - 1 or config.layers[names[i + 1]] != config.layers[n]]
    if len(ends) < 3:
        ends = names
    return ends[len(ends) // 2 :]


def select_layers(config: BackboneConfig, layers: str | Sequence[str]) -> list[str]:
    """Layers of ``config`` for a layer set (``last``, ``stages``, ``all``) or an explicit list of names."""
    if isinstance(layers, str):
        if layers == "last":
            return [config.default_layer]
        if layers == "stages":
            return stage_layers(config)
        if layers == "all":
            return list(config.layers)
        raise ConfigError(f"layers={layers!r} is not one of {', '.join(LAYER_SETS)} (or a list of layer names)")
    out = [config.resolve_layer(name) for name in layers]
    if SOURCE_PROBS in out:
        raise ConfigError(f"{SOURCE_PROBS!r} is not a feature layer to rank; LEEP and NCE read it on their own")
    return list(dict.fromkeys(out))


def control_layers(selected: Sequence[str]) -> list[str]:
    """Layers that get a random-init control: the last ranked layer and, when several are ranked, the middle one."""
    return list(dict.fromkeys([selected[(len(selected) - 1) // 2], selected[-1]])) if selected else []


def resolve_backbones(modality: str, backbones: str | Sequence[str] | None = None) -> list[BackboneConfig]:
    """The backbone configs to rank: every registered one of ``modality`` (``None`` or ``"all"``) or the named ones."""
    if backbones is None or backbones == "all" or (not isinstance(backbones, str) and list(backbones) == ["all"]):
        configs = list_backbones(modality)
        if not configs:
            raise ConfigError(f"no {modality} backbone is registered; see `transferkit backbones`")
        return configs
    names = [b.strip() for b in backbones.split(",")] if isinstance(backbones, str) else [str(b).strip() for b in backbones]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("no backbone named; pass names such as mobilenet_v2,tf_efficientnet_lite0 or 'all'")
    configs: list[BackboneConfig] = []
    for name in names:
        config = get_config(name)
        if config.modality != modality:
            raise DataError(
                f"backbone {config.name!r} takes {config.modality} input but the data is {modality}; "
                f"rank {modality} backbones ({', '.join(c.name for c in list_backbones(modality)) or 'none registered'})"
            )
        if config.name not in {c.name for c in configs}:
            configs.append(config)
    return configs


def make_candidates(
    modality: str,
    backbones: str | Sequence[str] | None = None,
    layers: str | Sequence[str] = "last",
    *,
    controls: bool = True,
    seed: int = 0,
) -> list[Candidate]:
    """Every chosen backbone × selected layer, then the random-init controls (see :func:`control_layers`)."""
    out: list[Candidate] = []
    for config in resolve_backbones(modality, backbones):
        chosen = select_layers(config, layers)
        out += [Candidate(config.name, layer, True, seed) for layer in chosen]
        if controls:
            out += [Candidate(config.name, layer, False, seed) for layer in control_layers(chosen)]
    return out


# --------------------------------------------------------------------------------------------------------
# results


@dataclass
class CandidateResult:
    """Scores and costs of one candidate. ``scores[name]`` is ``None`` when the score does not apply."""

    candidate: Candidate
    n_features: int
    scores: dict[str, float | None]
    not_applicable: dict[str, str] = field(default_factory=dict)
    extract_s: float = 0.0
    score_s: dict[str, float] = field(default_factory=dict)
    from_cache: float = 0.0  # share of items whose features came from the embedding cache
    rank: int = 0

    @property
    def total_s(self) -> float:
        return self.extract_s + sum(self.score_s.values())

    def to_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "rank": self.rank,
            "label": c.label,
            "backbone": c.backbone,
            "layer": c.layer,
            "pretrained": c.pretrained,
            "control": c.control,
            "seed": c.seed,
            "n_features": self.n_features,
            "scores": dict(self.scores),
            "not_applicable": dict(self.not_applicable),
            "times": {"extract_s": self.extract_s, "scores_s": dict(self.score_s), "total_s": self.total_s},
            "from_cache": self.from_cache,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateResult:
        times = d.get("times", {})
        return cls(
            candidate=Candidate(d["backbone"], d["layer"], bool(d.get("pretrained", True)), int(d.get("seed", 0))),
            n_features=int(d.get("n_features", 0)),
            scores={k: (None if v is None else float(v)) for k, v in d.get("scores", {}).items()},
            not_applicable=dict(d.get("not_applicable", {})),
            extract_s=float(times.get("extract_s", 0.0)),
            score_s={k: float(v) for k, v in times.get("scores_s", {}).items()},
            from_cache=float(d.get("from_cache", 0.0)),
            rank=int(d.get("rank", 0)),
        )


@dataclass
class Ranking:
    """The outcome of :func:`rank_candidates`; ``results`` are sorted best first by ``score``."""

    results: list[CandidateResult]
    score: str
    scores: list[str]
    dataset: dict[str, Any]
    settings: dict[str, Any]
    controls: dict[str, Any]
    recommendation: dict[str, Any]
    timings: dict[str, float]
    skipped: list[dict[str, str]] = field(default_factory=list)
    fits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def top(self) -> CandidateResult:
        """The best pretrained candidate."""
        return next(r for r in self.results if r.candidate.pretrained)

    def result(self, backbone: str, layer: str, pretrained: bool = True) -> CandidateResult | None:
        for r in self.results:
            c = r.candidate
            if (c.backbone, c.layer, c.pretrained) == (backbone, layer, pretrained):
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "transferkit-ranking",
            "format": 1,
            "transferkit_version": __version__,
            "dataset": self.dataset,
            "settings": self.settings,
            "score": self.score,
            "scores": list(self.scores),
            "score_info": {
                n: {"summary": score_info(n).summary, "needs_source_probs": score_info(n).needs_source_probs,
                    "cost": score_info(n).cost}
                for n in self.scores
            },
            "candidates": [r.to_dict() for r in self.results],
            "controls": self.controls,
            "recommendation": self.recommendation,
            "timings": self.timings,
            "skipped": self.skipped,
            "fits": self.fits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ranking:
        if not isinstance(d, dict) or d.get("kind") != "transferkit-ranking":
            raise ConfigError("not a transferkit ranking (rank.json written by `transferkit rank`)")
        return cls(
            results=[CandidateResult.from_dict(c) for c in d.get("candidates", [])],
            score=d["score"],
            scores=list(d.get("scores", [])),
            dataset=dict(d.get("dataset", {})),
            settings=dict(d.get("settings", {})),
            controls=dict(d.get("controls", {})),
            recommendation=dict(d.get("recommendation", {})),
            timings={k: float(v) for k, v in d.get("timings", {}).items()},
            skipped=list(d.get("skipped", [])),
            fits=list(d.get("fits", [])),
        )


# --------------------------------------------------------------------------------------------------------
# ranking


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


def check_controls(results: Sequence[CandidateResult], scores: Sequence[str], score: str) -> dict[str, Any]:
    """Does each random-init control rank below its pretrained counterpart at the same layer?

    Returns ``{"checked", "all_below", "pairs": [...]}``; ``all_below`` is about the ranking score, each
    pair also records the comparison under every other score (``None`` where a score does not apply).
    """
    pairs = []
    for ctrl in results:
        c = ctrl.candidate
        if not c.control:
            continue
        pre = next((r for r in results if r.candidate.pretrained and (r.candidate.backbone, r.candidate.layer)
                    == (c.backbone, c.layer)), None)
        if pre is None:
            continue
        below = {}
        for name in scores:
            a, b = ctrl.scores.get(name), pre.scores.get(name)
            below[name] = None if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) else bool(a < b)
        pairs.append({
            "backbone": c.backbone,
            "layer": c.layer,
            "control_rank": ctrl.rank,
            "pretrained_rank": pre.rank,
            "control_score": ctrl.scores.get(score),
            "pretrained_score": pre.scores.get(score),
            "below": bool(below.get(score)),
            "below_by_score": below,
        })
    return {"checked": len(pairs), "all_below": all(p["below"] for p in pairs), "score": score, "pairs": pairs}


# --------------------------------------------------------------------------------------------------------
# recommendation

#: the strategy rule in words, composed from the registered strategies' own rules
STRATEGY_RULE = (f"'enough items' means at least {FEW_PER_CLASS} in the smallest class (fewer would over-fit a "
                 f"fine-tuned network) and 'clearly beats' means by at least {CLEAR_GAP:.0%} of the score range; "
                 f"{advice_rules()}")


def recommend(ranking: Ranking) -> dict[str, Any]:
    """Backbone, layer and strategy to use, with one line saying why; the rule is :data:`STRATEGY_RULE`."""
    score = ranking.score
    results = ranking.results
    best = ranking.top
    c = best.candidate
    config = get_config(c.backbone)
    values = [r.scores[score] for r in results if r.scores.get(score) is not None and math.isfinite(r.scores[score])]  # type: ignore[arg-type]
    spread = (max(values) - min(values)) if len(values) > 1 else 0.0
    s_best = float(best.scores[score])  # type: ignore[arg-type]
    n_min = int(ranking.dataset.get("min_per_class", 0))
    last = ranking.result(c.backbone, config.default_layer)
    control = ranking.result(c.backbone, c.layer, pretrained=False)
    runner_up = next((r for r in results if r.candidate.pretrained and r is not best), None)

    signals: list[str] = []
    gap = None
    if c.layer != config.default_layer and last is not None and spread > 0:
        gap = (s_best - float(last.scores[score])) / spread  # type: ignore[arg-type]
        if gap >= CLEAR_GAP:
            signals.append(f"its intermediate layer {c.layer} beats its last layer by {gap:.0%} of the {score} range, "
                           "so the top of the network is specialised to its source task")
    control_margin = None
    if control is not None and control.scores.get(score) is not None:
        control_margin = s_best - float(control.scores[score])  # type: ignore[arg-type]
        if control_margin <= 0:
            signals.append("its pretrained features score no better than a random-init copy of the same network")

    lead = f"{best.candidate.label} has the highest {score} ({_fmt(s_best)}"
    lead += f"; next {runner_up.candidate.label} at {_fmt(runner_up.scores[score])})" if runner_up else ")"
    evidence = {"lead": lead, "min_per_class": n_min, "signals": signals, "few_per_class": FEW_PER_CLASS,
                "layer_is_last": c.layer == config.default_layer, "backbone": c.backbone}
    advised = [(get_strategy(n).advise(evidence), n) for n in strategy_names()]
    advice, strategy = max(((a, n) for a, n in advised if a is not None), key=lambda t: t[0].strength)
    why = advice.why
    return {
        "backbone": c.backbone,
        "layer": c.layer,
        "strategy": strategy,
        "why": why,
        "score": score,
        "score_value": s_best,
        "intermediate_gap": gap,
        "control_margin": control_margin,
        "min_per_class": n_min,
        "rule": STRATEGY_RULE,
        "next_step": advice.next_step,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    v = float(v)
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:.4g}"


# --------------------------------------------------------------------------------------------------------
# fits: score against obtained accuracy


def attach_fits(ranking: Ranking, fits: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Match ``(source, results.json content)`` of fits to candidates; store and return the matches.

    A fit matches the candidate with the same backbone, layer and weights kind (pretrained or
    random-init). Each entry records the fit's test accuracy next to the candidate's scores; fits of
    another dataset or image size are kept but flagged in ``note``.
    """
    out = []
    for source, res in fits:
        if not isinstance(res, dict) or not isinstance(res.get("metrics"), dict) or not isinstance(res.get("model"), dict):
            raise DataError(f"{source} is not the results.json of a `transferkit fit` (no 'metrics'/'model')")
        model = res["model"]
        acc = res["metrics"].get("accuracy")
        pretrained = not str(model.get("weights_id", "")).startswith("random-init")
        strategy = model.get("strategy") or default_strategy()
        match = ranking.result(str(model.get("backbone")), str(model.get("layer")), pretrained)
        notes = []
        ds_name = (res.get("dataset") or {}).get("name")
        if ranking.dataset.get("name") and ds_name and ds_name != ranking.dataset["name"]:
            notes.append(f"fit on {ds_name!r}, ranking on {ranking.dataset['name']!r}")
        rank_size = ranking.settings.get("image_size")
        fit_size = model.get("image_size")
        if ranking.dataset.get("modality") == "image" and fit_size and rank_size and int(fit_size) != int(rank_size):
            notes.append(f"fit at {fit_size} px, ranking at {rank_size} px")
        if match is None:
            notes.append("no matching candidate in this ranking")
        out.append({
            "source": str(source),
            "backbone": model.get("backbone"),
            "layer": model.get("layer"),
            "pretrained": pretrained,
            "strategy": strategy,
            "accuracy": None if acc is None else float(acc),
            "candidate": match.candidate.label if match else None,
            "rank": match.rank if match else None,
            "scores": dict(match.scores) if match else {},
            "note": "; ".join(notes),
        })
    ranking.fits = out
    return out


# --------------------------------------------------------------------------------------------------------
# fit --backbone auto


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


def ranking_next_steps(ranking: Ranking, verdict: str) -> list[str]:
    """Concrete next steps from the ranking, for the verdict of a fit that used its recommendation."""
    rec = ranking.recommendation
    steps: list[str] = []
    others = [r for r in ranking.results if r.candidate.pretrained
              and (r.candidate.backbone, r.candidate.layer) != (rec.get("backbone"), rec.get("layer"))][:2]
    if verdict != "positive transfer" and others:
        alts = "; ".join(f"`--backbone {r.candidate.backbone} --layer {r.candidate.layer}` "
                         f"({ranking.score} {_fmt(r.scores.get(ranking.score))}, rank {r.rank})" for r in others)
        steps.append(f"the ranking's next candidates: {alts}")
    if rec.get("next_step"):
        steps.append(str(rec["next_step"]))
    bad = [p for p in ranking.controls.get("pairs", []) if not p.get("below")]
    if bad:
        p = bad[0]
        steps.append(f"a random-init {p['backbone']} scored at least as well as the pretrained one at {p['layer']}: "
                     "its pretrained features carry little for this data")
    return steps


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
