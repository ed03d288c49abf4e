"""Coverage-guided fuzzing (atheris / libFuzzer) of the image and CSV loaders, for a bounded time.

Each target runs in its own subprocess for ``--seconds`` (libFuzzer's ``-max_total_time``), starting from
a seed corpus of small valid files (PNG, JPEG, GIF, BMP, TIFF, WebP, PPM; CSVs of texts and of paths). An
input passes when the loader returns an RGB image / a Dataset, or raises transferkit's one-line error
(``ImageReadError`` / ``DataError``); anything else — another exception type, a multi-line message, an
image decoded past the pixel budget, a CSV path outside the CSV's folder — is a finding, recorded (type,
message, the input's size and sha256, saved under ``--findings``) without stopping the run.

Not run in CI (it is open-ended by nature). Needs ``pip install atheris`` (wheels for CPython 3.8-3.11 on
x86-64 Linux); without it the script falls back to hypothesis-generated inputs for the same time.

    python bench/fuzz_loaders.py --seconds 300            # 5 minutes per target
    python bench/fuzz_loaders.py --quick                   # 20 s per target
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("image", "csv")


def _seed_corpus(target: str, d: Path) -> None:
    import numpy as np
    from PIL import Image

    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if target == "image":
        arr = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
        for fmt, mode in [("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("PNG", "I;16"), ("JPEG", "RGB"),
                          ("JPEG", "L"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB"),
                          ("PPM", "RGB")]:
            buf = io.BytesIO()
            img = Image.fromarray(arr).convert(mode) if mode != "I;16" else Image.fromarray(arr[..., 0].astype(np.uint16) * 200)
            img.save(buf, format=fmt)
            (d / f"seed-{fmt}-{mode.replace(';', '')}").write_bytes(buf.getvalue())
    else:
        samples = {
            "texts.csv": "text,label\ngood film,pos\nbad film,neg\n\"quoted, comma\",pos\n",
            "paths.csv": "path,label\nimg.png,a\n./img.png,b\n",
            "guess.csv": "review,category,id\nfine,x,1\n,y,2\n",
            "tsvish.csv": "path\timage\n",
        }
        for name, text in samples.items():
            (d / name).write_text(text, encoding="utf-8")


def _one_line(exc: BaseException) -> bool:
    return bool(str(exc).strip()) and "\n" not in str(exc).strip()


def _make_checker(target: str, work: Path):
    """The function libFuzzer calls with each input: returns None (pass) or a finding (dict)."""
    from PIL import Image

    from transferkit.data.datasets import load_csv
    from transferkit.data.items import ImagePaths, max_image_pixels, read_image
    from transferkit.exceptions import DataError, ImageReadError

    limit = max_image_pixels()
    data_dir = work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(data_dir / "img.png")

    if target == "image":
        path = work / "input.img"

        def check(data: bytes) -> dict | None:
            path.write_bytes(data)
            for min_size in (None, 32):
                try:
                    img = read_image(path, min_size=min_size)
                    ImagePaths([path]).pixel_size(0)
                except ImageReadError as exc:
                    if not _one_line(exc):
                        return {"kind": "multi-line error", "type": type(exc).__name__, "message": str(exc)[:300]}
                    continue
                except Exception as exc:  # noqa: BLE001 - a finding, recorded
                    return {"kind": "uncaught", "type": type(exc).__name__, "message": str(exc)[:300]}
                if img.mode != "RGB" or img.size[0] * img.size[1] > limit:
                    return {"kind": "bad image", "type": "", "message": f"{img.mode} {img.size}"}
            return None

        return check

    path = data_dir / "input.csv"

    def check_csv(data: bytes) -> dict | None:
        path.write_bytes(data)
        for kwargs in ({}, {"require_labels": False}):
            try:
                ds = load_csv(path, **kwargs)
            except DataError as exc:
                if not _one_line(exc):
                    return {"kind": "multi-line error", "type": type(exc).__name__, "message": str(exc)[:300]}
                continue
            except Exception as exc:  # noqa: BLE001 - a finding, recorded
                return {"kind": "uncaught", "type": type(exc).__name__, "message": str(exc)[:300]}
            if ds.modality == "image":
                base = str(data_dir.resolve()) + os.sep
                if not all(os.path.abspath(p).startswith(base) for p in ds.X):
                    return {"kind": "path outside the CSV's folder", "type": "", "message": str(ds.X[:3])}
        return None

    return check_csv


def _run_target(target: str, seconds: int, findings_dir: Path, report: Path) -> None:
    """Child process: fuzz one target; write a JSON summary to ``report`` at exit."""
    import atexit

    try:  # instrument Pillow's and transferkit's Python code for coverage feedback, before they load
        import atheris

        with atheris.instrument_imports(include=["PIL", "transferkit"]):
            import PIL.Image  # noqa: F401

            import transferkit.data.datasets  # noqa: F401
            import transferkit.data.items  # noqa: F401
    except ImportError:
        atheris = None
    work = Path(tempfile.mkdtemp(prefix=f"tk-fuzz-{target}-"))
    corpus = work / "corpus"
    _seed_corpus(target, corpus)
    check = _make_checker(target, work)
    stats = {"target": target, "engine": "atheris", "inputs": 0, "findings": [], "seconds": seconds}
    seen: set[tuple[str, str]] = set()
    start = time.time()

    def record(data: bytes, finding: dict) -> None:
        key = (finding["kind"], finding["type"])
        if key in seen:
            return
        seen.add(key)
        digest = hashlib.sha256(data).hexdigest()[:16]
        findings_dir.mkdir(parents=True, exist_ok=True)
        (findings_dir / f"{target}-{digest}").write_bytes(data)
        stats["findings"].append({**finding, "input_bytes": len(data), "input": f"{target}-{digest}"})

    def dump() -> None:
        stats["elapsed_s"] = round(time.time() - start, 1)
        report.write_text(json.dumps(stats))

    def one(data: bytes) -> None:
        stats["inputs"] += 1
        finding = check(data)
        if finding:
            record(data, finding)
            dump()
        elif stats["inputs"] % 200 == 0:  # libFuzzer ends the process with exit(): keep the report current
            dump()

    atexit.register(dump)
    logging.getLogger("transferkit").setLevel(logging.ERROR)  # the empty-text warnings are expected here
    if atheris is None:
        stats["engine"] = "hypothesis (atheris not installed)"
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        seeds = [p.read_bytes() for p in sorted(corpus.iterdir())]
        gen = st.one_of(st.binary(max_size=4096), st.sampled_from(seeds),
                        st.tuples(st.sampled_from(seeds), st.integers(0, 4096), st.binary(max_size=64)).map(
                            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]):]))

        @settings(max_examples=10**9, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(gen)
        def loop(data: bytes) -> None:
            if time.time() - start > seconds:
                raise TimeoutError
            one(data)

        try:
            loop()
        except TimeoutError:
            pass
        return
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", "-rss_limit_mb=3072", "-max_len=65536",
                   "-print_final_stats=0", str(corpus)], one)
    atheris.Fuzz()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=120, help="fuzzing time per target")
    p.add_argument("--quick", action="store_true", help="20 s per target")
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--findings", default="bench/fuzz-findings", help="where inputs that found something are saved")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--report", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    seconds = 20 if args.quick else args.seconds
    if args.child:
        _run_target(args.child, seconds, Path(args.findings), Path(args.report))
        return
    results = []
    for target in args.targets.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            report = Path(fh.name)
        env = dict(os.environ, TRANSFERKIT_PROGRESS="0")
        print(f"fuzzing {target} for {seconds} s ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--child", target, "--seconds", str(seconds),
                               "--findings", args.findings, "--report", str(report)],
                              env=env, capture_output=True, text=True)
        try:
            stats = json.loads(report.read_text())
        except (OSError, ValueError):
            stats = {"target": target, "crashed": True, "stderr_tail": proc.stderr[-2000:]}
        stats["exit_code"] = proc.returncode
        results.append(stats)
        report.unlink(missing_ok=True)
    print(json.dumps({"benchmark": "fuzz_loaders", "seconds_per_target": seconds, "targets": results}, indent=2))


if __name__ == "__main__":
    csv.field_size_limit()  # (the csv module is what the CSV target exercises)
    main()
