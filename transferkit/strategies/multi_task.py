"""Multi-task learning in the registry: one shared trunk, one head per task (fine-tuning's two stages on
the tasks' combined, masked loss; see :mod:`transferkit.objectives.multitask`)."""

from __future__ import annotations

from typing import Any

from .._validation import instance_of, one_of
from ..objectives.multitask import WEIGHTINGS
from .base import Advice, Context, Option, register_strategy
from .fine_tuning.strategy import FineTuning


@register_strategy
class MultiTaskLearning(FineTuning):
    name = "multi-task"
    summary = ("one shared trunk and a head per task: the heads first on the frozen trunk, then the trunk's top "
               "blocks (--unfreeze: none, top-N, all) trained on the tasks' combined loss, missing labels masked")
    tasks = ("multitask",)
    comparisons = ()  # the honest comparison (each task alone) is the workflow's single-task step
    options = {
        **FineTuning.options,
        "task_weighting": Option("fixed", one_of(*WEIGHTINGS), "--task-weighting"),
        "task_weights": Option(None, instance_of(dict, allow_none=True)),
    }
    advice_rule = ""
    #: how each task is trained alone for the single-task comparison
    single_task_strategy = "fine-tune"

    @classmethod
    def configure(cls, params: dict[str, Any], context: Context) -> Any:
        from ..exceptions import ConfigError

        if context.objective is None or not hasattr(context.objective, "set_weighting"):
            raise ConfigError(f"{context.owner}: strategy 'multi-task' needs several tasks; use MultiTaskClassifier "
                              "(CLI: --tasks a,b)")
        config = super().configure(params, context)  # validates every option, task_weighting's included
        context.objective.set_weighting(params.get("task_weighting", "fixed"), params.get("task_weights"))
        return config

    @classmethod
    def advise(cls, evidence: dict[str, Any]) -> Advice | None:
        return None

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        objective = self.context.objective
        out["head"] = f"one linear head per task ({', '.join(objective.tasks)})"
        out["multi_task"] = {"tasks": list(objective.tasks), "weighting": objective.weighting,
                             "task_weights": dict(objective.task_weights)}
        return out
