"""Mini-batches of in-memory items for the training loop, and the stratified validation split.

:class:`ItemBatches` wraps a list of per-item inputs and integer targets in a PyTorch ``DataLoader``
(in-process, ``num_workers=0``: on two cores extra processes only compete with the network for them). The
order of each epoch comes from a generator seeded with ``(seed, epoch)``, so it does not depend on what
ran before; a per-item ``transform`` (training augmentation) is applied on the fly, in the main process,
so it draws from the trainer's seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..exceptions import ConfigError


class _Items(Dataset):
    def __init__(self, inputs: Sequence[Any], targets: torch.Tensor, transform: Callable[[Any], Any] | None) -> None:
        self.inputs, self.targets, self.transform = inputs, targets, transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Any, torch.Tensor]:
        x = self.inputs[i]
        return (self.transform(x) if self.transform is not None else x), self.targets[i]


class ItemBatches:
    """Batches ``((inputs...), targets)`` over items.

    Args:
        inputs: one entry per item (e.g. a uint8 ``(H, W, 3)`` tensor, or a 1-D tensor of token ids), or a
            tensor whose first axis is the item.
        targets: ``(N, ...)``: integer class indices (kept as int64), or floats (multi-label indicators,
            regression values; kept as float32).
        collate: list of per-item inputs → tuple of batch tensors (the model's positional inputs).
        batch_size: items per batch.
        shuffle: reshuffle every epoch (training); ``False`` keeps the order (validation, prediction).
        seed: seeds the shuffling, together with the epoch number.
        transform: per-item function applied on the fly (training augmentation only).
        lengths: each item's length (e.g. tokens), for items padded per batch: a shuffled epoch then groups
            items of similar length into batches, as the ``group_by_length`` sampler of transformers'
            Trainer does (shuffle, cut into groups of 50 batches, sort each group by length, cut into
            batches, shuffle the batches), so less of every batch is padding.
    """

    #: batches per group sorted by length (transformers' ``LengthGroupedSampler`` uses 50)
    GROUP_BATCHES = 50

    def __init__(self, inputs: Sequence[Any] | torch.Tensor, targets: Any, collate: Callable[[list[Any]], tuple],
                 *, batch_size: int, shuffle: bool, seed: int = 0,
                 transform: Callable[[Any], Any] | None = None, lengths: Sequence[int] | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} is not allowed; expected an integer >= 1")
        self.inputs = inputs
        arr = np.asarray(targets)
        self.targets = torch.as_tensor(arr, dtype=torch.float32 if arr.dtype.kind == "f" else torch.long)
        if len(self.inputs) != len(self.targets):
            raise ConfigError(f"{len(self.inputs)} inputs but {len(self.targets)} targets; they must match")
        self.collate, self.batch_size, self.shuffle, self.seed = collate, int(batch_size), shuffle, int(seed)
        self.transform = transform
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        if self.lengths is not None and len(self.lengths) != len(self.targets):
            raise ConfigError(f"{len(self.lengths)} lengths but {len(self.targets)} items; they must match")

    def __len__(self) -> int:
        return -(-len(self.targets) // self.batch_size)

    def _collate(self, pairs: list[tuple[Any, torch.Tensor]]) -> tuple[tuple, torch.Tensor]:
        return self.collate([x for x, _ in pairs]), torch.stack([t for _, t in pairs])

    def epoch(self, epoch: int) -> Iterator[tuple[tuple, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(epoch))
        items = _Items(self.inputs, self.targets, self.transform)
        if self.lengths is not None and self.shuffle:
            loader = DataLoader(items, batch_sampler=self.length_grouped(generator), collate_fn=self._collate,
                                num_workers=0)
        else:
            loader = DataLoader(items, batch_size=self.batch_size, shuffle=self.shuffle, generator=generator,
                                collate_fn=self._collate, num_workers=0)
        return iter(loader)

    def length_grouped(self, generator: torch.Generator) -> list[list[int]]:
        """One epoch's batches of item indices, items of similar length together (see ``lengths``)."""
        assert self.lengths is not None
        order = torch.randperm(len(self.lengths), generator=generator).numpy()
        group = self.batch_size * self.GROUP_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), group):
            chunk = order[start : start + group]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[s : s + self.batch_size].tolist() for s in range(0, len(chunk), self.batch_size)]
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]


def stratified_split(y: np.ndarray, fraction: float, seed: int,
                     min_per_class: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)``: ``fraction`` of every class held out (at least ``min_per_class``).

    Raises :class:`ConfigError` when a class has too few items to give one away and keep one.
    """
    y = np.asarray(y)
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation_fraction={fraction!r} is not allowed; expected a number in (0, 1), e.g. 0.1")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(min_per_class, int(round(fraction * len(idx))))
        if len(idx) - k < 1:
            raise ConfigError(f"class {c.item()!r} has {len(idx)} items: too few to hold {k} out for validation; "
                              "add items or set validation_fraction=0")
        val_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))
