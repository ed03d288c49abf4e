"""Training batches: a shuffled epoch of length-grouped items pads less, visits every item once, and is
reproducible from (seed, epoch)."""

from __future__ import annotations

import numpy as np
import torch

from transferkit.training import ItemBatches


def _padding(batches: list[list[int]], lengths: np.ndarray) -> int:
    return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)


def test_length_grouped_batches_pad_less_and_cover_every_item_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=1000)
    items = [torch.zeros(int(n), dtype=torch.long) for n in lengths]

    def widths(batch: list[torch.Tensor]) -> tuple[torch.Tensor]:
        return (torch.tensor([len(t) for t in batch]),)

    grouped = ItemBatches(items, np.arange(1000), widths, batch_size=16, shuffle=True, seed=3, lengths=lengths)
    plain = ItemBatches(items, np.arange(1000), widths, batch_size=16, shuffle=True, seed=3)
    seen = [int(i) for _, targets in grouped.epoch(0) for i in targets]
    assert sorted(seen) == list(range(1000))  # every item once
    batches = grouped.length_grouped(torch.Generator().manual_seed(3 * 1_000_003))
    plain_batches = [t.tolist() for _, t in plain.epoch(0)]
    assert _padding(batches, lengths) < 0.2 * _padding(plain_batches, lengths)
    again = [t.tolist() for _, t in grouped.epoch(0)]
    assert again == [t.tolist() for _, t in grouped.epoch(0)]  # same seed and epoch, same batches
    assert again != [t.tolist() for _, t in grouped.epoch(1)]  # another epoch, another order
    longest = [int(lengths[b].max()) for b in batches]
    assert longest != sorted(longest, reverse=True)  # the batches themselves are shuffled, not longest first
