"""Training tests run tiny networks on one torch thread (``one_torch_thread`` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test in tests/training runs on one torch thread."""
