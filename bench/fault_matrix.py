"""Fault matrix (issue 14): hostile and broken inputs through the real CLI, and kill -9 at random points.

1. **Bad-input matrix**: every case runs the ``transferkit`` CLI (in this process by default, each in a fresh
   process with ``--subprocess``) and must end in exactly one
   ``error: ...`` line with exit code 2 (no traceback), or be handled correctly (exit 0 and the promised
   effect); cases with a side condition also check it (no marker file from a setup.py, nothing written
   outside the cache, the old output intact).
2. **Kill matrix**: ``fit`` (feature extraction, and fine-tuning with checkpoints) and ``extract`` (to
   ``.npy``) are killed with SIGKILL at random moments spread over extraction, training and writing; a
   rerun (``--resume`` for fine-tuning) must finish and give byte-identical weights (embeddings) and
   identical predictions to an uninterrupted run; and whatever the killed run left at ``--out`` must be
   absent, the previous model, or a complete verified model — never a mix. A third scenario kills a process that keeps replacing one model folder
   with two different models, to hit the swap itself.

The backbone is ``tiny-cnn`` (the test suite's 2-block CNN with seeded weights), registered by a small
wrapper around the CLI, so each run costs the process start-up, not a real network.

    python bench/fault_matrix.py            # every bad-input case, 20 kills
    python bench/fault_matrix.py --quick    # every bad-input case, 6 kills
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

WRAPPER = """
import os, sys
from transferkit._utils import sha256_file
from transferkit.backbones import BACKBONES, BackboneConfig, WeightsSource, register_backbone
w = os.environ["TK_TINY_WEIGHTS"]
if "tiny-cnn" not in BACKBONES:
    register_backbone(BackboneConfig(name="tiny-cnn", family="smallcnn", architecture="smallcnn", modality="image",
        weights=WeightsSource(sha256=sha256_file(w), local_path=w, license="MIT"),
        layers={"features.0": 4, "features.1": 8}, blocks=("features.0", "features.1"), input_size=32,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), num_source_classes=5, license="MIT",
        extra={"widths": [4, 8]}))
if sys.argv[1:2] == ["--write-loop"]:  # the swap scenario: replace one folder with model A, B, A, ... forever
    from transferkit import load_model
    a, b, out = load_model(sys.argv[2]), load_model(sys.argv[3]), sys.argv[4]
    print("ready", flush=True)
    while True:
        a.save(out); b.save(out)
sys.argv = ["transferkit", *sys.argv[1:]]
from transferkit.cli import main
main()
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- fixtures ----------------------------------------------------------------------------------------------

def make_fixtures(root: Path) -> dict[str, Path]:
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_images  # the suite's synthetic stripes/blobs
    from transferkit.backbones.vision import SmallCNN

    torch.manual_seed(1234)
    weights = root / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in SmallCNN(widths=(4, 8), num_classes=5).state_dict().items()}, str(weights))
    X, y = make_images(n_per_class=40)
    data = root / "data"
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        (data / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(data / f"c{label}" / f"{i:03d}.png")
    big = root / "big"  # the extraction kills' set: 4x the pixels, so extraction is a visible share of the run
    Xb, yb = make_images(n_per_class=int(os.environ.get("TK_FAULT_PER_CLASS", "40")), seed=1)
    for i, (img, label) in enumerate(zip(Xb, yb, strict=True)):
        (big / f"c{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.kron(img, np.ones((2, 2), np.uint8))).save(big / f"c{label}" / f"{i:04d}.png")
    return {"weights": weights, "data": data, "big": big}


def png_bomb(path: Path, width: int, height: int, valid: bool = True) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = b"".join(z.compress(row) for _ in range(height if valid else 1)) + z.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


# -- running the CLI ---------------------------------------------------------------------------------------

@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float = 0.0


def cli(args: list[Any], env: dict[str, str], *, fsize: int | None = None, timeout: float = 600) -> Run:
    def limits() -> None:
        if fsize is not None:  # a full disk, as the process sees it: writes past fsize bytes fail (EFBIG)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limits, cwd=env["TK_WORK"])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return Run(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t, rss)


_REGISTERED = False


def register_tiny(env: dict[str, str]) -> None:
    """Register tiny-cnn in this process too (the in-process CLI, and load_model when checking what a
    killed run left)."""
    global _REGISTERED
    if not _REGISTERED:
        os.environ["TK_TINY_WEIGHTS"] = env["TK_TINY_WEIGHTS"]
        exec(WRAPPER.split("if sys.argv[1:2]")[0], {})
        _REGISTERED = True


def cli_in_process(args: list[Any], env: dict[str, str], *, fsize: int | None = None) -> Run:
    """The same CLI call in this process (typer's runner): no start-up cost per case. Environment, working
    folder and the file-size limit are set for the call and restored after; an exception escaping the CLI
    is reported as a traceback."""
    from typer.testing import CliRunner

    register_tiny(env)
    from transferkit.backbones import clear_loaded
    from transferkit.cli import app

    clear_loaded()
    saved_env, cwd = dict(os.environ), os.getcwd()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(env["TK_WORK"])
    t = time.perf_counter()
    try:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, hard))
        result = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
    return Run(result.exit_code, result.stdout, stderr, time.perf_counter() - t)


