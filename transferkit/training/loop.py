"""The one training loop of transferkit, shared by every strategy that trains a network.

Three ideas, as in Lightning (the loop is engineering, the task is research, callbacks are extras) but
small enough to read in one sitting, as nanoGPT's:

- a :class:`Task` says what one step computes (``training_step``/``validation_step`` return a
  :class:`StepOutput`) and which parameters train (``param_groups``, read from ``requires_grad``);
- a list of :class:`Stage` says how long to train and at which learning rate (warm-up + cosine, or an
  exponential ramp for the LR range test); the learning rate is a pure function of the step within the
  stage, so a resumed run continues the schedule exactly;
- callbacks (``transferkit.training.callbacks``) do everything else through hooks: history, early stopping,
  checkpoints, progress bars, and freezing/unfreezing of blocks between and within stages.

The optimiser is AdamW (or SGD with momentum: ``Trainer(optimizer="sgd")``). It is built at the start of every
stage from ``task.param_groups()`` and extended
(never rebuilt) when a callback unfreezes more parameters mid-stage; its state is saved and restored by
parameter *name*, so a resumed run sees exactly the optimiser state of the uninterrupted one.

Everything random inside :meth:`Trainer.fit` (dropout, augmentation) draws from PyTorch's CPU generator,
forked and seeded from ``seed`` at the start (the caller's random state is left untouched) and saved in
every checkpoint; mini-batch order comes from a generator seeded with ``(seed, epoch)``. With
deterministic kernels switched on for the duration of the fit, two runs with the same seed, or a run that
was killed and resumed, end with bit-identical weights on the same machine.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from ..exceptions import ConfigError
from .callbacks import History
from .types import SCHEDULES, Batches, Stage, Task, TrainingDivergedError

#: the optimisers :class:`Trainer` builds
OPTIMIZERS = ("adamw", "sgd")


class Trainer:
    """Runs stages of mini-batch training of a :class:`Task`, calling callbacks at each hook.

    Args:
        callbacks: objects with any of the hooks ``on_fit_start``, ``on_stage_start``, ``on_epoch_start``,
            ``on_after_backward`` (gradients computed, not yet clipped or applied), ``on_batch_end(trainer, output)``, ``on_epoch_end(trainer, logs)``, ``on_stage_end``,
            ``on_fit_end``, ``teardown``, ``on_validation_start`` (before each epoch's validation pass) and
            ``state_dict``/``load_state_dict`` (see ``Callback``); a
            ``History`` is always added.
        seed: seeds dropout, augmentation and batch order.
        grad_clip: clip the global gradient norm to this value (``None``: no clipping).
        betas: AdamW's.
        optimizer: ``"adamw"`` (default) or ``"sgd"`` (``momentum``, Nesterov when ``nesterov``; the weight decay
            of each group is SGD's L2 penalty there) — e.g. adversarial domain adaptation, whose gradient-reversal
            weight AdamW's per-parameter normalisation would cancel.
        on_divergence: ``"raise"`` a :class:`TrainingDivergedError`, or ``"stop"`` the fit quietly (LR finder).

    During ``fit`` the trainer exposes its position: ``stage_index``, ``stage``, ``epoch`` (epochs done
    in total), ``epoch_in_stage``, ``step``, ``step_in_stage``, and ``stop_stage``/``stop_fit`` flags
    callbacks may set.
    """

    def __init__(self, callbacks: Sequence[Any] = (), *, seed: int = 0, grad_clip: float | None = 1.0,
                 betas: tuple[float, float] = (0.9, 0.999), on_divergence: str = "raise", optimizer: str = "adamw",
                 momentum: float = 0.9, nesterov: bool = True) -> None:
        if on_divergence not in ("raise", "stop"):
            raise ConfigError(f"on_divergence={on_divergence!r} is not allowed; expected 'raise' or 'stop'")
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={optimizer!r} is not allowed; expected one of {', '.join(OPTIMIZERS)}")
        cbs = list(callbacks)
        if not any(isinstance(cb, History) for cb in cbs):
            cbs.insert(0, History())
        self.callbacks = sorted(cbs, key=lambda cb: getattr(cb, "order", 50))
        self.seed = int(seed)
        self.grad_clip = grad_clip
        self.betas = betas
        self.on_divergence = on_divergence
        self.optimizer_name, self.momentum, self.nesterov = optimizer, float(momentum), bool(nesterov)
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending_optimizer_state: dict[str, dict[str, Any]] | None = None

    # -- the loop --------------------------------------------------------------------------------------
    def fit(self, task: Task, train: Batches, val: Batches | None, stages: Sequence[Stage]) -> list[dict[str, Any]]:
        """Train ``task`` through ``stages``; returns the history (one dict per epoch)."""
        self._check_config(task, train, val, stages)
        self.task, self.train_batches, self.val_batches, self.stages = task, train, val, list(stages)
        self.stage_index = self.epoch = self.epoch_in_stage = self.step = self.step_in_stage = 0
        self.stop_stage = self.stop_fit = False
        self.last_lr = stages[0].lr
        self.optimizer = None
        with _deterministic(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            try:
                self._call("on_fit_start")  # a resuming Checkpoint restores the position here
                while self.stage_index < len(self.stages) and not self.stop_fit:
                    self._run_stage()
                self._call("on_fit_end")
            finally:
                self._call("teardown")
        return self.history

    @property
    def stage_task(self) -> Task:
        return self.stage.task if self.stage.task is not None else self.task

    @property
    def stage_train(self) -> Batches:
        return self.stage.train if self.stage.train is not None else self.train_batches

    @property
    def stage_val(self) -> Batches | None:
        return self.stage.val if self.stage.task is not None else self.val_batches

    def _run_stage(self) -> None:
        stage = self.stage
        self._call("on_stage_start")
        while self.epoch_in_stage < stage.epochs and not (self.stop_stage or self.stop_fit):
            t0 = time.perf_counter()
            self.stage_task.model.train()
            self._call("on_epoch_start")  # after train(): callbacks may put frozen parts back in eval mode
            self._sync_optimizer()
            logs = {"epoch": self.epoch + 1, "stage": self.stage_index + 1, "stage_name": stage.name}
            logs.update(self._train_epoch(stage))
            if self.stage_val is not None and not self.stop_fit:
                self._call("on_validation_start")
                logs.update(self._evaluate(self.stage_val))
            logs["time_s"] = round(time.perf_counter() - t0, 3)
            self.epoch += 1
            self.epoch_in_stage += 1
            self._call("on_epoch_end", logs)
        self._call("on_stage_end")
        self.stage_index += 1
        self.epoch_in_stage = self.step_in_stage = 0
        self.stop_stage = False
        self.optimizer = None
        self._pending_optimizer_state = None

    def _train_epoch(self, stage: Stage) -> dict[str, float]:
        total = stage.epochs * len(self.stage_train)
        sums: dict[str, float] = {}
        count = 0
        assert self.optimizer is not None
        task = self.stage_task
        for batch in self.stage_train.epoch(self.epoch):
            factor = stage.lr_factor(self.step_in_stage, total)
            for group in self.optimizer.param_groups:
                group["lr"] = stage.lr * group["lr_scale"] * factor
            out = task.training_step(batch)
            if not math.isfinite(float(out.loss.detach())):
                if self.on_divergence == "stop":
                    self.stop_fit = True
                    break
                raise TrainingDivergedError(
                    f"training diverged in stage {stage.name!r}, epoch {self.epoch + 1} (loss is "
                    f"{float(out.loss.detach())}); lower the learning rate (lr={stage.lr:g} now) or run "
                    "`transferkit lr-find` to choose one")
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self._call("on_after_backward")  # data-parallel gradient averaging (training.distributed)
            if self.grad_clip:
                params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            self.optimizer.step()
            self.step += 1
            self.step_in_stage += 1
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * out.n
            count += out.n
            self.last_lr = stage.lr * factor
            self._call("on_batch_end", out)
            if self.stop_fit:
                break
        logs = {f"train_{k}": v / max(count, 1) for k, v in sums.items()}
        logs["lr"] = self.last_lr
        return logs

    @torch.no_grad()
    def _evaluate(self, batches: Batches) -> dict[str, float]:
        task = self.stage_task
        task.model.eval()
        sums: dict[str, float] = {}
        count = 0
        for batch in batches.epoch(0):
            out = task.validation_step(batch)
            for k, v in out.metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v) * out.n
            count += out.n
        return {f"val_{k}": v / max(count, 1) for k, v in sums.items()}

    # -- optimiser -------------------------------------------------------------------------------------
    def _sync_optimizer(self) -> None:
        """Build the optimiser for the trainable parameters, or add groups for parameters unfrozen since."""
        known = set() if self.optimizer is None else {id(p) for g in self.optimizer.param_groups for p in g["params"]}
        new_groups = []
        for g in self.stage_task.param_groups():
            pairs = [(n, p) for n, p in g["params"] if p.requires_grad and id(p) not in known]
            if pairs:
                new_groups.append({"params": [p for _, p in pairs], "tk_names": [n for n, _ in pairs],
                                   "tk_group": g["name"], "lr_scale": float(g.get("lr_scale", 1.0)),
                                   "weight_decay": float(g.get("weight_decay", 0.0)), "lr": 0.0})
        if self.optimizer is None:
            if not new_groups:
                raise ConfigError(f"stage {self.stage.name!r} has no trainable parameters; unfreeze some blocks "
                                  "or give the stage 0 epochs")
            if self.optimizer_name == "sgd":
                self.optimizer = torch.optim.SGD(new_groups, lr=0.0, momentum=self.momentum,
                                                 nesterov=self.nesterov and self.momentum > 0)
            else:
                self.optimizer = torch.optim.AdamW(new_groups, lr=0.0, betas=self.betas)
        else:
            for g in new_groups:
                self.optimizer.add_param_group(g)
        if self._pending_optimizer_state is not None:
            for g in self.optimizer.param_groups:
                for name, p in zip(g["tk_names"], g["params"], strict=True):
                    saved = self._pending_optimizer_state.get(name)
                    if saved is not None:
                        self.optimizer.state[p] = {k: v.clone() if isinstance(v, torch.Tensor) else v
                                                   for k, v in saved.items()}
            self._pending_optimizer_state = None

    def _optimizer_state(self) -> dict[str, dict[str, Any]]:
        if self.optimizer is None:
            return {}
        out = {}
        for g in self.optimizer.param_groups:
            for name, p in zip(g["tk_names"], g["params"], strict=True):
                if p in self.optimizer.state and self.optimizer.state[p]:
                    out[name] = dict(self.optimizer.state[p])
        return out

    # -- state (checkpoints) ---------------------------------------------------------------------------
    _POSITION = ("stage_index", "epoch", "epoch_in_stage", "step", "step_in_stage", "stop_stage")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this fit exactly: position, weights, optimiser, RNG, callbacks."""
        return {
            "position": {k: getattr(self, k) for k in self._POSITION},
            "model": dict(self.task.model.state_dict()),
            "optimizer": self._optimizer_state(),
            "rng": {"torch": torch.get_rng_state()},
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if hasattr(cb, "state_dict")},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self._POSITION:
            setattr(self, k, type(getattr(self, k))(state["position"][k]))
        self.task.model.load_state_dict(state["model"], strict=True)
        self._pending_optimizer_state = state["optimizer"] if self.epoch_in_stage > 0 else None
        torch.set_rng_state(state["rng"]["torch"])
        saved = state.get("callbacks", {})
        for cb in self.callbacks:
            if hasattr(cb, "load_state_dict") and type(cb).__name__ in saved:
                cb.load_state_dict(saved[type(cb).__name__])

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def stage(self) -> Stage:
        return self.stages[min(self.stage_index, len(self.stages) - 1)]

    @property
    def history(self) -> list[dict[str, Any]]:
        return next(cb for cb in self.callbacks if isinstance(cb, History)).epochs

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def _check_config(self, task: Task, train: Batches, val: Batches | None, stages: Sequence[Stage]) -> None:
        """Fail before the first batch, with the value to change (Lightning's configuration validator)."""
        if not stages:
            raise ConfigError("no training stages given; pass at least one Stage(name, epochs, lr)")
        for s in stages:
            if not isinstance(s.epochs, int) or s.epochs < 0:
                raise ConfigError(f"stage {s.name!r}: epochs={s.epochs!r} is not allowed; expected an integer >= 0")
            if not (isinstance(s.lr, (int, float)) and math.isfinite(s.lr) and s.lr > 0):
                raise ConfigError(f"stage {s.name!r}: lr={s.lr!r} is not allowed; expected a positive number such as 1e-3")
            if not 0.0 <= s.warmup < 1.0:
                raise ConfigError(f"stage {s.name!r}: warmup={s.warmup!r} is not allowed; expected a fraction in [0, 1)")
            if s.schedule not in SCHEDULES:
                raise ConfigError(f"stage {s.name!r}: schedule={s.schedule!r} is not allowed; expected one of "
                                  f"{', '.join(map(repr, SCHEDULES))}")
        if len(train) == 0 or any(s.train is not None and len(s.train) == 0 for s in stages):
            raise ConfigError("the training data has no batches; pass at least one labelled item")
        if val is not None and len(val) == 0:
            raise ConfigError("the validation data has no batches; pass val=None to train without validation")
        if not isinstance(task.model, nn.Module):
            raise ConfigError(f"task.model must be a torch.nn.Module, got {type(task.model).__name__}")


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels for the duration of a fit (restored afterwards)."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)
