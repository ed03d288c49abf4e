"""Shared helpers of the benchmark scripts (not part of the library).

Every script prints exactly one JSON object on stdout; progress and logs go to stderr. Each script owns its
cache directory (``TRANSFERKIT_CACHE_DIR``): a fresh temporary directory unless ``--cache-dir`` is given,
so a run never reuses embeddings or ONNX graphs from an earlier run by accident.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENV = "TRANSFERKIT_CACHE_DIR"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_seeds(text: str) -> list[int]:
    out = [int(s) for s in str(text).replace(" ", "").split(",") if s != ""]
    if not out:
        raise argparse.ArgumentTypeError("--seeds needs at least one integer, e.g. 0,1,2")
    return out


def add_common_args(p: argparse.ArgumentParser, default_seeds: str = "0,1,2") -> None:
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds(default_seeds),
                   help=f"comma-separated seeds (default {default_seeds})")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in under a minute")
    p.add_argument("--cache-dir", default=None,
                   help="TRANSFERKIT_CACHE_DIR for this run (default: a fresh temporary directory, deleted at exit)")
    p.add_argument("--threads", type=int, default=None, help="torch/onnxruntime threads (default: torch's default)")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (without forcing deterministic kernels, which would change timings)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


@contextlib.contextmanager
def own_cache_dir(path: str | None, prefix: str) -> Iterator[Path]:
    """Point ``TRANSFERKIT_CACHE_DIR`` at ``path`` (created) or at a temporary directory removed afterwards."""
    old = os.environ.get(CACHE_ENV)
    if path:
        root = Path(path).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix=f"transferkit-bench-{prefix}-")
        root = Path(tmp)
    os.environ[CACHE_ENV] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = old
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def set_threads(n: int | None) -> int:
    import torch

    if n:
        torch.set_num_threads(int(n))
    return int(torch.get_num_threads())


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def other_busy_processes(min_cpu_s: float = 0.0) -> int:
    """Number of runnable (state R) processes other than this one, from /proc (a cheap load probe)."""
    me = os.getpid()
    n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if state == "R":
            n += 1
    return n


def environment(threads: int | None = None) -> dict[str, Any]:
    import onnxruntime
    import sklearn
    import torch
    import torchvision

    import transferkit

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": bool(torch.cuda.is_available()),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnxruntime": onnxruntime.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "transferkit": getattr(transferkit, "__version__", "?"),
        "threads": threads if threads is not None else int(torch.get_num_threads()),
    }


def emit(result: dict[str, Any]) -> None:
    """Print the result as one JSON object on stdout."""
    def default(o: Any) -> Any:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(type(o).__name__)

    sys.stdout.write(json.dumps(result, indent=2, default=default) + "\n")
    sys.stdout.flush()


def rounded(x: float, digits: int = 4) -> float:
    return float(round(float(x), digits))
