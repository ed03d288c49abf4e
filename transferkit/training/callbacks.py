"""Callbacks of the training loop: history, early stopping, checkpoints, progress, freezing/unfreezing.

Every hook receives the :class:`~transferkit.training.loop.Trainer`; callbacks run in increasing ``order``
(history first, checkpoint last, so a checkpoint holds the state every other callback has just updated).
A callback with state returns it from ``state_dict`` (JSON values and tensors) and takes it back in
``load_state_dict``; checkpoints carry it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._utils import progress
from ..exceptions import ConfigError
from .checkpoint import clear_state, has_state, load_state, save_state
from .types import Callback, StepOutput
from .types import TrainerLike as Trainer

log = logging.getLogger(__name__)


class History(Callback):
    """Records one dict per epoch (``epoch``, ``stage``, ``stage_name``, ``train_*``, ``val_*``, ``lr``,
    ``time_s``); always installed by the trainer."""

    order = 0

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        self.epochs = []

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self.epochs.append(logs)  # the same dict: later callbacks may annotate it

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs = [dict(e) for e in state.get("epochs", [])]


class EarlyStopping(Callback):
    """End a stage when ``monitor`` has not improved for ``patience`` epochs; at the end of the stage
    restore the weights of its best epoch (``restore_best``).

    Args:
        monitor: a key of the epoch logs, e.g. ``"val_loss"`` or ``"val_acc"``.
        mode: ``"min"`` or ``"max"``.
        patience: epochs without improvement before the stage stops (``None``: never stop early, but
            still restore the best epoch).
        min_delta: smallest change that counts as an improvement.
    """

    order = 40

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int | None = 3,
                 min_delta: float = 0.0, restore_best: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ConfigError(f"EarlyStopping: mode={mode!r} is not allowed; expected 'min' or 'max'")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ConfigError(f"EarlyStopping: patience={patience!r} is not allowed; expected an integer >= 1 or None")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = float(min_delta), restore_best
        self.best_epochs: dict[str, int] = {}  # stage name → best epoch (1-based, over the whole fit)
        self._reset(-1)

    def _reset(self, stage_index: int) -> None:
        self.stage_index = stage_index
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_stage_start(self, trainer: Trainer) -> None:
        if self.stage_index != trainer.stage_index:  # not when resuming inside this stage
            self._reset(trainer.stage_index)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        better = self.best is None or (value < self.best - self.min_delta if self.mode == "min"
                                       else value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.wait = float(value), int(logs["epoch"]), 0
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in trainer.task.model.state_dict().items()}
        else:
            self.wait += 1
            if self.patience is not None and self.wait >= self.patience:
                trainer.stop_stage = True
                logs["stopped_early"] = True

    def on_stage_end(self, trainer: Trainer) -> None:
        if self.best_state is not None:
            trainer.task.model.load_state_dict(self.best_state)
        if self.best is not None:
            self.best_epochs[trainer.stage.name] = self.best_epoch
        self.best_state = None

    def state_dict(self) -> dict[str, Any]:
        return {"stage_index": self.stage_index, "best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_epochs": self.best_epochs, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage_index = int(state["stage_index"])
        self.best = state["best"]
        self.best_epoch, self.wait = int(state["best_epoch"]), int(state["wait"])
        self.best_epochs = dict(state.get("best_epochs", {}))
        self.best_state = state.get("best_state")


class WeightAverage(Callback):
    """An exponential moving average (EMA) of the trained weights, used in place of the last weights.

    After every optimiser step of a stage that trains the main task (not a stage with its own task, such as
    the head-only stage on cached features), ``average = d * average + (1 - d) * weights`` with
    ``d = min(decay, (1 + k) / (10 + k))`` at the stage's k-th step (the warm-up of timm's ``ModelEmaV3``, so
    the start of the stage does not dominate). Validation runs on the average; an :class:`EarlyStopping`
    (order 40) therefore keeps the average of its best epoch, and without a validation split the average
    replaces the weights at the end of the stage. Training itself continues from the raw weights.

    Args:
        decay: in (0, 1); 0.99 averages over roughly the last 100 steps.
        stages: names of the stages to average (``None``: every stage that trains the main task).
    """

    order = 45  # after EarlyStopping's snapshot at epoch end, before the checkpoint is written

    def __init__(self, decay: float, stages: Sequence[str] | None = None) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise ConfigError(f"WeightAverage: decay={decay!r} is not allowed; expected a number in (0, 1)")
        self.decay = float(decay)
        self.stages = None if stages is None else set(stages)
        self.average: dict[str, torch.Tensor] | None = None
        self.updates = 0
        self._live: dict[str, torch.Tensor] | None = None

    def _applies(self, trainer: Trainer) -> bool:
        return trainer.stage.task is None and (self.stages is None or trainer.stage.name in self.stages)

    def on_stage_start(self, trainer: Trainer) -> None:
        if trainer.epoch_in_stage == 0:  # not when resuming inside this stage
            self.average, self.updates = None, 0

    @torch.no_grad()
    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if not self._applies(trainer):
            return
        state = trainer.task.model.state_dict()
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in state.items()}
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for k, v in state.items():
            if v.is_floating_point():
                self.average[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.average[k].copy_(v)
        self.updates += 1

    def on_validation_start(self, trainer: Trainer) -> None:
        if self._applies(trainer) and self.average is not None:
            model = trainer.task.model
            self._live = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(self.average)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self._live is not None:  # training goes on from the raw weights
            trainer.task.model.load_state_dict(self._live)
            self._live = None

    def on_stage_end(self, trainer: Trainer) -> None:
        # with a validation split EarlyStopping has just restored the best epoch's average
        if self._applies(trainer) and self.average is not None and trainer.stage_val is None:
            trainer.task.model.load_state_dict(self.average)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        self.average = state.get("average")


class Checkpoint(Callback):
    """Save the whole training state after every epoch, atomically; resume from it.

    Args:
        directory: where ``state.json`` and ``state-*.safetensors`` go.
        fingerprint: JSON-able description of the run (configuration, data); a checkpoint written with a
            different fingerprint is refused on resume, naming the keys that differ.
        resume: continue from the checkpoint in ``directory`` if there is one (else start afresh, with a
            warning).
        keep: leave the checkpoint in place after a successful fit (default: delete it).
        write: save (and delete) the checkpoint; ``False`` only reads it to resume (the ranks other than 0 of
            a data-parallel run, whose state is rank 0's).
    """

    order = 100

    def __init__(self, directory: str | os.PathLike[str], fingerprint: dict[str, Any] | None = None, *,
                 resume: bool = False, keep: bool = False, write: bool = True) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint or {}, sort_keys=True, default=str))
        self.resume, self.keep, self.write = resume, keep, write
        self.resumed_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.resumed_epoch = None
        if not self.resume:
            return
        if not has_state(self.directory):
            log.warning("no checkpoint in %s to resume from; training from the beginning", self.directory)
            return
        state = load_state(self.directory)
        saved = state.get("fingerprint", {})
        if saved != self.fingerprint:
            keys = sorted(k for k in set(saved) | set(self.fingerprint) if saved.get(k) != self.fingerprint.get(k))
            for k in keys:  # every difference on its own line; the error's one line names the first three
                log.warning("option %s differs from the interrupted run: %r then, %r now", k, saved.get(k),
                            self.fingerprint.get(k))
            detail = ", ".join(f"{k}: {saved.get(k)!r} then, {self.fingerprint.get(k)!r} now" for k in keys[:3])
            raise ConfigError(f"the checkpoint in {str(self.directory)!r} was written by a different run ({detail}); "
                              "rerun with the same options, or without --resume to start afresh")
        trainer.load_state_dict(state["trainer"])
        self.resumed_epoch = trainer.epoch
        total = sum(s.epochs for s in trainer.stages)
        log.warning("resuming from epoch %d of %d (the first %d restored from %s)", trainer.epoch + 1, total,
                    trainer.epoch, self.directory)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if not self.write:
            return
        save_state(self.directory, {"fingerprint": self.fingerprint, "trainer": trainer.state_dict()},
                   tag=f"e{trainer.epoch:04d}")

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.write and not self.keep:
            clear_state(self.directory)


class ProgressBar(Callback):
    """A tqdm bar per epoch on stderr (hidden when stderr is not a terminal, see ``transferkit._utils.progress``)."""

    order = 90

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def on_epoch_start(self, trainer: Trainer) -> None:
        s = trainer.stage
        self.bar = progress(total=len(trainer.stage_train), enabled=self.enabled,
                            desc=f"{s.name} {trainer.epoch_in_stage + 1}/{s.epochs}")

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if "loss" in output.metrics:
                self.bar.set_postfix(loss=f"{output.metrics['loss']:.3f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        self.teardown(trainer)

    def teardown(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochLogger(Callback):
    """One line per epoch through ``say`` (e.g. ``fine-tune 3/10: train loss 0.412 acc 0.861 | val ...``)."""

    order = 95

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        s = trainer.stage
        parts = [f"{s.name} {trainer.epoch_in_stage}/{s.epochs}:"]
        for split in ("train", "val"):
            vals = [f"{k[len(split) + 1:]} {v:.3f}" for k, v in logs.items() if k.startswith(f"{split}_")]
            if vals:
                parts.append(f"{split} " + " ".join(vals))
        parts.append(f"({logs.get('time_s', 0):.1f} s{', stopping early' if logs.get('stopped_early') else ''})")
        self.say(" ".join(parts))


def _batchnorms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class FreezeUnfreeze(Callback):
    """Which blocks of the pretrained base train, stage by stage (Lightning's ``BaseFinetuning`` hooks:
    freeze before training, unfreeze at the start of a stage or epoch).

    Args:
        base: the pretrained part of the model; parameters outside it (the new head) always train.
        blocks: ``(name, module)`` pairs of the base, ordered from input to output.
        unfreeze: per stage, how many of the top blocks train (0: none; ``len(blocks)``: all). A stage
            beyond the list uses the last entry.
        gradual: in a stage that unfreezes more blocks than the previous one, start with one more block
            and unfreeze one further block each epoch (ULMFiT's gradual unfreezing).
        train_bn: train the base's BatchNorm layers — running statistics and affine parameters — in every
            stage (fastai's default). Off by default: they stay in inference mode and their statistics never
            move, which is what small datasets need.

    Frozen blocks also run in inference mode (no dropout), so a frozen base computes exactly the features
    of feature extraction.
    """

    order = 10

    def __init__(self, base: nn.Module, blocks: Sequence[tuple[str, nn.Module]], unfreeze: Sequence[int], *,
                 gradual: bool = False, train_bn: bool = False) -> None:
        self.base = base
        self.blocks = list(blocks)
        self.unfreeze = [int(n) for n in unfreeze] or [0]
        for n in self.unfreeze:
            if not 0 <= n <= len(self.blocks):
                raise ConfigError(f"cannot unfreeze {n} blocks: the base has {len(self.blocks)} "
                                  f"({', '.join(name for name, _ in self.blocks)})")
        self.gradual, self.train_bn = gradual, train_bn

    def n_trainable(self, stage_index: int, epoch_in_stage: int) -> int:
        """How many top blocks train in epoch ``epoch_in_stage`` (0-based) of stage ``stage_index``."""
        n = self.unfreeze[min(stage_index, len(self.unfreeze) - 1)]
        if self.gradual and stage_index > 0:
            before = self.unfreeze[min(stage_index - 1, len(self.unfreeze) - 1)]
            if n > before:
                n = min(n, before + 1 + epoch_in_stage)
        return n

    def trainable_blocks(self, trainer: Trainer) -> list[tuple[str, nn.Module]]:
        n = self.n_trainable(trainer.stage_index, trainer.epoch_in_stage)
        return self.blocks[len(self.blocks) - n:] if n else []

    def _apply_grad_flags(self, trainer: Trainer) -> None:
        self.base.requires_grad_(False)
        for _, block in self.trainable_blocks(trainer):
            block.requires_grad_(True)
        if self.train_bn:
            for bn in _batchnorms(self.base):
                bn.requires_grad_(True)

    def on_fit_start(self, trainer: Trainer) -> None:
        self._apply_grad_flags(trainer)

    def on_stage_start(self, trainer: Trainer) -> None:
        self._apply_grad_flags(trainer)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self._apply_grad_flags(trainer)
        # the loop has just called model.train(): put the frozen parts back in inference mode
        self.base.eval()
        for _, block in self.trainable_blocks(trainer):
            block.train()
        for bn in _batchnorms(self.base):
            bn.train(self.train_bn)
