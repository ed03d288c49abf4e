#!/usr/bin/env python
"""Audio transfer on data built here from Debian packages (no download at run time).

(a) ``words``: ten command words spoken by ``espeak-ng`` in English accents (``gmw/en*`` voices) with voice
    variants (``+m1``…``+f4``), random speed and pitch, and background noise at a random SNR; train on some
    accents, test on accents never heard in training.
(b) ``drums``: one-shot samples of the Debian ``hydrogen-drumkits`` kits sorted by file name into kick,
    snare, hi-hat, tom and cymbal, each with pitch-shift / gain / noise variants; train and test split by kit.
(c) ``words-long`` (not in the default ``--tasks``): the words inside carrier phrases at a random place in
    3-8 s of background noise, to compare padded and clip-length Whisper on several-second clips.

For each task and seed: the MFCC-statistics baseline, feature extraction (logistic-regression head) on each
audio backbone, the paired-bootstrap verdict of the best backbone against the baseline, a fine-tuning arm
(the backbone with the best training-part LogME, library defaults; ``--finetune none`` skips), and transferability
scores of pretrained vs random-initialised backbones (``--no-rank`` skips them). Extraction speed in clips
per second of 1-s clips (padded and clip-length Whisper) is measured in the same run (``--no-speed`` skips).

Prints one JSON object. Usage:
    nice -n 5 flock /tmp/bench.lock python bench/audio.py --quick
    nice -n 5 flock /tmp/bench.lock python bench/audio.py --seeds 0,1,2
    nice -n 5 flock /tmp/bench.lock python bench/audio.py --speed-only        # the clips/s table alone
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
ACCENTS = ["gmw/en", "gmw/en-US", "gmw/en-GB-scotland", "gmw/en-GB-x-gbclan", "gmw/en-GB-x-rp",
           "gmw/en-GB-x-gbcwmd", "gmw/en-029", "gmw/en-US-nyc"]
VARIANTS = [f"m{i}" for i in range(1, 8)] + [f"f{i}" for i in range(1, 5)]
DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
DRUM_CLASSES = [  # checked in this order on the lower-cased file name
    ("hihat", r"hi-?hat|hh|chh|ohh|^ho_|hat"),
    ("cymbal", r"crash|ride|cymbal|china|splash|^cc_|^rc_|^rd|cra_"),
    ("kick", r"kick|^bd|bassdrum|_bd_|_k_"),
    ("snare", r"snare|^sd_|_sn_|^sn|jsnare"),
    ("tom", r"tom|^ft_|^t\d_|floortom"),
]
RATE = 16000


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish background noise (white noise through a one-pole low-pass) at ``snr_db`` below the signal."""
    from scipy.signal import lfilter

    pink = lfilter([1.0], [1.0, -0.97], rng.standard_normal(len(wave)))
    p_sig = float(np.mean(wave**2)) + 1e-12
    pink *= np.sqrt(p_sig / (np.mean(pink**2) * 10 ** (snr_db / 10)))
    return (wave + pink).astype(np.float32)


CARRIERS = ["{}", "please say {} now", "I said {} again", "the next word is {}", "{} is the word"]


