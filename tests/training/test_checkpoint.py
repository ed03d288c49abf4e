"""Checkpoints: no pickle, atomic, and a killed run resumes to bit-identical weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from transferkit.exceptions import ConfigError
from transferkit.training import (
    Callback,
    Checkpoint,
    EarlyStopping,
    Stage,
    Trainer,
    WeightAverage,
    has_state,
    load_state,
    save_state,
)
from transferkit.training.checkpoint import join_tensors, split_tensors

from .toy import ToyTask, toy_batches


class Killed(Exception):
    pass


class KillAt(Callback):
    """Raise in the middle of epoch ``epoch`` (1-based), after ``after_batches`` batches: a kill between
    checkpoints, so the interrupted epoch is lost and must be redone identically."""

    def __init__(self, epoch: int, after_batches: int = 2) -> None:
        self.epoch, self.after_batches, self.batches = epoch, after_batches, 0

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.batches = 0

    def on_batch_end(self, trainer: Trainer, output) -> None:  # type: ignore[no-untyped-def]
        self.batches += 1
        if trainer.epoch + 1 == self.epoch and self.batches == self.after_batches:
            raise Killed


STAGES = [Stage("head", 3, 0.05), Stage("fine-tune", 4, 0.01, warmup=0.25)]


def _run(ckpt: Path | None, *, resume: bool = False, kill: int | None = None, gradual: bool = True,
         ema: float = 0.0) -> ToyTask:
    task = ToyTask()
    cbs = [task.freeze([0, 1], gradual=gradual), EarlyStopping("val_loss", patience=10)]
    if ema:
        cbs.append(WeightAverage(ema, stages=["fine-tune"]))
    if ckpt is not None:
        cbs.append(Checkpoint(ckpt, {"what": "toy"}, resume=resume, keep=True))
    if kill is not None:
        cbs.append(KillAt(kill))
    Trainer(cbs, seed=3).fit(task, toy_batches(), toy_batches(32, seed=1, shuffle=False), STAGES)
    return task


@pytest.mark.parametrize(("kill_epoch", "ema"), [(2, 0.0), (5, 0.0), (6, 0.9)])  # stage 1, stage 2, stage 2 + EMA
def test_kill_then_resume_ends_with_the_same_weights(tmp_path: Path, kill_epoch: int, ema: float) -> None:
    reference = _run(None, ema=ema)
    with pytest.raises(Killed):
        _run(tmp_path, kill=kill_epoch, ema=ema)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["state"]["trainer"]["position"]["epoch"] == kill_epoch - 1
    resumed = _run(tmp_path, resume=True, ema=ema)
    for (name, a), b in zip(reference.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resume_with_different_options_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Killed):
        _run(tmp_path, kill=2)
    task = ToyTask()
    cb = Checkpoint(tmp_path, {"what": "other"}, resume=True)
    with pytest.raises(ConfigError, match=r"was written by a different run \(what: 'toy' then, 'other' now\); rerun with "
                                          r"the same options, or without --resume"):
        Trainer([cb], seed=3).fit(task, toy_batches(), None, STAGES)


def test_resume_without_a_checkpoint_starts_afresh_and_success_removes_it(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    task = ToyTask()
    Trainer([Checkpoint(tmp_path / "c", resume=True)], seed=0).fit(task, toy_batches(), None, [Stage("a", 2, 0.05)])
    assert "no checkpoint" in caplog.text
    assert not (tmp_path / "c").exists()


def test_files_are_safetensors_and_json_and_old_tensor_files_go(tmp_path: Path) -> None:
    with pytest.raises(Killed):
        _run(tmp_path, kill=4)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["state-e0003.safetensors", "state.json"]
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))
    state = load_state(tmp_path)
    assert state["fingerprint"] == {"what": "toy"}
    assert isinstance(state["trainer"]["rng"]["torch"], torch.Tensor)
    assert set(state["trainer"]["optimizer"]) >= {"3.weight", "3.bias"}


def test_split_and_join_round_trip_and_a_torn_write_keeps_the_old_checkpoint(tmp_path: Path) -> None:
    obj = {"a": torch.arange(3), "b": [1, {"c": torch.ones(2, 2)}], "d": "text", "e": None}
    doc, tensors = split_tensors(obj)
    json.dumps(doc)
    back = join_tensors(doc, tensors)
    assert torch.equal(back["a"], obj["a"]) and torch.equal(back["b"][1]["c"], obj["b"][1]["c"]) and back["d"] == "text"

    save_state(tmp_path, {"x": torch.zeros(2), "n": 1}, tag="e0001")
    # a kill after the new tensor file was written but before state.json: the old checkpoint still reads
    (tmp_path / "state-e0002.safetensors").write_bytes(b"partial")
    assert has_state(tmp_path) and load_state(tmp_path)["n"] == 1
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_state(tmp_path)


def test_a_checkpoint_that_does_not_write_only_reads(tmp_path: Path) -> None:
    stages = [Stage("train", 2, 0.05)]
    reader = Checkpoint(tmp_path / "r", {"run": 1}, write=False)
    Trainer([reader], seed=0).fit(ToyTask(seed=0), toy_batches(batch_size=16), None, stages)
    assert not (tmp_path / "r").exists()

    class Stop(Exception):
        pass

    class StopAfterFirstEpoch(Callback):
        order = 200  # after the checkpoint was saved

        def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
            raise Stop

    with pytest.raises(Stop):  # a writer (rank 0) leaves a checkpoint after epoch 1 ...
        Trainer([Checkpoint(tmp_path / "w", {"run": 1}), StopAfterFirstEpoch()], seed=0).fit(
            ToyTask(seed=0), toy_batches(batch_size=16), None, stages)
    reader = Checkpoint(tmp_path / "w", {"run": 1}, resume=True, write=False)
    Trainer([reader], seed=0).fit(ToyTask(seed=0), toy_batches(batch_size=16), None, stages)
    assert reader.resumed_epoch == 1  # ... which a non-writing rank resumes from, and leaves in place
    assert (tmp_path / "w" / "state.json").is_file()