def classify(run: Run) -> str:
    """'error' (one line, exit 2), 'ok' (exit 0), 'traceback', or 'bad' (anything else)."""
    if "Traceback" in run.stderr:
        return "traceback"
    lines = [ln for ln in run.stderr.strip().splitlines() if ln.startswith("error:")]
    if run.code == 2 and len(lines) == 1 and run.stderr.strip().splitlines()[-1].startswith("error:"):
        return "error"
    if run.code == 2 and not lines and ("Error: " in run.stderr or "─ Error ─" in run.stderr):
        return "error"  # click's own usage error (an option value refused by its callback): exit 2, names the value
    if run.code == 0:
        return "ok"
    return "bad"


def snapshot(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- the bad-input matrix ----------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    args: Callable[[Path], list[Any]]
    expect: str = "error"  # or "ok"
    needle: str = ""  # must appear in stderr (the error line, or a warning)
    setup: Callable[[Path], None] | None = None
    check: Callable[[Path, Run], str | None] | None = None  # extra condition; returns a failure reason
    env: dict[str, str] = field(default_factory=dict)
    fsize: int | None = None


SHARED_CACHE = "<the cache the set-up fits filled>"  # a case env value: use it, so nothing new is cached


def _resign(folder: Path, doc: dict) -> None:
    from transferkit._utils import sha256_file

    (folder / "model.json").write_text(json.dumps(doc))
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["model.json"] = {"sha256": sha256_file(folder / "model.json"), "bytes": 0}
    (folder / "manifest.json").write_text(json.dumps(m))


def _edit_model(fn: Callable[[dict, Path], None], resign: bool = True) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        shutil.copytree(w / "model", w / "m")
        doc = json.loads((w / "m" / "model.json").read_text())
        fn(doc, w)
        if resign:
            _resign(w / "m", doc)
        else:
            (w / "m" / "model.json").write_text(json.dumps(doc))
    return setup


def _payload(doc: dict, w: Path) -> None:
    pkg = w / "payload"
    pkg.mkdir()
    (pkg / "setup.py").write_text(f"open({str(w / 'PWNED')!r}, 'w').write('ran')\n"
                                  "from setuptools import setup\nsetup(name='payload', version='1')\n")
    doc["backbone"]["name"] = "evil-backbone"
    doc["backbone"]["weights"].update(package=str(pkg), version=None, module="payload", path_in_package="w",
                                      local_path=None, url=f"file://{pkg}/setup.py", sha256="0" * 64)


def _no_marker(w: Path, run: Run) -> str | None:
    return "setup.py ran" if (w / "PWNED").exists() else None


def _nothing_outside(w: Path, run: Run) -> str | None:
    new = {p for p in tree(w) if not p.startswith(("cache", "m/", "m", "predict-in"))}
    return f"wrote {sorted(new)[:3]}" if any(p.startswith("x") for p in new) else None


def _tamper_tensor(w: Path) -> None:
    shutil.copytree(w / "model", w / "m")
    f = sorted((w / "m").glob("*.safetensors"))[0]
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))


