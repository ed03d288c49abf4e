"""The types the training loop and its callbacks share: stages, step outputs, the task and batches
protocols, the trainer as callbacks see it, and the callback base class.

:mod:`~transferkit.training.loop` (the :class:`~transferkit.training.loop.Trainer`) and
:mod:`~transferkit.training.callbacks` both import from here and never from each other's module in the
other direction (the loop imports the callbacks it always adds).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ..exceptions import TransferKitError


class TrainingDivergedError(TransferKitError, RuntimeError):
    """The loss became NaN or infinite."""


#: the learning-rate schedules of a :class:`Stage`
SCHEDULES = ("cosine", "constant", "exponential", "inverse")


@dataclass(frozen=True)
class Stage:
    """One stage of training.

    Args:
        name: shown in logs and the history (``"head"``, ``"fine-tune"``, ...).
        epochs: passes over the training batches (0 skips the stage).
        lr: peak learning rate; each parameter group trains at ``lr * group["lr_scale"]``.
        warmup: fraction of the stage's steps over which the rate rises linearly from 0.
        schedule: ``"cosine"`` (decay to ``lr * end_factor``), ``"constant"``, ``"exponential"``
            (from ``lr`` to ``lr * end_factor``: the LR range test), or ``"inverse"``: ``(1 + 10 p)^-0.75``
            at progress ``p`` of the stage (after warm-up), the annealing of Ganin & Lempitsky's DANN and
            TLlib's domain-adaptation examples (ends at 0.166 × ``lr``).
        end_factor: see ``schedule``.
        steps: length of the schedule in steps (default: ``epochs`` × batches per epoch).
        task, train, val: this stage's own task and batches instead of the fit's (e.g. a head trained on
            cached features of a frozen base); the task's model must be part of the fit's model, whose
            state checkpoints hold.
    """

    name: str
    epochs: int
    lr: float
    warmup: float = 0.0
    schedule: str = "cosine"
    end_factor: float = 0.01
    steps: int | None = None
    task: Any = field(default=None, compare=False, repr=False)
    train: Any = field(default=None, compare=False, repr=False)
    val: Any = field(default=None, compare=False, repr=False)

    def describe(self) -> dict[str, Any]:
        """The schedule, as JSON (checkpoint fingerprints)."""
        return {"name": self.name, "epochs": self.epochs, "lr": self.lr, "warmup": self.warmup,
                "schedule": self.schedule, "end_factor": self.end_factor, "steps": self.steps,
                "own_task": self.task is not None}

    def lr_factor(self, step: int, total: int) -> float:
        """Multiplier of ``lr`` at ``step`` (0-based) of a stage of ``total`` steps."""
        total = max(1, self.steps or total)
        pos = min(step, total - 1) / max(1, total - 1)
        if self.schedule == "exponential":
            return float(self.end_factor**pos)
        warm = int(round(self.warmup * total))
        if step < warm:
            return (step + 1) / (warm + 1)
        if self.schedule == "constant":
            return 1.0
        rest = min(1.0, (step - warm) / max(1, total - warm - 1))
        if self.schedule == "inverse":
            return float((1.0 + 10.0 * rest) ** -0.75)
        return float(self.end_factor + (1.0 - self.end_factor) * 0.5 * (1.0 + math.cos(math.pi * rest)))


@dataclass
class StepOutput:
    """What a task returns for one batch: the loss to minimise, batch-mean metrics to log, the batch size."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    n: int = 1


class Task(Protocol):
    """The model side of training. ``param_groups`` returns, in a fixed order, dicts with ``name``,
    ``params`` (list of ``(parameter name, parameter)`` that currently require grad), ``lr_scale`` and
    ``weight_decay``; groups may be empty."""

    model: nn.Module

    def training_step(self, batch: Any) -> StepOutput: ...

    def validation_step(self, batch: Any) -> StepOutput: ...

    def param_groups(self) -> list[dict[str, Any]]: ...


class Batches(Protocol):
    """Mini-batches: ``len()`` per epoch, and ``epoch(i)`` iterating over the batches of epoch ``i``."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterable[Any]: ...


class TrainerLike(Protocol):
    """What callbacks read and set on the trainer during a fit (see :class:`~transferkit.training.loop.Trainer`)."""

    callbacks: list[Any]
    epoch: int
    epoch_in_stage: int
    stage_index: int
    last_lr: float
    stop_stage: bool
    stop_fit: bool
    task: Task

    @property
    def stage(self) -> Stage: ...

    @property
    def stage_train(self) -> Batches: ...

    @property
    def stage_val(self) -> Batches | None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Callback:
    """Base class with every hook as a no-op."""

    order = 50

    def on_fit_start(self, trainer: TrainerLike) -> None: ...
    def on_stage_start(self, trainer: TrainerLike) -> None: ...
    def on_epoch_start(self, trainer: TrainerLike) -> None: ...
    def on_after_backward(self, trainer: TrainerLike) -> None: ...
    def on_batch_end(self, trainer: TrainerLike, output: StepOutput) -> None: ...
    def on_validation_start(self, trainer: TrainerLike) -> None: ...
    def on_epoch_end(self, trainer: TrainerLike, logs: dict[str, Any]) -> None: ...
    def on_stage_end(self, trainer: TrainerLike) -> None: ...
    def on_fit_end(self, trainer: TrainerLike) -> None: ...
    def teardown(self, trainer: TrainerLike) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
