"""`extract`: write a backbone's embeddings of DATA to Parquet or .npy, locally or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import TTA, AllowOutside, Engine, LabelCol, Precision, fail, print_json, say, user_errors


def load_items(data: str, modality: str, text_column: str | None, path_column: str | None,
               label_column: str, allow_outside_paths: bool = False) -> tuple[Any, list[Any] | None]:
    """``(X, labels or None)`` for DATA: a folder (class subfolders give labels; otherwise every image under it),
    a CSV or Parquet table of paths or texts (labels when its label column exists), a .txt file of texts, or a
    built-in dataset."""
    from ..data.csv_checks import TABLE_SUFFIXES
    from ..data.datasets import BUILTIN, list_images, load_csv, load_image_folder
    from ..exceptions import DataError

    path = Path(data).expanduser()
    if not path.exists():
        if data in BUILTIN:
            ds = BUILTIN[data]()
            return ds.X, None if ds.y is None else list(ds.y)
        raise fail(f"path {data!r} does not exist; pass a folder of images, a CSV, a .txt file or a built-in "
                   f"dataset ({', '.join(BUILTIN)})")
    if path.suffix.lower() in TABLE_SUFFIXES:
        ds = load_csv(path, text_column=text_column, path_column=path_column, label_column=label_column,
                      require_labels=False, allow_outside_paths=allow_outside_paths)
        return ds.X, None if ds.y is None else list(ds.y)
    if path.suffix.lower() == ".txt":
        try:
            lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as exc:
            raise fail(f"{data!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8, one text "
                       "per line") from None
        if not lines:
            raise fail(f"{data!r} has no non-empty lines")
        return lines, None
    if modality == "text":
        raise fail(f"{modality} backbone: pass a CSV with a text column or a .txt file, not {data!r}")
    if path.is_dir():
        try:
            ds = load_image_folder(path)
            if len(ds.X) == len(list_images(path)):  # every image sits in a class subfolder
                return ds.X, list(ds.y)
        except DataError:
            pass
    return list_images(path), None


@user_errors
def extract(
    data: Annotated[str, typer.Argument(help="Images (folder or file), a CSV or Parquet table (paths or texts, "
                                             "optional label), a .txt file with one text per line, or a built-in "
                                             "dataset name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: NAME.parquet or NAME.npy (with NAME.ids.json); "
                                                          "with --ray, a folder of Parquet shards.")],
    backbone: Annotated[str, typer.Option(help="Backbone name (see `transferkit backbones`).")] = "mobilenet_v2",
    layer: Annotated[str | None, typer.Option(help="Feature layer (default: the backbone's last).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Square input size for image backbones.")] = None,
    weights: Annotated[str | None, typer.Option(help="Local weights file instead of the registered weights.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Items per forward pass.")] = None,
    engine: Annotated[Engine, typer.Option(help="Execution engine.")] = Engine.auto,
    tta: Annotated[TTA, typer.Option(help="Test-time augmentation of image embeddings.")] = TTA.none,
    precision: Annotated[Precision, typer.Option(help="int8: an int8 quantization of the backbone (about 2x faster "
                                                      "on CPU), calibrated on up to 256 of the items (stratified "
                                                      "by label when known).")] = Precision.fp32,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV column holding texts.")] = None,
    path_column: Annotated[str | None, typer.Option("--path-column", help="CSV column holding image paths.")] = None,
    label_column: LabelCol = "label",
    allow_outside_paths: AllowOutside = False,
    chunk_size: Annotated[int, typer.Option(help="Items per row group (and per resumable part).")] = 1024,
    ray: Annotated[bool, typer.Option("--ray", help="Run on Ray Data (`pip install 'transferkit[ray]'`); "
                                                    "a local cluster unless --ray-address is given.")] = False,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to join, e.g. "
                                                                          "ray://head:10001 or auto (implies --ray).")] = None,
    workers: Annotated[int, typer.Option(help="Ray: extraction actors (one ONNX session each).")] = 1,
    threads_per_worker: Annotated[int, typer.Option(help="Ray: intra-op threads of each actor's session.")] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Write the embeddings of every item in DATA, one row per item (id, label when known, embedding).

    Reruns skip the items already written, so a killed run resumes where it stopped."""
    from .._utils import check_output_file
    from ..backbones import get_config
    from ..extraction import Extractor

    if not (ray or ray_address):  # one file (and a hidden parts folder beside it): checked before any work
        from ..extraction.writer import output_format

        output_format(out)
        check_output_file(out, "--out")
    config = get_config(backbone)
    X, labels = load_items(data, config.modality, text_column, path_column, label_column, allow_outside_paths)
    if (ray or ray_address) and precision is not Precision.fp32:
        raise fail(f"--precision {precision.value} is not available with --ray; drop --ray or use --precision fp32")
    if ray or ray_address:
        from ..extraction.ray_extract import extract_with_ray

        summary = extract_with_ray(X, out, backbone=config, layer=layer, labels=labels, address=ray_address,
                                   workers=workers, threads_per_worker=threads_per_worker, batch_size=batch_size,
                                   engine=engine.value, image_size=image_size, weights=weights, tta=tta.value)
    else:
        from ..extraction.writer import write_embeddings

        extractor = Extractor(config, layer, weights=weights, image_size=image_size, batch_size=batch_size,
                              engine=engine.value, tta=tta.value, show_progress=progress, precision=precision.value)
        if precision is Precision.int8 and config.modality == "image":
            extractor.calibrate(X, labels)  # on the whole input, so a resumed run gets the same graph and key
        summary = write_embeddings(extractor, X, out, labels=labels, chunk_size=chunk_size, show_progress=progress)
    say(f"wrote {summary['rows']} rows ({summary['computed']} computed, {summary['skipped']} already written) "
        f"of {summary['dim']}-d embeddings to {out}")
    print_json(summary)