def _write(rel: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        p = w / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return setup


def _image_set(extra: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        shutil.copytree(w / "data", w / "d")
        if extra:
            extra(w / "d")
    return setup


def _copy_model_then(fn: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        shutil.copytree(w / "model", w / "m")
        if fn:
            fn(w)
    return setup


def _old_intact(rel: str) -> Callable[[Path, Run], str | None]:
    def check(w: Path, run: Run) -> str | None:
        return None if snapshot(w / rel) == snapshot(w / "model") else f"{rel} changed"
    return check


def _paths_csv(rows: list[str], extra_col: str | None = None) -> Callable[[Path], None]:
    def setup(w: Path) -> None:
        shutil.copytree(w / "data", w / "d")
        files = sorted((w / "d").rglob("*.png"))
        lines = ["path,label" + (",notes" if extra_col else "")]
        for f in files[::4]:  # every class
            lines.append(f"{f.relative_to(w / 'd')},{f.parent.name}" + (f",{extra_col}" if extra_col else ""))
        lines += rows
        (w / "d" / "list.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return setup


def cases() -> list[Case]:
    fit = ["fit", "d", "--backbone", "tiny-cnn", "--no-progress", "--out"]
    ext = ["extract", "--backbone", "tiny-cnn", "--no-progress"]
    return [
        # -- untrusted model folders
        Case("predict: model folder missing", lambda w: ["predict", "nope", "data"], needle="does not exist"),
        Case("predict: folder without model.json", lambda w: ["predict", "data", "data"], needle="model.json"),
        Case("load: model.json not JSON", lambda w: ["predict", "m", "data"], needle="not valid JSON",
             setup=_copy_model_then(lambda w: (w / "m" / "model.json").write_text("{oops"))),
        Case("load: model.json edited, manifest not", lambda w: ["predict", "m", "data"], needle="model.json",
             setup=_edit_model(lambda d, w: d["params"].update(random_state=9), resign=False)),
        Case("load: tampered weights file", lambda w: ["predict", "m", "data"], needle="differs",
             setup=_tamper_tensor),
        Case("load: manifest missing", lambda w: ["predict", "m", "data"], needle="no manifest.json",
             setup=_copy_model_then(lambda w: (w / "m" / "manifest.json").unlink())),
        Case("load: model.json names a local setup.py (auto-install on)", lambda w: ["predict", "m", "data"],
             needle="--weights", setup=_edit_model(_payload), check=_no_marker, env={"TRANSFERKIT_AUTO_INSTALL": "1"}),
        Case("load: backbone name ../../../x with a file:// URL", lambda w: ["predict", "m", "data"],
             needle="not allowed", setup=_edit_model(lambda d, w: (d["backbone"].update(name="../../../x"),
                                                                   d["backbone"]["weights"].update(url=f"file://{w}/data"))),
             check=_nothing_outside),
        Case("load: timm architecture hf-hub:attacker/repo", lambda w: ["predict", "m", "data"], needle="architecture",
             setup=_edit_model(lambda d, w: d["backbone"].update(name="unreg", family="timm",
                                                                 architecture="hf-hub:attacker/repo"))),
        Case("load: a pickle under a listed tensor name", lambda w: ["predict", "m", "data"], needle="corrupt",
             setup=_copy_model_then(lambda w: _pickle_in(w / "m"))),
        Case("load: newer format version", lambda w: ["predict", "m", "data"], needle="upgrade transferkit",
             setup=_edit_model(lambda d, w: d.update(format_version=99))),
        Case("load: unknown estimator", lambda w: ["predict", "m", "data"], needle="cannot load",
             setup=_edit_model(lambda d, w: d.update(estimator="os.system"))),
        Case("load: params is a list", lambda w: ["predict", "m", "data"], needle="malformed",
             setup=_edit_model(lambda d, w: d.update(params=[1, 2]))),
        Case("load: strategy state missing", lambda w: ["predict", "m", "data"], needle="",
             setup=_edit_model(lambda d, w: d["strategy"].pop("state"))),
        # -- outputs
        Case("fit: --out is a file", lambda w: [*fit, "f"], needle="is a file", setup=_write("f", "x")),
        Case("fit: --out under a file", lambda w: [*fit, "f/m"], needle="which is a file", setup=_write("f", "x")),
        Case("fit: --out holds the user's files", lambda w: [*fit, "u"], needle="did not write",
             setup=_write("u/notes.txt", "mine")),
        Case("fit: --out is bad and the data too (out checked first)", lambda w: ["fit", "nodata", "--out", "f"],
             needle="--out", setup=_write("f", "x")),
        Case("predict: --output is a folder", lambda w: ["predict", "model", "data", "--output", "data"],
             needle="is a folder"),
        Case("predict: --output under a file", lambda w: ["predict", "model", "data", "--output", "f/p.csv"],
             needle="which is a file", setup=_write("f", "x")),
        Case("export: --onnx under a file", lambda w: ["export", "model", "--onnx", "f/m.onnx"], needle="which is a file",
             setup=_write("f", "x")),
        Case("export: --onnx is a folder", lambda w: ["export", "model", "--onnx", "data"], needle="is a folder"),
        Case("fit: disk full while writing over an old model", lambda w: ["fit", "data", "--backbone", "tiny-cnn",
             "--no-progress", "--out", "m", "--seed", "5"], needle="intact", setup=_copy_model_then(),
             check=_old_intact("m"), fsize=20_000),
        Case("predict: disk full while caching features", lambda w: ["predict", "model", "data", "--output",
             "p.csv", "--proba", "--no-progress"], needle="cannot write the embedding cache",
             setup=_write("p.csv", "item,prediction\nold,1\n"),
             check=lambda w, r: None if (w / "p.csv").read_text() == "item,prediction\nold,1\n" else "p.csv changed",
             fsize=2_000),
        Case("predict: disk full while writing predictions (features cached)", lambda w: ["predict", "model", "data",
             "--output", "p.csv", "--proba", "--no-progress"], needle="File too large",
             setup=_write("p.csv", "item,prediction\nold,1\n"), env={"TRANSFERKIT_CACHE_DIR": SHARED_CACHE},
             check=lambda w, r: None if (w / "p.csv").read_text() == "item,prediction\nold,1\n" else "p.csv changed",
             fsize=2_000),
        # -- images
        Case("fit: an 81-megapixel PNG bomb (17 KB... 80 KB file)", lambda w: [*fit, "o"], needle="megapixels",
             setup=_image_set(lambda d: png_bomb(d / "c0" / "bomb.png", 9000, 9000))),
        Case("predict: a 1.6-gigapixel PNG header (over Pillow's limit)", lambda w: ["predict", "model", "b",
             "--no-progress"], needle="bomb", setup=lambda w: png_bomb(w / "b" / "x.png", 40000, 40000, valid=False)),
        Case("fit: truncated PNG", lambda w: [*fit, "o"], needle="truncated",
             setup=_image_set(lambda d: (d / "c1" / "t.png").write_bytes((d / "c1" / "001.png").read_bytes()[:60]))),
        Case("fit: text file named .png", lambda w: [*fit, "o"], needle="not a recognised image",
             setup=_image_set(lambda d: (d / "c1" / "t.png").write_text("hello"))),
        Case("fit: zero-byte .jpg", lambda w: [*fit, "o"], needle="zero.jpg",
             setup=_image_set(lambda d: (d / "c2" / "zero.jpg").write_bytes(b""))),
        Case("fit: one class only", lambda w: ["fit", "one", "--backbone", "tiny-cnn", "--out", "o"], needle="class",
             setup=lambda w: shutil.copytree(w / "data" / "c0", w / "one" / "c0")),
        Case("fit: empty folder", lambda w: ["fit", "empty", "--out", "o"], needle="no images",
             setup=lambda w: (w / "empty").mkdir()),
        Case("fit: loose images, no class folders", lambda w: ["fit", "loose", "--out", "o"], needle="loose",
             setup=lambda w: shutil.copytree(w / "data" / "c0", w / "loose")),
        Case("predict: TRANSFERKIT_MAX_IMAGE_PIXELS=abc", lambda w: ["predict", "model", "data", "--no-progress"],
             needle="TRANSFERKIT_MAX_IMAGE_PIXELS", env={"TRANSFERKIT_MAX_IMAGE_PIXELS": "abc"}),
        # -- CSVs
        Case("fit: CSV path ../../etc/passwd", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o"],
             needle="--allow-outside-paths", setup=_paths_csv(["../../etc/passwd,c0"])),
        Case("fit: CSV absolute path outside", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o"],
             needle="outside the CSV's folder", setup=_paths_csv(["/etc/hostname,c0"])),
        Case("fit: CSV outside path with --allow-outside-paths (read, then not an image)",
             lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o", "--allow-outside-paths",
                        "--no-progress"], needle="not a recognised image", setup=_paths_csv(["/etc/hostname,c0"])),
        Case("fit: CSV with a 9 MiB cell", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o"],
             needle="over 8 MiB", setup=_paths_csv([], extra_col="x" * (9 * 2**20))),
        Case("fit: CSV with a 1 MB cell (accepted)", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out",
             "o", "--no-progress", "--json"], expect="ok", setup=_paths_csv([], extra_col="x" * 10**6)),
        Case("fit: CSV not UTF-8", lambda w: ["fit", "c.csv", "--out", "o"], needle="not UTF-8",
             setup=_write("c.csv", "text,label\ncaf\xe9,a\n".encode("latin-1"))),
        Case("fit: CSV without a label column", lambda w: ["fit", "c.csv", "--out", "o"], needle="label",
             setup=_write("c.csv", "text,other\na,b\n")),
        Case("fit: CSV empty", lambda w: ["fit", "c.csv", "--out", "o"], needle="empty", setup=_write("c.csv", "")),
        Case("fit: CSV header only", lambda w: ["fit", "c.csv", "--out", "o"], needle="no rows",
             setup=_write("c.csv", "text,label\n")),
        Case("fit: CSV image paths missing", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o"],
             needle="do not exist", setup=_paths_csv(["c0/missing.png,c0"])),
        Case("fit: CSV empty label", lambda w: ["fit", "d/list.csv", "--backbone", "tiny-cnn", "--out", "o"],
             needle="empty label", setup=_paths_csv(["c0/000.png,"])),
        # -- options
        Case("fit: unknown backbone", lambda w: ["fit", "data", "--backbone", "resnet9000", "--out", "o"],
             needle="resnet9000"),
        Case("fit: unknown head", lambda w: ["fit", "data", "--head", "forest", "--out", "o"], needle="forest"),
        Case("fit: --test-size 1.5", lambda w: ["fit", "data", "--backbone", "tiny-cnn", "--test-size", "1.5",
             "--out", "o"], needle="1.5"),
        Case("fit: --resume with feature extraction", lambda w: ["fit", "data", "--resume", "--out", "o"],
             needle="--resume"),
        Case("fit: --image-size 5", lambda w: ["fit", "data", "--backbone", "tiny-cnn", "--image-size", "5", "--out",
             "o", "--no-progress"], needle="5"),
        Case("fit: --epochs -1 (fine-tune)", lambda w: ["fit", "data", "--backbone", "tiny-cnn", "--strategy",
             "fine-tune", "--epochs", "-1", "--out", "o", "--no-progress"], needle="epochs"),
        Case("fit: data path missing", lambda w: ["fit", "no/such/dir", "--out", "o"], needle="does not exist"),
        Case("export: model missing", lambda w: ["export", "nope", "--onnx", "m.onnx"], needle="does not exist"),
        Case("evaluate: labels the model never saw", lambda w: ["evaluate", "model", "other", "--no-progress"],
             needle="", setup=lambda w: [shutil.copytree(w / "data" / c, w / "other" / f"x{c}") for c in ("c0", "c1")]),
        Case("cache clear --key ../..", lambda w: ["cache", "clear", "--key", "../.."], needle="no cache entry"),
        # -- extract (embeddings to Parquet / .npy)
        Case("extract: --out under a file", lambda w: [*ext, "data", "--out", "f/e.parquet"], needle="which is a file",
             setup=_write("f", "x")),
        Case("extract: --out is a folder", lambda w: [*ext, "data", "--out", "data"], needle="suffix"),
        Case("extract: --out a folder named .parquet", lambda w: [*ext, "data", "--out", "e.parquet"],
             needle="is a folder", setup=lambda w: (w / "e.parquet").mkdir()),
        Case("extract: .txt not UTF-8", lambda w: [*ext, "t.txt", "--out", "e.parquet"], needle="not UTF-8",
             setup=_write("t.txt", "caf\xe9\n".encode("latin-1"))),
        Case("extract: CSV path ../../etc/passwd", lambda w: [*ext, "d/list.csv", "--out", "e.parquet"],
             needle="--allow-outside-paths", setup=_paths_csv(["../../etc/passwd,c0"])),
        Case("extract: a PNG bomb in the folder", lambda w: [*ext, "d", "--out", "e.parquet"], needle="megapixels",
             setup=_image_set(lambda d: png_bomb(d / "c0" / "bomb.png", 9000, 9000))),
        Case("extract: disk full", lambda w: [*ext, "data", "--out", "e.parquet"], needle="File too large",
             check=lambda w, r: "e.parquet written" if (w / "e.parquet").exists() else None, fsize=3_000),
        Case("extract: fine (control case)", lambda w: [*ext, "data", "--out", "e.npy"], expect="ok",
             check=lambda w, r: None if (w / "e.ids.json").exists() else "no sidecar"),
        # -- serve (everything before the server binds)
        Case("serve: tampered weights file", lambda w: ["serve", "m"], needle="differs", setup=_tamper_tensor),
        Case("serve: model.json names a local setup.py (auto-install on)", lambda w: ["serve", "m"],
             needle="--weights", setup=_edit_model(_payload), check=_no_marker, env={"TRANSFERKIT_AUTO_INSTALL": "1"}),
        Case("serve: folder without model.json", lambda w: ["serve", "data"], needle="model.json"),
        Case("serve: --port 0", lambda w: ["serve", "model", "--port", "0"], needle="--port"),
        Case("serve: --max-upload-mb -1", lambda w: ["serve", "model", "--max-upload-mb", "-1"],
             needle="--max-upload-mb"),
        Case("predict: fine (control case)", lambda w: ["predict", "model", "data", "--no-progress"], expect="ok"),
    ]


def _pickle_in(folder: Path) -> None:
    import pickle

    from transferkit._utils import sha256_file

    f = sorted(folder.glob("*.safetensors"))[0]
    f.write_bytes(pickle.dumps({"x": 1}))
    m = json.loads((folder / "manifest.json").read_text())
    m["files"][f.name]["sha256"] = sha256_file(f)
    (folder / "manifest.json").write_text(json.dumps(m))


def run_matrix(base: Path, fx: dict[str, Path], env: dict[str, str], in_process: bool = True) -> list[dict[str, Any]]:
    rows = []
    for case in cases():
        w = Path(tempfile.mkdtemp(prefix="case-", dir=base))
        os.symlink(fx["data"], w / "data")
        shutil.copytree(base / "model", w / "model")
        case_env = {**env, "TK_WORK": str(w), "TRANSFERKIT_CACHE_DIR": str(w / "cache"),
                    **{k: env[k] if v == SHARED_CACHE else v for k, v in case.env.items()}}
        if case.setup:
            case.setup(w)
        run = (cli_in_process if in_process else cli)(case.args(w), case_env, fsize=case.fsize)
        outcome = classify(run)
        last = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else ""
        problem = None
        if outcome != case.expect:
            problem = f"expected {case.expect}, got {outcome}"
        elif case.needle and case.needle not in run.stderr:
            problem = f"{case.needle!r} not in the message"
        elif case.check:
            problem = case.check(w, run)
        rows.append({"case": case.name, "outcome": outcome, "exit": run.code, "passed": problem is None,
                     "problem": problem, "message": last[:220], "seconds": round(run.seconds, 1)})
        log(f"{'PASS' if problem is None else 'FAIL'} {case.name}: {last[:140]}")
        if problem and outcome == "traceback":
            log(run.stderr[-1500:])
        shutil.rmtree(w, ignore_errors=True)
    return rows


# -- the kill matrix ---------------------------------------------------------------------------------------

def model_digest(folder: Path) -> dict[str, str]:
    """sha256 of the weights files of a model folder (model.json too, less its timing entries)."""
    out = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.safetensors"))}
    return out


def resumed(stderr: str) -> bool:
    """Did the rerun say it continued the killed run (fine-tune's epoch, extract's rows already written)?"""
    import re

    kept = re.search(r"(\d+) already written", stderr)
    return "resuming from epoch" in stderr or (kept is not None and int(kept.group(1)) > 0)


def embeddings_digest(out: Path) -> str:
    """sha256 of an extracted ``.npy``'s array and of its sidecar (ids, labels, metadata)."""
    import numpy as np

    h = hashlib.sha256(np.ascontiguousarray(np.load(out)).tobytes())
    h.update(out.with_name(out.stem + ".ids.json").read_bytes())
    return h.hexdigest()


def verify_embeddings(out: Path) -> str:
    """What a killed ``extract`` left at ``out``: 'absent', 'complete', 'array-before-sidecar' (killed between
    the two renames: the rerun rebuilds the sidecar from the parts), or 'CORRUPT'."""
    import numpy as np

    side = out.with_name(out.stem + ".ids.json")
    if not out.exists():
        return "absent"
    try:
        rows = np.load(out, mmap_mode="r").shape[0]
    except (OSError, ValueError) as exc:
        return f"CORRUPT ({str(exc)[:80]})"
    if not side.exists() or len(json.loads(side.read_text())["ids"]) != rows:
        return "array-before-sidecar"
    return "complete"


def verify_left(out: Path, previous: dict[str, str] | None) -> str:
    """What a killed run left at ``out``: 'absent', 'previous', 'complete' or 'MIXED'/'CORRUPT'."""
    from transferkit import load_model
    from transferkit.exceptions import TransferKitError

    if not out.exists() or not any(out.iterdir()):
        return "absent"
    if not (out / "model.json").exists():  # only the checkpoint of a fine-tune in progress
        return "absent" if all(p.name == "checkpoint" for p in out.iterdir()) else "MIXED"
    try:
        load_model(out)
    except TransferKitError as exc:
        return f"CORRUPT ({str(exc)[:80]})"
    if previous is not None and model_digest(out) == previous:
        return "previous"
    return "complete"


def kill_run(args: list[Any], env: dict[str, str], at: float) -> tuple[str, float]:
    """Start the CLI, SIGKILL it after ``at`` seconds; return the last progress line and when it died."""
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=env["TK_WORK"])
    try:
        proc.wait(timeout=at)
        phase = "finished before the kill"
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        phase = ""
    _, err = proc.communicate()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    return phase or (lines[-1][:80] if lines else "start-up"), at


def run_kills(base: Path, fx: dict[str, Path], env: dict[str, str], n_kills: int, seed: int,
              only: tuple[str, ...] = ("feature-extraction", "fine-tune", "extract", "swap")) -> dict[str, Any]:
    register_tiny(env)  # verify_left loads what a killed run left, here
    rng = random.Random(seed)
    scenarios = {
        "feature-extraction": ["fit", fx["big"], "--backbone", "tiny-cnn", "--no-progress", "--out", "out"],
        "fine-tune": ["fit", fx["data"], "--backbone", "tiny-cnn", "--strategy", "fine-tune", "--epochs", "3",
                      "--head-epochs", "2", "--no-compare", "--no-progress", "--no-report", "--out", "out"],
        "extract": ["extract", fx["big"], "--backbone", "tiny-cnn", "--no-progress", "--chunk-size", "32",
                    "--out", "emb.npy"],
    }

    def outcome(name: str, w: Path, e: dict[str, str]) -> tuple[Any, str]:
        """(digest of the output, predictions of the model on the small set) of a finished run."""
        if name == "extract":
            return embeddings_digest(w / "emb.npy"), ""
        return model_digest(w / "out"), cli(["predict", w / "out", fx["data"], "--no-progress"], e).stdout

    scenarios = {k: v for k, v in scenarios.items() if k in only}
    rows, reference = [], {}
    for name, args in scenarios.items():
        w = Path(tempfile.mkdtemp(prefix=f"ref-{name}-", dir=base))
        e = dict(env, TK_WORK=str(w), TRANSFERKIT_CACHE_DIR=str(w / "cache"))
        run = cli(args, e)
        assert run.code == 0, run.stderr[-2000:]
        digest, preds = outcome(name, w, e)
        reference[name] = {"digest": digest, "seconds": run.seconds, "predictions": preds}
        log(f"reference {name}: {run.seconds:.1f} s")
        shutil.rmtree(w, ignore_errors=True)
    share = n_kills // max(1, len(scenarios))  # split evenly; fine-tuning takes the remainder
    per = {k: share for k in scenarios}
    if "fine-tune" in per:
        per["fine-tune"] = n_kills - share * (len(scenarios) - 1)
    for name, args in scenarios.items():
        ref = reference[name]
        for k in range(per[name]):
            w = Path(tempfile.mkdtemp(prefix=f"kill-{name}-", dir=base))
            e = dict(env, TK_WORK=str(w), TRANSFERKIT_CACHE_DIR=str(w / "cache"))
            previous = None
            if k % 3 == 2 and name != "extract":  # a third of the fits write over an existing (different) model
                shutil.copytree(base / "model", w / "out")
                previous = model_digest(w / "out")
            at = rng.uniform(0.5, ref["seconds"] * 1.02)
            phase, _ = kill_run(args, e, at)
            left = verify_embeddings(w / "emb.npy") if name == "extract" else verify_left(w / "out", previous)
            rerun_args = [*args, "--resume"] if name == "fine-tune" else args
            rerun = cli(rerun_args, e)
            digest, preds = outcome(name, w, e) if rerun.code == 0 else (None, "")
            same = digest == ref["digest"]
            ok = same and preds == ref["predictions"] and not left.startswith(("MIXED", "CORRUPT"))
            rows.append({"scenario": name, "kill_at_s": round(at, 2), "phase": phase, "left_after_kill": left,
                         "rerun_exit": rerun.code, "resumed": resumed(rerun.stderr),
                         "weights_identical": same, "predictions_identical": preds == ref["predictions"],
                         "passed": ok})
            log(f"{'PASS' if ok else 'FAIL'} kill {name} at {at:.1f}s [{phase}] left={left} "
                f"rerun={rerun.code} identical={same}")
            if rerun.code != 0:
                log(rerun.stderr[-1500:])
            shutil.rmtree(w, ignore_errors=True)
    swaps = []
    if "swap" not in only:
        return {"kills": rows, "swap_kills": swaps,
                "reference_seconds": {k: round(v["seconds"], 1) for k, v in reference.items()}}
    # the swap itself: a process replacing one folder with model A, B, A, ... killed at random moments
    w = Path(tempfile.mkdtemp(prefix="swap-", dir=base))
    e = dict(env, TK_WORK=str(w), TRANSFERKIT_CACHE_DIR=str(w / "cache"))
    shutil.copytree(base / "model", w / "a")
    shutil.copytree(base / "model2", w / "b")
    da, db = model_digest(w / "a"), model_digest(w / "b")
    for _ in range(max(4, n_kills // 2)):
        shutil.rmtree(w / "out", ignore_errors=True)
        shutil.copytree(w / "a", w / "out")
        proc = subprocess.Popen([sys.executable, "-c", WRAPPER, "--write-loop", w / "a", w / "b", w / "out"], env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=w)
        assert proc.stdout is not None
        proc.stdout.readline()  # "ready": the loop is writing
        time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        left = verify_left(w / "out", None)
        which = {json.dumps(da): "A", json.dumps(db): "B"}.get(json.dumps(model_digest(w / "out")), "NEITHER")
        debris = sorted(p.name for p in w.iterdir() if p.name.startswith(".out."))
        swaps.append({"left": left, "model": which, "temporary_siblings": len(debris),
                      "passed": left == "complete" and which in ("A", "B")})
        for d in debris:  # a kill mid-write leaves a hidden .out.tmp-* sibling: harmless, cleaned here
            shutil.rmtree(w / d, ignore_errors=True)
    log(f"swap kills: {sum(s['passed'] for s in swaps)}/{len(swaps)} left model A or B whole")
    shutil.rmtree(w, ignore_errors=True)
    return {"kills": rows, "swap_kills": swaps,
            "reference_seconds": {k: round(v["seconds"], 1) for k, v in reference.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6 kills instead of 20")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-matrix", action="store_true")
    p.add_argument("--skip-kills", action="store_true")
    p.add_argument("--scenarios", default="feature-extraction,fine-tune,extract,swap",
                   help="kill scenarios to run (comma list): feature-extraction, fine-tune, extract, swap")
    p.add_argument("--subprocess", action="store_true",
                   help="run each bad-input case in a fresh process (default: in this process, much faster)")
    args = p.parse_args()
    n_kills = 6 if args.quick else args.kills
    base = Path(tempfile.mkdtemp(prefix="tk-faults-"))
    try:
        fx = make_fixtures(base)
        env = dict(os.environ, TK_TINY_WEIGHTS=str(fx["weights"]), TRANSFERKIT_AUTO_INSTALL="0",
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), TK_WORK=str(base),
                   TRANSFERKIT_CACHE_DIR=str(base / "cache"), HF_HUB_OFFLINE="1")
        for name, seed in (("model", 0), ("model2", 1)):
            run = cli(["fit", fx["data"], "--backbone", "tiny-cnn", "--no-progress", "--out", base / name, "--seed",
                       seed, "--test-size", "0.3"], env)
            assert run.code == 0, run.stderr
        result: dict[str, Any] = {"benchmark": "fault_matrix", "machine": "shared 2-core", "python": sys.version.split()[0]}
        if not args.skip_matrix:
            rows = run_matrix(base, fx, env, in_process=not args.subprocess)
            result["bad_inputs"] = {"cases": len(rows), "passed": sum(r["passed"] for r in rows),
                                    "tracebacks": sum(r["outcome"] == "traceback" for r in rows), "rows": rows}
        if not args.skip_kills:
            kills = run_kills(base, fx, env, n_kills, args.seed, tuple(args.scenarios.split(",")))
            result["kill_matrix"] = {"kills": len(kills["kills"]), "passed": sum(r["passed"] for r in kills["kills"]),
                                     "swap_kills": len(kills["swap_kills"]),
                                     "swap_passed": sum(s["passed"] for s in kills["swap_kills"]), **kills}
        print(json.dumps(result, indent=2))
        _table(result)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _table(result: dict[str, Any]) -> None:
    """The human-readable table, on stderr (stdout is the JSON)."""
    if "bad_inputs" in result:
        print(f"\n{'case':70} {'outcome':10} ok", file=sys.stderr)
        for r in result["bad_inputs"]["rows"]:
            print(f"{r['case'][:70]:70} {r['outcome']:10} {'yes' if r['passed'] else 'NO: ' + str(r['problem'])}",
                  file=sys.stderr)
    if "kill_matrix" in result:
        print(f"\n{'scenario':20} {'kill at':>8} {'phase':42} {'left':10} {'identical':9}", file=sys.stderr)
        for r in result["kill_matrix"]["kills"]:
            print(f"{r['scenario']:20} {r['kill_at_s']:8.2f} {r['phase'][:42]:42} {r['left_after_kill'][:10]:10} "
                  f"{'yes' if r['passed'] else 'NO'}", file=sys.stderr)


if __name__ == "__main__":
    main()
