"""The network's fixed standardisation: fitted from the training features, guarded against degenerate columns."""

from __future__ import annotations

import torch

from transferkit.strategies.fine_tuning.model import Standardize


def test_standardize_fits_mean_and_std_and_keeps_degenerate_columns_at_one() -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(50, 3, generator=g) * torch.tensor([2.0, 0.5, 0.0]) + torch.tensor([1.0, -3.0, 7.0])
    s = Standardize(3)
    s.fit_(f)
    torch.testing.assert_close(s.mean, f.mean(0))
    torch.testing.assert_close(s.scale[:2], f.std(0)[:2])
    assert s.scale[2] == 1.0  # a constant feature is centred, not divided by ~0
    out = s(f)
    torch.testing.assert_close(out[:, :2].std(0), torch.ones(2))

    one = Standardize(3)
    one.fit_(f[:1])  # one item: no spread to measure
    torch.testing.assert_close(one.scale, torch.ones(3))
    torch.testing.assert_close(one.mean, f[0])
