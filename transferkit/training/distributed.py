"""Data-parallel training over several processes with ``torch.distributed`` (gloo on CPU, NCCL on GPUs).

The :class:`~transferkit.training.loop.Trainer` runs unchanged in every process (launched by ``torchrun``,
which sets ``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT``); two pieces make the processes
one training run:

- :class:`RankBatches` gives each rank its share of every *global* batch (:class:`GlobalBatchSampler`, seeded
  like the single-process loader): with ``world`` processes and global batch ``B`` each rank takes ``B / world``
  items, and the union of the ranks' k-th batches is exactly the single process's k-th batch, so the global
  batch stays constant whatever ``world`` is.
- :class:`GradientSync` is a callback: at the start of the fit it broadcasts rank 0's parameters (every rank
  starts from the same weights, as DistributedDataParallel does when it wraps a model), and after each
  backward pass it all-reduces the gradients and divides by ``world``: the mean of the ranks' mean losses'
  gradients, which is the gradient of the global batch's mean loss when the shares are equal. The
  optimiser step then runs identically on every rank, so the weights stay identical without broadcasting
  them again. (This is DistributedDataParallel's arithmetic, done on the named parameters the trainer's
  optimiser already holds, so parameter names, freezing and checkpoints are those of the plain model.)

What is not identical to one process: BatchNorm layers in training mode see ``B / world`` items per rank
(use frozen BatchNorm, as transferkit's fine-tuning does for frozen blocks, or accept the difference), and
dropout / augmentation draw from per-rank generators. Checkpoints are written by rank 0 only
(:func:`is_main`); every rank reads the same checkpoint to resume.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from ..exceptions import ConfigError
from .data import ItemBatches, _Items
from .types import Callback, TrainerLike


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def leave() -> None:
    """Leave the process group (after the last collective operation of a data-parallel run): a barrier first, so
    no rank tears its connections down while a peer is still using them, then ``destroy_process_group``."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def is_main() -> bool:
    """Whether this process writes checkpoints, models and reports (rank 0, or no process group)."""
    return world()[0] == 0


