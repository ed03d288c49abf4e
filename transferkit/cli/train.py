"""Training options shared by `fit --strategy fine-tune`, and the `lr-find` command."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..data.augment import AUGMENT_LEVELS
from ._common import AllowOutside, LabelCol, fail, parse_name_values, print_json, say, user_errors

#: the augmentation levels, from the one place that defines them
Augment = Enum("Augment", {level: level for level in AUGMENT_LEVELS}, type=str)  # type: ignore[misc]


def check_unfreeze(value: str) -> str:
    """typer callback: ``top-N``, ``all`` or ``none``."""
    if value in ("all", "none") or (value.startswith("top-") and value[4:].isdigit() and int(value[4:]) >= 1):
        return value
    raise typer.BadParameter(f"{value!r} is not one of top-N (e.g. top-2), all, none")


def parse_fine_tune_params(pairs: list[str] | None) -> dict[str, Any] | None:
    """``["dropout=0.3", "gradual=true"]`` → ``{"dropout": 0.3, "gradual": True}``."""
    return parse_name_values(pairs, "--fine-tune-param", "dropout=0.3")


def data_parallel(nproc: int, trains_network: bool, strategy: str, batch_size: int | None) -> int | None:
    """``fit --nproc N``: check the options; in the launching process, rerun this command line (without
    ``--nproc``) in ``N`` processes through ``torchrun`` and return its exit code. In a process torchrun
    started (``WORLD_SIZE`` set: by ``--nproc``, or a user's own ``torchrun -m transferkit fit ...``), join the
    process group and return ``None``: the fit runs, and ``transferkit.training.distributed`` makes the
    processes one training run."""
    import os
    import subprocess
    import sys

    if nproc < 1:
        raise fail(f"--nproc {nproc} is not allowed; give 1 or more processes")
    launched = int(os.environ.get("WORLD_SIZE") or 1)
    size = launched if launched > 1 else nproc
    if size == 1:
        return None
    if not trains_network:
        raise fail(f"--nproc trains a network in several processes; strategy {strategy} trains no network, drop it "
                   "or use --strategy fine-tune")
    if batch_size is not None and batch_size % size:
        raise fail(f"--batch-size {batch_size} is the global batch and must split evenly over {size} processes; "
                   f"use a multiple of {size}")
    if launched > 1:
        if nproc not in (1, launched):
            raise fail(f"--nproc {nproc} but torchrun started {launched} processes; give the same number")
        from ..training.distributed import init_from_env

        init_from_env()
        return None
    from ..training.distributed import threads_per_process, torchrun_command

    args = _without_nproc(sys.argv[1:])
    if "fit" not in args:
        raise fail("--nproc reruns the `transferkit fit` command line under torchrun; run it from a shell")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process(nproc))}
    return subprocess.run(torchrun_command(nproc, args), env=env, check=False).returncode


def _without_nproc(args: list[str]) -> list[str]:
    """The command line without ``--nproc N`` / ``--nproc=N`` (torchrun starts the processes instead)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


@user_errors
def lr_find(
    data: Annotated[str, typer.Argument(help="Folder of class subfolders, a CSV file, or a built-in dataset name.")],
    backbone: Annotated[str, typer.Option(help="Backbone name (see `transferkit backbones`).")] = "mobilenet_v2",
    layer: Annotated[str, typer.Option(help="Feature layer the head sits on: 'last' or a layer name.")] = "last",
    plot: Annotated[Path, typer.Option(help="PNG file for the loss-vs-learning-rate plot.")] = Path("lr_find.png"),
    start_lr: Annotated[float, typer.Option(help="Smallest learning rate of the ramp.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(help="Largest learning rate of the ramp.")] = 10.0,
    num_it: Annotated[int, typer.Option(help="Training steps of the ramp (it stops earlier when the loss diverges).")] = 100,
    image_size: Annotated[int | None, typer.Option(help="Square input size (default: as fine-tuning, at most 112 px).")] = None,
    augment: Annotated[Augment, typer.Option(help="Training augmentation, as in fine-tuning.")] = Augment.light,
    batch_size: Annotated[int | None, typer.Option(help="Items per step (default: 32 images, 16 texts).")] = None,
    weights: Annotated[str | None, typer.Option(help="Local weights file or directory to use instead of the registered ones.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV column holding the texts.")] = None,
    path_column: Annotated[str | None, typer.Option("--path-column", help="CSV column holding image paths.")] = None,
    label_column: LabelCol = "label",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    allow_outside_paths: AllowOutside = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the rates and losses as JSON.")] = False,
) -> None:
    """Learning-rate range test for fine-tuning: train the new head on the frozen base with an exponentially
    growing learning rate, plot the loss against it, and suggest a value for `fit --strategy fine-tune --lr`."""
    import numpy as np

    from ..backbones import get_config, load_backbone
    from ..data.datasets import check_labels, load_dataset
    from ..exceptions import DataError
    from ..strategies.fine_tuning import fine_tune_config, fine_tune_image_size
    from ..strategies.fine_tuning import lr_find as run_lr_find

    dataset = load_dataset(data, text_column=text_column, path_column=path_column, label_column=label_column,
                           allow_outside_paths=allow_outside_paths)
    config = get_config(backbone)
    if config.modality != dataset.modality:
        raise DataError(f"backbone {config.name!r} takes {config.modality} input but the data is {dataset.modality}; "
                        f"pick a {dataset.modality} backbone (see `transferkit backbones`)")
    if image_size is not None and config.modality != "image":
        raise fail(f"--image-size applies to image backbones; {config.name} takes text")
    classes, y_index = np.unique(check_labels(dataset.y), return_inverse=True)
    ft = fine_tune_config("lr-find", config, augment=augment.value, batch_size=batch_size, seed=seed)
    base = load_backbone(config.name, weights=weights, image_size=fine_tune_image_size(config, image_size), seed=seed)
    say(f"LR range test: {config.name}, head on the frozen base, {len(y_index)} items, {start_lr:g} → {end_lr:g} "
        f"over at most {num_it} steps")
    result = run_lr_find(base, dataset.X, y_index, len(classes), ft, layer=layer, start_lr=start_lr, end_lr=end_lr,
                         num_it=num_it, progress=progress)
    result.plot(plot, title=f"LR range test — {config.name}, {dataset.name or data}")
    if json_output:
        print_json({**result.to_dict(), "plot": str(plot)})
        return
    steep = f"{result.steepest:.2g}" if result.steepest is not None else "n/a"
    typer.echo(f"suggested learning rate: {result.suggestion:.2g} (steepest descent {steep}, valley {result.valley:.2g}; "
               f"loss lowest at {result.lr_at_minimum:.2g}{', diverged after' if result.diverged else ''})")
    typer.echo(f"plot: {plot}")
    typer.echo(f"use it with: transferkit fit {data} --backbone {config.name} --strategy fine-tune --lr {result.suggestion:.2g}")
