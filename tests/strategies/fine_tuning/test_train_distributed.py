"""Data-parallel fine-tuning (``transferkit fit --nproc N`` / any fit under ``torchrun``): the estimator and
``fine_tune`` join the process group torchrun describes, two gloo processes give one process's model, only
rank 0 writes the checkpoint, and a killed 2-process run resumes to the uninterrupted run's weights."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from tests.conftest import make_images, register_tiny_backbone
from transferkit import TransferClassifier
from transferkit.backbones import load_backbone
from transferkit.strategies.fine_tuning import FineTuneConfig, fine_tune
from transferkit.training import Callback, Trainer
from transferkit.training.distributed import leave, world

# no dropout and no augmentation: those draw per-rank random numbers, the one thing that may differ
PARAMS = {"epochs": 4, "head_epochs": 3, "lr": 0.03, "batch_size": 16, "augment": "none",
          "fine_tune_params": {"dropout": 0.0}}


class Killed(Exception):
    pass


class KillAt(Callback):
    def on_batch_end(self, trainer: Trainer, output: Any) -> None:
        if trainer.stage_index == 1 and trainer.epoch_in_stage == 1:  # in stage 2's second epoch
            raise Killed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _estimator(tiny: str) -> tuple[np.ndarray, dict[str, Any]]:
    X, y = make_images(20)
    clf = TransferClassifier(tiny, strategy="fine-tune", progress=False, random_state=0, **PARAMS).fit(X, y)
    Xt, _ = make_images(5, seed=7)
    return clf.predict_proba(Xt), clf.history_


def _config() -> FineTuneConfig:
    return FineTuneConfig(epochs=4, head_epochs=3, lr=0.03, batch_size=16, augment="none", dropout=0.0)


def _worker(rank: int, size: int, port: int, weights: str, out: str, mode: str) -> None:
    # what torchrun sets for each process it starts
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(size)})
    torch.set_num_threads(1)
    tiny = register_tiny_backbone(Path(weights))
    try:
        if mode == "estimator":
            proba, history = _estimator(tiny)
            assert world() == (rank, size)  # the estimator's fit joined the group
            np.save(f"{out}.{rank}.npy", proba)
            Path(f"{out}.{rank}.json").write_text(json.dumps(history, default=str))
            return
        X, y = make_images(20)
        ckpt = Path(out).parent / "ckpt"
        kw: dict[str, Any] = {"checkpoint_dir": ckpt, "progress": False}
        if mode == "kill":
            try:
                fine_tune(load_backbone(tiny), X, y, 3, _config(), callbacks=[KillAt()], **kw)
            except Killed:
                return
            raise AssertionError("the run was not killed")
        result = fine_tune(load_backbone(tiny), X, y, 3, _config(), resume=mode == "resume", **kw)
        torch.save({k: v.detach().clone() for k, v in result.backbone.model.state_dict().items()},
                   f"{out}.{rank}.pt")
        Path(f"{out}.{rank}.json").write_text(json.dumps({"resumed": result.resumed_epoch}))
    finally:
        leave()


def _spawn(tmp_path: Path, weights: Path, name: str, mode: str) -> str:
    out = str(tmp_path / name)
    mp.spawn(_worker, args=(2, _free_port(), str(weights), out, mode), nprocs=2, join=True)
    return out


def test_estimator_in_two_processes_gives_the_model_of_one(tiny_backbone: str, tiny_weights: Path,
                                                           tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single, history = _estimator(tiny_backbone)
    finally:
        torch.set_num_threads(before)
    out = _spawn(tmp_path, tiny_weights, "est", "estimator")
    ranks = [np.load(f"{out}.{r}.npy") for r in range(2)]
    np.testing.assert_array_equal(ranks[0], ranks[1])  # the replicas stayed identical
    np.testing.assert_allclose(ranks[0], single, atol=1e-4)
    h2 = json.loads(Path(f"{out}.0.json").read_text())
    assert history["processes"] == 1 and h2["processes"] == 2
    # the epoch losses are the mean over both ranks' shares: the single process's figures
    np.testing.assert_allclose([e["train_loss"] for e in h2["epochs"]],
                               [e["train_loss"] for e in history["epochs"]], rtol=1e-4)
    assert history["epochs"][-1]["train_loss"] < 0.7 * history["epochs"][0]["train_loss"]  # it learnt


def test_killed_two_process_run_resumes_to_the_uninterrupted_weights(tiny_backbone: str, tiny_weights: Path,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    reference = _spawn(tmp_path / "a", tiny_weights, "ref", "plain")
    assert not (tmp_path / "a" / "ckpt").exists()  # removed by rank 0 after success
    (tmp_path / "b").mkdir()
    _spawn(tmp_path / "b", tiny_weights, "run", "kill")
    assert (tmp_path / "b" / "ckpt" / "state.json").is_file()  # rank 0 wrote it
    resumed = _spawn(tmp_path / "b", tiny_weights, "run", "resume")
    epochs = [json.loads(Path(f"{resumed}.{r}.json").read_text())["resumed"] for r in range(2)]
    assert epochs[0] == epochs[1] and epochs[0] >= 2  # both ranks resumed from rank 0's checkpoint, in stage 2
    ref, res = (torch.load(f"{reference}.0.pt", weights_only=True),
                [torch.load(f"{resumed}.{r}.pt", weights_only=True) for r in range(2)])
    for name, value in ref.items():
        assert torch.equal(value, res[0][name]) and torch.equal(res[0][name], res[1][name]), name

