"""What a ranking produces: the scores and costs of each candidate (:class:`CandidateResult`), the whole
ranking (:class:`Ranking`, what ``rank.json`` holds) and the fits of the same data matched to their
candidates (:func:`attach_fits`: ranking score against the accuracy a fit obtained)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..exceptions import ConfigError, DataError
from ..strategies import default_strategy
from . import score_info
from .candidates import Candidate


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


__all__ = ["CandidateResult", "Ranking", "attach_fits"]
