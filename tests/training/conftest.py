"""Training tests run tiny networks: one thread is faster for them than two, and immune to other jobs
competing for the cores (OpenMP threads spin-wait under contention)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
