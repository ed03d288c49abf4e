"""The learning-rate range test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferkit.exceptions import ConfigError
from transferkit.training import lr_range_test, suggest

from .toy import ToyTask, toy_batches, toy_data


def test_suggestions_on_a_textbook_curve() -> None:
    lrs = np.logspace(-6, 1, 80)
    x = np.log10(lrs)
    loss = 1.0 / (1.0 + np.exp(3.0 * (x + 2.5))) + 0.2 + np.where(x > -0.5, (x + 0.5) ** 2 * 3, 0.0)
    suggestion, steepest, valley, lr_min = suggest(lrs, loss)
    assert steepest == pytest.approx(10 ** -2.5, rel=0.25)  # the inflection of the falling part
    assert suggestion == steepest
    assert 10 ** -1.5 < lr_min < 10 ** -0.2 and valley == pytest.approx(lr_min / 10)


def test_range_test_stops_on_divergence_and_plots(tmp_path: Path) -> None:
    task = ToyTask(dropout=0.0)
    result = lr_range_test(task, toy_batches(), start_lr=1e-5, end_lr=100.0, num_it=60)
    assert result.diverged and len(result.lrs) < 60
    assert all(b > a for a, b in zip(result.lrs, result.lrs[1:], strict=False))
    assert math.isfinite(result.suggestion) and result.lr_at_minimum / 100 <= result.suggestion <= result.lr_at_minimum
    path = result.plot(tmp_path / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the suggestion is a good rate: AdamW at it beats a hundredth of it and ten times it on held-out data
    at = _held_out_loss_after_training(result.suggestion)
    assert at < 0.5 * _held_out_loss_after_training(result.suggestion / 100)
    assert at < 0.5 * _held_out_loss_after_training(result.suggestion * 10)


def _held_out_loss_after_training(lr: float, steps: int = 30) -> float:
    """A fresh toy model trained by a plain AdamW loop at a constant ``lr``; its loss on new data."""
    task = ToyTask(dropout=0.0)
    optimizer = torch.optim.AdamW(task.model.parameters(), lr=lr)
    x, y = toy_data()
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randperm(len(x), generator=g)[:16]
        loss = F.cross_entropy(task.model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x_new, y_new = toy_data(200, seed=1)
    with torch.no_grad():
        return float(F.cross_entropy(task.model(x_new), y_new))


def test_range_test_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="start_lr=1.0 and end_lr=0.1 are not allowed"):
        lr_range_test(ToyTask(), toy_batches(), start_lr=1.0, end_lr=0.1)
    with pytest.raises(ConfigError, match="num_it=3 is not allowed; expected an integer >= 6"):
        lr_range_test(ToyTask(), toy_batches(), num_it=3)