def in_noise_bed(wave: np.ndarray, seconds: float, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``wave`` at a random place in ``seconds`` of pink-ish noise, ``snr_db`` below the speech's own power."""
    from scipy.signal import lfilter

    total = max(len(wave), int(seconds * RATE))
    start = int(rng.integers(0, total - len(wave) + 1))
    bed = lfilter([1.0], [1.0, -0.97], rng.standard_normal(total))
    bed *= np.sqrt((float(np.mean(wave**2)) + 1e-12) / (np.mean(bed**2) * 10 ** (snr_db / 10)))
    bed[start : start + len(wave)] += wave
    return bed.astype(np.float32)


def build_words(root: Path, quick: bool, seed: int = 0, long: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Spoken words as 16 kHz wav files: (paths, labels, accent index). ``long``: each word inside a carrier
    phrase (one of :data:`CARRIERS`, the same five for every word) at a random place in 3-8 s of background
    noise, the several-second clips of the clip-length check."""
    from transferkit.data.audio import read_audio

    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench/audio.py needs espeak-ng: apt-get install espeak-ng")
    import soundfile as sf

    rng = np.random.default_rng(seed)
    variants = VARIANTS[::3] if quick else VARIANTS
    paths, labels, groups = [], [], []
    for a, accent in enumerate(ACCENTS):
        for v in variants:
            for word in WORDS:
                out = root / f"{a}_{v}_{word}.wav"
                speed, pitch = int(rng.integers(120, 200)), int(rng.integers(25, 75))
                raw = root / "raw.wav"
                text = CARRIERS[int(rng.integers(len(CARRIERS)))].format(word) if long else word
                subprocess.run(["espeak-ng", "-v", f"{accent}+{v}", "-s", str(speed), "-p", str(pitch), "-w",
                                str(raw), text], check=True, capture_output=True)
                wave = read_audio(raw) * float(rng.uniform(0.3, 1.0))
                snr = float(rng.uniform(5, 30))
                wave = in_noise_bed(wave, float(rng.uniform(3, 8)), snr, rng) if long else add_noise(wave, snr, rng)
                sf.write(out, wave, RATE)
                paths.append(str(out))
                labels.append(word)
                groups.append(a)
    return paths, np.asarray(labels), np.asarray(groups)


def drum_class(name: str) -> str | None:
    low = name.lower()
    for cls, pattern in DRUM_CLASSES:
        if re.search(pattern, low):
            return cls
    return None


def build_drums(root: Path, quick: bool, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Drum one-shots (first 1.5 s) with variants: (paths, labels, kit index)."""
    import soundfile as sf

    from transferkit.data.audio import read_audio, resample
    from transferkit.exceptions import AudioReadError

    if not DRUMKITS.is_dir():
        raise SystemExit("bench/audio.py needs the drum kits: apt-get install hydrogen-drumkits")
    rng = np.random.default_rng(seed)
    n_variants, cap = (1, 5) if quick else (4, 10**6)  # quick: one variant, at most 5 samples per kit and class
    taken: dict[tuple[int, str], int] = {}
    paths, labels, groups = [], [], []
    kits = sorted(d for d in DRUMKITS.iterdir() if d.is_dir())
    for k, kit in enumerate(kits):
        for f in sorted(kit.iterdir()):
            cls = drum_class(f.stem)
            if cls is None or f.suffix.lower() not in (".wav", ".flac", ".aiff") or taken.get((k, cls), 0) >= cap:
                continue
            try:
                wave = read_audio(f)[: int(1.5 * RATE)]
            except AudioReadError:
                continue  # e.g. the kits' empty placeholder samples
            taken[(k, cls)] = taken.get((k, cls), 0) + 1
            for v in range(n_variants):
                semitones = float(rng.uniform(-2, 2))  # pitch shift by resampling (changes length too)
                shifted = resample(wave, int(RATE * 2 ** (semitones / 12)), RATE)
                varied = add_noise(shifted * float(rng.uniform(0.3, 1.0)), float(rng.uniform(10, 40)), rng)
                out = root / f"{k}_{f.stem.replace(' ', '_')}_{v}.wav"
                sf.write(out, varied, RATE)
                paths.append(str(out))
                labels.append(cls)
                groups.append(k)
    labels_arr, groups_arr = np.asarray(labels), np.asarray(groups)
    return paths, labels_arr, groups_arr


def group_split(groups: np.ndarray, labels: np.ndarray, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Held-out groups (accents / kits) chosen by ``seed``; every test class must occur in training."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    for _ in range(100):
        test_groups = rng.choice(uniq, max(1, int(round(test_fraction * len(uniq)))), replace=False)
        test = np.isin(groups, test_groups)
        if set(labels[test]) <= set(labels[~test]):
            return np.flatnonzero(~test), np.flatnonzero(test)
    raise SystemExit("no group split keeps every test class in training")


BACKBONES: list[str] | None = None  # --backbones


def backbones(quick: bool) -> list[str]:
    if BACKBONES:
        return BACKBONES
    return ["whisper-tiny-en", "whisper-base", "crepe-tiny"] + ([] if quick else ["crepe"])


def config_of(name: str):  # noqa: ANN201
    """A registry name, or ``NAME:clip`` / ``NAME:padded`` for Whisper run on the clip's own length (position
    embeddings sliced; the default) / in 30-s padded windows."""
    from transferkit.backbones import get_config

    base, _, mode = name.partition(":")
    if mode not in ("clip", "padded"):
        return base
    config = get_config(base)
    return replace(config, extra={**config.extra, "clip_length": mode == "clip"})


def run_task(name: str, X: list[str], y: np.ndarray, groups: np.ndarray, seeds: list[int], quick: bool,
             rank: bool) -> dict:
    from transferkit.evaluation.baselines import make_baseline
    from transferkit.evaluation.verdict import transfer_verdict
    from transferkit.extraction import Extractor
    from transferkit.heads import fit_head

    feats = {b: Extractor(config_of(b), show_progress=False).extract(X) for b in backbones(quick)}
    rows = []
    for seed in seeds:
        tr, te = group_split(groups, y, seed, 0.3 if name == "drums" else 0.375)
        classes, yi = np.unique(y[tr], return_inverse=True)
        row: dict = {"seed": seed, "train": int(len(tr)), "test": int(len(te)),
                     "test_groups": sorted(int(g) for g in np.unique(groups[te]))}
        t0 = time.perf_counter()
        base = make_baseline("audio", random_state=seed).fit([X[i] for i in tr], y[tr])
        base_pred = base.predict([X[i] for i in te])
        row["mfcc_logreg"] = round(float(np.mean(base_pred == y[te])), 4)
        row["mfcc_seconds"] = round(time.perf_counter() - t0, 1)
        preds = {}
        for b, F in feats.items():
            head, _ = fit_head("logreg", F[tr], yi, random_state=seed)
            preds[b] = classes[head.predict_index(F[te])]
            row[b] = round(float(np.mean(preds[b] == y[te])), 4)
        best = max(preds, key=lambda b: row[b])
        v = transfer_verdict(y[te], preds[best], base_pred, baseline_name=base.name, modality="audio", seed=seed)
        row["verdict"] = {"backbone": best, **{k: v[k] for k in ("verdict", "gain", "ci_low", "ci_high", "metric")
                                               if k in v}}
        if FINETUNE != "none":
            chosen = FINETUNE if FINETUNE != "auto" else pick_by_logme(feats, tr, y)
            t0 = time.perf_counter()
            pred, history = fine_tune_arm(chosen, [X[i] for i in tr], yi, classes, [X[i] for i in te], seed)
            key = f"fine-tune {chosen}"
            row[key] = round(float(np.mean(pred == y[te])), 4)
            row["fine_tune"] = {"backbone": chosen, "seconds": round(time.perf_counter() - t0, 1), **history}
            v = transfer_verdict(y[te], pred, base_pred, baseline_name=base.name, modality="audio", seed=seed)
            row["verdict_fine_tune"] = {k: v[k] for k in ("verdict", "gain", "ci_low", "ci_high") if k in v}
        if rank:
            row["rank"] = rank_scores(X, y, tr, feats, seed)
        rows.append(row)
        print(json.dumps({"task": name, **row}), file=sys.stderr, flush=True)
    summary = {}
    tuned = sorted({k for r in rows for k in r if k.startswith("fine-tune ")})
    for key in ["mfcc_logreg", *feats, *tuned]:
        vals = np.array([r[key] for r in rows if key in r])
        summary[key] = {"mean": round(float(vals.mean()), 4), "std": round(float(vals.std()), 4)}
    return {"items": len(X), "classes": sorted(set(y.tolist())), "groups": int(len(np.unique(groups))),
            "per_seed": rows, "summary": summary}


FINETUNE = "auto"  # --finetune
FT_UNFREEZE = "all"  # --ft-unfreeze


def pick_by_logme(feats: dict, tr: np.ndarray, y: np.ndarray) -> str:
    """The feature-extraction backbone with the highest LogME on the training part (no test labels used)."""
    from transferkit.selection import compute_score

    return max(feats, key=lambda b: float(compute_score("logme", feats[b][tr], y[tr])))


def fine_tune_arm(name: str, X_train: list[str], y_index: np.ndarray, classes: np.ndarray, X_test: list[str],
                  seed: int) -> tuple[np.ndarray, dict]:
    """Fine-tune ``name`` with the library's defaults (two stages, waveform augmentation + SpecAugment, the
    refitted head; ``--ft-unfreeze`` blocks) and predict the test clips with the fine-tuned network."""
    from transferkit.backbones import load_backbone
    from transferkit.extraction import Extractor
    from transferkit.strategies.fine_tuning.config import FineTuneConfig
    from transferkit.strategies.fine_tuning.train import fine_tune

    result = fine_tune(load_backbone(config_of(name)), X_train, y_index, len(classes),
                       FineTuneConfig(unfreeze=FT_UNFREEZE, seed=seed), progress=False)
    features = Extractor(result.backbone, cache=False, show_progress=False, engine="torch").extract(X_test)
    stages = result.history["stages"]
    return classes[result.head.predict_index(features)], {
        "unfrozen": result.history["unfrozen_blocks"], "epochs_run": [st["epochs_run"] for st in stages]}


def rank_scores(X: list[str], y: np.ndarray, tr: np.ndarray, feats: dict, seed: int) -> dict:
    """LogME of each pretrained backbone and of its random-initialised control on the training part."""
    from transferkit.extraction import Extractor
    from transferkit.selection import compute_score

    out = {}
    for b, F in feats.items():
        out[b] = round(float(compute_score("logme", F[tr], y[tr])), 4)
        R = Extractor(config_of(b), pretrained=False, seed=0, show_progress=False).extract([X[i] for i in tr])
        out[f"{b} (random init)"] = round(float(compute_score("logme", R, y[tr])), 4)
    return out


def speed(n: int = 24) -> dict:
    """Clips per second of 1-s clips, cache off, 2 cores: eager PyTorch (the plain loop) and the engine's
    ONNX Runtime graph, in the same run."""
    import torch

    from transferkit.backbones import get_config
    from transferkit.extraction import Extractor

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(RATE)).astype(np.float32) for _ in range(n)]
    out = {}
    for name in ["whisper-tiny-en", "whisper-base", "crepe-tiny", "crepe"]:
        configs = [(name, get_config(name))]
        if name.startswith("whisper"):
            configs = [(f"{name} (padded)", config_of(f"{name}:padded")), (f"{name} (clip length)", config_of(f"{name}:clip"))]
        for label, config in configs:
            row = {}
            for engine in ("torch", "onnx"):
                ex = Extractor(config, cache=False, show_progress=False, batch_size=8, engine=engine)
                ex.extract(waves[:2])  # builds (and for onnx exports and checks) the graph
                t0 = time.perf_counter()
                ex.extract(waves)
                row[engine] = round(n / (time.perf_counter() - t0), 2)
            row["onnx_vs_torch"] = round(row["onnx"] / row["torch"], 2)
            out[label] = row
            print(json.dumps({"speed": label, **row}), file=sys.stderr, flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer voices/variants, no full-size CREPE, one seed")
    p.add_argument("--seeds", default=None)
    p.add_argument("--tasks", default="words,drums", help="words, drums, words-long (several-second clips)")
    p.add_argument("--no-rank", action="store_true")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--speed-only", action="store_true", help="only the clips/s table (no data sets, no accuracy)")
    p.add_argument("--backbones", default=None,
                   help="comma-separated, e.g. whisper-tiny-en:padded,whisper-tiny-en:clip,crepe-tiny (':clip': Whisper "
                        "on the clip's own length, the default; ':padded': 30-s padded windows); default: every audio "
                        "backbone")
    p.add_argument("--finetune", default="auto",
                   help="backbone of the fine-tuning arm (e.g. whisper-tiny-en:clip); 'auto': per seed the one with "
                        "the highest LogME on the training part; 'none': no fine-tuning arm")
    p.add_argument("--ft-unfreeze", default="all", help="blocks the fine-tuning arm trains: all, top-N")
    args = p.parse_args()
    global BACKBONES, FINETUNE, FT_UNFREEZE
    BACKBONES = args.backbones.split(",") if args.backbones else None
    FINETUNE, FT_UNFREEZE = args.finetune, args.ft_unfreeze
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    result: dict = {"quick": args.quick, "seeds": seeds, "machine": "shared 2-core CPU",
                    "backbones": backbones(args.quick)}
    with tempfile.TemporaryDirectory() as tmp:
        for task in [] if args.speed_only else args.tasks.split(","):
            root = Path(tmp) / task
            root.mkdir()
            t0 = time.perf_counter()
            if task == "drums":
                X, y, groups = build_drums(root, args.quick)
            else:
                X, y, groups = build_words(root, args.quick, long=task == "words-long")
            built = time.perf_counter() - t0
            result[task] = run_task(task, X, y, groups, seeds, args.quick, not args.no_rank)
            result[task]["build_seconds"] = round(built, 1)
    if not args.no_speed:
        result["clips_per_second_1s"] = speed()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
