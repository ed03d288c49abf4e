"""Objectives: what a model predicts — classification, multi-label tags, a number, several tasks at once
(see :mod:`transferkit.objectives.base`)."""

from .base import OBJECTIVES, Objective, register_objective
from .classification import Classification
from .multilabel import MultiLabel
from .multitask import MultiTask
from .regression import Regression

__all__ = ["OBJECTIVES", "Classification", "MultiLabel", "MultiTask", "Objective", "Regression", "register_objective"]
