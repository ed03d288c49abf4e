"""The learning-rate range test (Smith, 2015): train with an exponentially growing rate, watch the loss.

:func:`lr_range_test` runs the ordinary training loop for at most ``num_it`` steps with the learning rate
ramping from ``start_lr`` to ``end_lr``, records the loss after every step, smooths it (exponential moving
average with bias correction) and stops once the smoothed loss exceeds ``diverge`` × its minimum. The
weights it trained are thrown away by the caller (it trains a copy).

Suggestions, on the smoothed curve after its first 10 % (where the average is still settling):

- ``steepest``: the rate where the loss falls fastest against log(rate), searched before the minimum;
- ``valley``: a tenth of the rate at the minimum (the loss is still falling there, with room to spare);
- ``suggestion``: ``steepest`` when it lies within two decades below the minimum, else ``valley``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ConfigError
from .loop import Trainer
from .types import Batches, Callback, Stage, StepOutput, Task


@dataclass
class LRFinderResult:
    """Learning rates and losses of a range test, with the suggested rates."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    steepest: float | None
    valley: float
    lr_at_minimum: float
    diverged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def plot(self, path: str | os.PathLike[str], title: str = "Learning-rate range test") -> Path:
        """Write a PNG of loss against learning rate (log scale) with the suggestions marked."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from .._utils import atomic_path

        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
        try:
            ax.plot(self.lrs, self.losses, color="#9aa5b1", linewidth=1.0, label="loss per step")
            ax.plot(self.lrs, self.smoothed, color="#1f5fa8", linewidth=2.0, label="smoothed")
            marks = [("suggestion", self.suggestion, "#d1495b", "o")]
            if self.steepest is not None and self.steepest != self.suggestion:
                marks.append(("steepest", self.steepest, "#edae49", "s"))
            if self.valley != self.suggestion:
                marks.append(("valley", self.valley, "#00798c", "^"))
            for name, lr, colour, marker in marks:
                y = float(np.interp(math.log(lr), np.log(self.lrs), self.smoothed))
                ax.plot([lr], [y], marker=marker, color=colour, markersize=8, linestyle="none",
                        label=f"{name}: {lr:.2g}")
            ax.set_xscale("log")
            ax.set_xlabel("learning rate")
            ax.set_ylabel("training loss")
            finite = np.asarray(self.smoothed)[np.isfinite(self.smoothed)]
            if finite.size:
                lo, hi = float(finite.min()), float(finite[0])
                ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), max(hi, lo) + 0.6 * (hi - lo + 1e-9))
            ax.set_title(title)
            ax.grid(color="#e4e7eb", linewidth=0.8)
            ax.legend(loc="upper left", fontsize=8)
            fig.tight_layout()
            path = Path(path)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png")
        finally:
            plt.close(fig)
        return path


class LRRangeTest(Callback):
    """Records (rate, loss) after every step and stops the fit after ``num_it`` steps or on divergence."""

    order = 20

    def __init__(self, num_it: int, beta: float = 0.98, diverge: float = 4.0) -> None:
        self.num_it, self.beta, self.diverge = num_it, beta, diverge
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.diverged = False
        self._avg = 0.0

    def on_batch_end(self, trainer: Trainer, output: StepOutput) -> None:
        loss = float(output.loss.detach())
        self._avg = self.beta * self._avg + (1 - self.beta) * loss
        smooth = self._avg / (1 - self.beta ** (len(self.losses) + 1))
        self.lrs.append(float(trainer.last_lr))
        self.losses.append(loss)
        self.smoothed.append(smooth)
        best = min(self.smoothed)
        if not math.isfinite(smooth) or (len(self.smoothed) > 5 and smooth > self.diverge * best):
            self.diverged = True
            trainer.stop_fit = True
        elif len(self.losses) >= self.num_it:
            trainer.stop_fit = True


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float, float | None, float, float]:
    """``(suggestion, steepest, valley, lr_at_minimum)`` from a smoothed range-test curve."""
    lr = np.asarray(lrs, dtype=np.float64)
    sm = np.asarray(smoothed, dtype=np.float64)
    ok = np.isfinite(sm)
    lr, sm = lr[ok], sm[ok]
    if lr.size < 3:
        raise ConfigError("the range test recorded fewer than 3 finite losses; lower start_lr or raise num_it")
    skip = lr.size // 10
    i_min = skip + int(np.argmin(sm[skip:]))
    lr_min = float(lr[i_min])
    valley = lr_min / 10.0
    steepest = None
    if i_min - skip >= 2:
        seg = slice(skip, i_min + 1)
        grads = np.gradient(sm[seg], np.log(lr[seg]))
        steepest = float(lr[skip + int(np.argmin(grads))])
    suggestion = steepest if steepest is not None and lr_min / 100.0 <= steepest <= lr_min else valley
    return suggestion, steepest, valley, lr_min


def lr_range_test(task: Task, train: Batches, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
                  seed: int = 0, callbacks: Sequence[Any] = ()) -> LRFinderResult:
    """Run the range test on ``task`` (its parameters are trained: pass a copy you can throw away)."""
    if not (0 < start_lr < end_lr):
        raise ConfigError(f"start_lr={start_lr!r} and end_lr={end_lr!r} are not allowed; expected "
                          "0 < start_lr < end_lr, e.g. 1e-7 and 10")
    if not isinstance(num_it, int) or num_it < 6:
        raise ConfigError(f"num_it={num_it!r} is not allowed; expected an integer >= 6 (typical: 100)")
    recorder = LRRangeTest(num_it)
    epochs = math.ceil(num_it / max(1, len(train)))
    stage = Stage("lr-find", epochs, start_lr, schedule="exponential", end_factor=end_lr / start_lr, steps=num_it)
    Trainer([recorder, *callbacks], seed=seed, grad_clip=None, on_divergence="stop").fit(task, train, None, [stage])
    suggestion, steepest, valley, lr_min = suggest(recorder.lrs, recorder.smoothed)
    return LRFinderResult(recorder.lrs, recorder.losses, recorder.smoothed, suggestion, steepest, valley, lr_min,
                          recorder.diverged)
