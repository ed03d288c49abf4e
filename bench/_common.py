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


def _system_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores; idle and iowait excluded), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    idle = fields[3] + fields[4]
    return (total - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class CpuMonitor:
    """Measures how much CPU *other* processes used while a block ran.

    ``foreign_share`` = (machine busy CPU-seconds - this process's CPU-seconds) / (wall seconds x cores):
    0 on an idle machine, 0.5 when another process kept one of two cores busy the whole time.
    """

    def __enter__(self) -> CpuMonitor:
        self.t0, self.busy0, self.own0 = time.perf_counter(), _system_busy_s(), _own_cpu_s()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.t0
        busy = _system_busy_s() - self.busy0
        own = _own_cpu_s() - self.own0
        cores = os.cpu_count() or 1
        self.own_share = own / max(self.wall * cores, 1e-9)
        self.foreign_share = max(0.0, busy - own) / max(self.wall * cores, 1e-9)

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 3), "own_cpu_share": round(self.own_share, 3),
                "foreign_cpu_share": round(self.foreign_share, 3)}


def foreign_share(window_s: float = 2.0) -> float:
    """Share of the machine's CPU used by other processes over the next ``window_s`` seconds."""
    with CpuMonitor() as m:
        time.sleep(window_s)
    return m.foreign_share


def wait_for_idle(max_wait_s: float, threshold: float = 0.05, window_s: float = 3.0) -> dict[str, Any]:
    """Wait (up to ``max_wait_s``) until other processes use less than ``threshold`` of the CPU."""
    t0 = time.perf_counter()
    share = foreign_share(window_s)
    waited = False
    while share > threshold and time.perf_counter() - t0 < max_wait_s:
        if not waited:
            log(f"machine busy ({share:.0%} of the CPU used by other processes); waiting up to {max_wait_s:.0f} s")
            waited = True
        share = foreign_share(window_s)
    return {"waited_s": round(time.perf_counter() - t0, 1), "foreign_cpu_share_before": round(share, 3),
            "idle": share <= threshold}


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
