"""A resumed run says so ("resuming from epoch 3 of 7"); a refused resume lists every differing option."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from transferkit.exceptions import ConfigError
from transferkit.training import Checkpoint, Trainer

from .test_checkpoint import STAGES, Killed, ToyTask, _run, toy_batches


def test_a_resumed_run_says_where_it_resumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(Killed):
        _run(tmp_path, kill=3)  # killed during epoch 3: epochs 1-2 are in the checkpoint
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        _run(tmp_path, resume=True)
    assert f"resuming from epoch 3 of 7 (the first 2 restored from {tmp_path})" in caplog.text


def test_a_refused_resume_lists_each_differing_option(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(Killed):
        _run(tmp_path, kill=2)
    cb = Checkpoint(tmp_path, {"what": "other", "lr": 0.1, "epochs": 9}, resume=True)
    with caplog.at_level(logging.WARNING, logger="transferkit"), pytest.raises(ConfigError) as info:
        Trainer([cb], seed=3).fit(ToyTask(), toy_batches(), None, STAGES)
    lines = [r.getMessage() for r in caplog.records if "differs from the interrupted run" in r.getMessage()]
    assert lines == ["option epochs differs from the interrupted run: None then, 9 now",
                     "option lr differs from the interrupted run: None then, 0.1 now",
                     "option what differs from the interrupted run: 'toy' then, 'other' now"]
    assert "\n" not in str(info.value)