def init_from_env(backend: str | None = None) -> tuple[int, int]:
    """Join the process group ``torchrun`` describes in the environment (no-op when ``WORLD_SIZE`` is unset
    or 1); gloo on CPU, NCCL when CUDA is available. Returns ``(rank, world_size)``."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise ConfigError("this PyTorch build has no torch.distributed; run with --nproc 1")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend=backend)
    return world()


class RankBatches:
    """This rank's share of every global batch of ``batches`` (an :class:`ItemBatches` of global batch size).

    ``len(self)`` is the number of global steps per epoch, the same on every rank.
    """

    def __init__(self, batches: ItemBatches, rank: int | None = None, world_size: int | None = None) -> None:
        r, w = world()
        self.rank = r if rank is None else int(rank)
        self.world_size = w if world_size is None else int(world_size)
        if batches.batch_size % self.world_size:
            raise ConfigError(f"global batch size {batches.batch_size} is not divisible by {self.world_size} "
                              "processes; pick a batch size that is a multiple of --nproc")
        self.batches = batches
        self.local_batch_size = batches.batch_size // self.world_size

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int) -> Iterator[Any]:
        b = self.batches
        items = _Items(b.inputs, b.targets, b.transform)
        sampler = GlobalBatchSampler(items, b.batch_size, self.rank, self.world_size, shuffle=b.shuffle,
                                     seed=b.seed * 1_000_003 + int(epoch))
        loader = DataLoader(items, batch_size=self.local_batch_size, sampler=sampler, collate_fn=b._collate,
                            num_workers=0)
        return iter(loader)


class GlobalBatchSampler(Sampler[int]):
    """This rank's indices: the single-process order (the ``DataLoader`` :class:`ItemBatches` iterates, with
    its generator seeded ``seed``), cut into global batches of ``batch_size``, each dealt ``rank::world``.

    Unlike ``DistributedSampler``, which deals out the whole epoch first (so the k-th global batch is a
    different set of items than one process's k-th batch), the k-th global batch here is exactly the
    single process's. A last partial batch smaller than ``world`` is padded with its own first items so every
    rank takes the same number of steps (as ``DistributedSampler`` pads).
    """

    def __init__(self, data: Any, batch_size: int, rank: int, world_size: int, *, shuffle: bool, seed: int) -> None:
        self.n, self.batch_size, self.rank, self.world_size = len(data), batch_size, rank, world_size
        self.shuffle, self.seed = shuffle, seed

    def _global_batches(self) -> Iterator[list[int]]:
        # the very loader ItemBatches iterates, over indices: the same generator draws give the same order
        generator = torch.Generator().manual_seed(self.seed)
        yield from DataLoader(range(self.n), batch_size=self.batch_size, shuffle=self.shuffle, generator=generator,
                              collate_fn=list, num_workers=0)

    def __iter__(self) -> Iterator[int]:
        for batch in self._global_batches():
            size = len(batch)
            while len(batch) % self.world_size:
                batch.append(batch[len(batch) % size])
            yield from batch[self.rank :: self.world_size]

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full * (self.batch_size // self.world_size) + -(-rest // self.world_size)


class GradientSync(Callback):
    """Keeps data-parallel replicas identical: broadcast rank 0's weights at the start, average gradients
    after every backward pass (see the module docstring)."""

    order = 5  # before callbacks that read the weights

    def on_fit_start(self, trainer: TrainerLike) -> None:
        if world()[1] == 1:
            return
        with torch.no_grad():
            for tensor in [*trainer.task.model.parameters(), *trainer.task.model.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def on_validation_start(self, trainer: TrainerLike) -> None:
        _sync_buffers(trainer)  # BatchNorm statistics: rank 0's, so every rank validates the same model

    def on_epoch_end(self, trainer: TrainerLike, logs: dict[str, Any]) -> None:
        _, size = world()
        if size == 1:
            return
        _sync_buffers(trainer)  # the checkpoint and the final model hold rank 0's statistics
        keys = sorted(k for k, v in logs.items() if k.startswith("train_") and isinstance(v, float))
        if keys:  # each rank saw an equal share of every batch: the epoch's figure is the mean of the ranks'
            values = torch.tensor([logs[k] for k in keys], dtype=torch.float64)
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
            logs.update({k: float(v) / size for k, v in zip(keys, values.tolist(), strict=True)})

    def on_after_backward(self, trainer: TrainerLike) -> None:
        _, size = world()
        if size == 1:
            return
        assert trainer.optimizer is not None
        # every rank runs the same graph, so the same parameters have gradients on every rank
        grads = [p.grad for group in trainer.optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one all-reduce per step, as DDP's buckets
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()



def _sync_buffers(trainer: TrainerLike) -> None:
    """Broadcast rank 0's buffers (BatchNorm running statistics), as DistributedDataParallel does with
    ``broadcast_buffers``: each rank updates them from its own share of the batch, so without this the
    replicas would validate, stop early and save different models."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for tensor in trainer.task.model.buffers():
            dist.broadcast(tensor.data, src=0)


def shard(batches: Any) -> Any:
    """``batches`` as this rank's :class:`RankBatches` in a multi-process run, unchanged otherwise."""
    return RankBatches(batches) if world()[1] > 1 and isinstance(batches, ItemBatches) else batches


def torchrun_command(nproc: int, args: list[str], module: str = "transferkit") -> list[str]:
    """The command that runs ``python -m module *args`` in ``nproc`` processes on this machine through
    ``torchrun`` (``torch.distributed.run --standalone``: a local rendezvous on a free port)."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
            "-m", module, *args]


def threads_per_process(nproc: int) -> int:
    """Intra-op threads for each of ``nproc`` processes sharing this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, int(nproc)))
