"""Data-parallel training with torch.distributed (gloo, 2 CPU processes): the same weights as one process
with the same global batch and seed; each rank's share of a global batch is exactly the single process's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.training.toy import ToyTask, toy_batches
from transferkit.exceptions import ConfigError
from transferkit.training import Stage, Trainer
from transferkit.training.distributed import GradientSync, RankBatches, is_main, leave, world

GLOBAL_BATCH = 16
STAGES = [Stage("train", 4, 0.05, warmup=0.1)]


def _train(world_size: int, rank: int) -> dict[str, torch.Tensor]:
    task = ToyTask(seed=rank * 7, dropout=0.0)  # ranks start from different weights: rank 0's are broadcast
    if world_size == 1:
        task = ToyTask(seed=0, dropout=0.0)
    batches = RankBatches(toy_batches(batch_size=GLOBAL_BATCH), rank, world_size)
    Trainer([GradientSync()], seed=0).fit(task, batches, None, STAGES)
    return {k: v.detach().clone() for k, v in task.model.state_dict().items()}


def _worker(rank: int, world_size: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        state = _train(world_size, rank)
        torch.save(state, f"{out}.{rank}")  # plain tensors, read back with weights_only=True
        assert world() == (rank, world_size) and is_main() == (rank == 0)
    except BaseException:
        dist.destroy_process_group()
        raise
    leave()  # barrier + destroy: the library's collective teardown


def test_two_gloo_processes_give_the_weights_of_one(tmp_path: Path) -> None:
    single = _train(1, 0)
    out = str(tmp_path / "state")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    for name, value in single.items():
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)  # replicas stay identical
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-5, atol=1e-6)
    moved = max(float((single[k] - ToyTask(seed=0).model.state_dict()[k]).abs().max()) for k in single)
    assert moved > 1e-2  # it trained


def test_rank_shares_make_up_the_single_process_batches() -> None:
    batches = toy_batches(batch_size=GLOBAL_BATCH)
    for epoch in (0, 3):
        whole = [x for (x,), _ in batches.epoch(epoch)]
        shares = [[x for (x,), _ in RankBatches(batches, r, 2).epoch(epoch)] for r in range(2)]
        assert len(RankBatches(batches, 0, 2)) == len(batches) == len(whole)
        for k, batch in enumerate(whole):
            union = torch.cat([shares[0][k], shares[1][k]])
            assert sorted(map(tuple, union.tolist())) == sorted(map(tuple, batch.tolist()))


def test_global_batch_must_divide_by_the_process_count() -> None:
    with pytest.raises(ConfigError, match="not divisible by 3 processes"):
        RankBatches(toy_batches(batch_size=16), 0, 3)


