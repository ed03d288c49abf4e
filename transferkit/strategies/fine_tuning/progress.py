"""Per-epoch progress lines of training runs on stderr."""

from __future__ import annotations

import os
import sys


def stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def lines_enabled(progress: bool) -> bool:
    """Epoch lines are printed with progress on, unless ``TRANSFERKIT_PROGRESS=0``."""
    return progress and os.environ.get("TRANSFERKIT_PROGRESS") != "0"
