"""Augmentation: shapes and dtype kept, levels, and never applied outside training batches."""

from __future__ import annotations

import pytest
import torch

from transferkit.data.augment import make_augment
from transferkit.exceptions import ConfigError
from transferkit.training import ItemBatches, stratified_split


def test_levels_keep_shape_and_dtype_and_change_pixels() -> None:
    torch.manual_seed(0)
    img = torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8)
    assert make_augment("none", 40) is None
    for level in ("light", "strong"):
        aug = make_augment(level, 40)
        outs = [aug(img) for _ in range(5)]
        assert all(o.shape == img.shape and o.dtype == torch.uint8 for o in outs)
        assert any(not torch.equal(o, img) for o in outs)


def test_unknown_level_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match=r"augment='strng' is not allowed \(did you mean 'strong'\?\); expected one of none, light, strong"):
        make_augment("strng", 32)


def test_transform_runs_on_training_batches_only() -> None:
    calls = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        calls.append(int(x[0]))
        return x

    items = torch.arange(10).view(10, 1)
    train = ItemBatches(items, torch.zeros(10), lambda b: (torch.stack(b),), batch_size=4, shuffle=True, transform=spy)
    val = ItemBatches(items, torch.zeros(10), lambda b: (torch.stack(b),), batch_size=4, shuffle=False)
    list(val.epoch(0))
    assert calls == []
    list(train.epoch(0))
    assert sorted(calls) == list(range(10))


def test_stratified_split() -> None:
    y = torch.tensor([0] * 20 + [1] * 10).numpy()
    tr, va = stratified_split(y, 0.2, seed=0)
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 30
    assert (y[va] == 0).sum() == 4 and (y[va] == 1).sum() == 2
    with pytest.raises(ConfigError, match="class 1 has 1 items: too few to hold 1 out for validation"):
        stratified_split(y[:21], 0.2, seed=0)
