"""What a ranking recommends: the controls check (does each random-init control rank below its pretrained
counterpart?), the backbone, layer and strategy to use (:func:`recommend`, the strategies' own advice
rules from the registry) and the next steps a fit's verdict quotes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..backbones import get_config
from ..strategies import advice_rules, get_strategy, strategy_names
from .results import CandidateResult, Ranking

#: Fewer items than this in the smallest class → feature extraction (fine-tuning would over-fit).
FEW_PER_CLASS = 50
#: An intermediate layer "clearly" beats the last layer of its backbone when its lead is at least this
#: fraction of the spread of the ranking score over all candidates.
CLEAR_GAP = 0.15


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


__all__ = ["CLEAR_GAP", "FEW_PER_CLASS", "STRATEGY_RULE", "check_controls", "ranking_next_steps", "recommend"]
