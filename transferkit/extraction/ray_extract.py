"""Embeddings on a Ray cluster: the same engine in Ray Data ``map_batches`` actors, written as Parquet shards.

Items (image paths or texts) become a Ray dataset of ``id`` / ``item`` / ``label`` rows, split into blocks of
``block_size``; each block goes to one of ``workers`` actors (:class:`EmbedBatch`), each holding one
:class:`Extractor` with one ONNX Runtime session of ``threads_per_worker`` intra-op threads (built once per
actor). Actors return Arrow tables of the schema :func:`transferkit.extraction.writer.embedding_schema`
describes, so every shard has the same columns and metadata as ``transferkit extract`` without Ray.

Fault tolerance is Ray's: Ray Data's actor pool restarts actors whose process dies (``max_restarts=-1``)
and retries the task that was running (``max_task_retries=-1``), its defaults since Ray 2.x; the output is written by Ray Data's
Parquet sink only from completed blocks, into a temporary sibling folder that is renamed onto ``out`` when
every block is written, so no item is lost or duplicated by a killed worker. The embedding cache is not used
on the workers (each node would hold its own; the output is the shared product).

``ray`` is an optional dependency: ``pip install 'transferkit[ray]'``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_write_json
from ..backbones import BackboneConfig, get_config
from ..exceptions import ConfigError, DataError
from .engine import Extractor
from .writer import describe, embedding_schema, embedding_table, item_ids

#: the file in the output folder with the metadata and row count
SUMMARY_FILE = "_transferkit.json"


def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray Data: pip install 'transferkit[ray]'") from exc
    return ray


class EmbedBatch:
    """A Ray Data callable class: Arrow batches of ``id`` / ``item`` [/ ``label``] → embedding tables."""

    def __init__(self, config: BackboneConfig, layer: str | None, options: dict[str, Any], labels: bool,
                 threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))  # the ONNX session's intra-op threads follow torch's
        os.environ["OMP_NUM_THREADS"] = str(max(1, threads))
        self.extractor = Extractor(config, layer, cache=False, show_progress=False, num_workers=1, **options)
        self.extractor.runner()  # one session per actor, built (and the graph exported/verified) once
        self.labels = labels
        self.schema = embedding_schema(self.extractor.feature_dim, describe(self.extractor, labels), labels)

    def __call__(self, batch: Any) -> Any:
        items = batch.column("item").to_pylist()
        feats = self.extractor.extract(items)
        labels = batch.column("label").to_pylist() if self.labels else None
        return embedding_table(batch.column("id").to_pylist(), feats, labels, self.schema)


def items_dataset(X: Any, modality: str, labels: list[Any] | None, block_size: int) -> Any:
    """A Ray dataset of ``id`` / ``item`` [/ ``label``] string rows in blocks of ``block_size`` items."""
    import pyarrow as pa

    ray = require_ray()
    if isinstance(X, np.ndarray) and X.dtype.kind not in ("U", "S", "O"):
        raise DataError("--ray reads items by path or text; an in-memory image array cannot be sent to a cluster, "
                        "write the images to files first")
    ids = item_ids(X, modality)
    items = [str(x) for x in X]
    if labels is not None and len(labels) != len(items):
        raise DataError(f"{len(labels)} labels for {len(items)} items; pass one label per item")
    columns: dict[str, Any] = {"id": pa.array(ids, pa.string()), "item": pa.array(items, pa.string())}
    if labels is not None:
        columns["label"] = pa.array([None if v is None else str(v) for v in labels], pa.string())
    table = pa.table(columns)
    blocks = [table.slice(s, block_size) for s in range(0, table.num_rows, block_size)]
    return ray.data.from_arrow(blocks)


def extract_with_ray(
    X: Any,
    out: str | os.PathLike[str],
    *,
    backbone: str | BackboneConfig,
    layer: str | None = None,
    labels: list[Any] | None = None,
    address: str | None = None,
    workers: int = 1,
    threads_per_worker: int = 1,
    batch_size: int | None = None,
    block_size: int = 256,
    engine: str = "auto",
    image_size: int | None = None,
    weights: str | None = None,
    tta: str = "none",
    actor_class: type = EmbedBatch,
) -> dict[str, Any]:
    """Write the embeddings of ``X`` (paths or texts) as Parquet shards in the folder ``out`` using Ray.

    ``address=None`` starts a local Ray cluster (shut down at the end) unless one is already connected.
    ``actor_class`` is the callable class run in the actors (a subclass of :class:`EmbedBatch`).
    Returns ``{"path", "format", "rows", "computed", "skipped", "dim", "shards", "workers"}``.
    """
    ray = require_ray()
    if workers < 1 or threads_per_worker < 1 or block_size < 1:
        raise ConfigError(f"workers={workers}, threads_per_worker={threads_per_worker} and block_size={block_size} "
                          "must each be at least 1")
    config = backbone if isinstance(backbone, BackboneConfig) else get_config(backbone)
    options = {"image_size": image_size, "weights": weights, "batch_size": batch_size, "engine": engine, "tta": tta}
    probe = Extractor(config, layer, cache=False, show_progress=False, **options)
    meta = describe(probe, labels is not None)
    out = Path(out).expanduser()
    if out.suffix.lower() == ".npy":
        raise ConfigError(f"--ray writes a folder of Parquet shards; pass a folder for --out, not {str(out)!r}")
    if out.exists() and not (out / SUMMARY_FILE).exists():
        raise ConfigError(f"{str(out)!r} exists and is not a Ray embeddings folder; pass a new --out")
    started = False
    if not ray.is_initialized():
        # one CPU more than the actors take, for Ray Data's write tasks to drain finished blocks meanwhile
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers * threads_per_worker + 1}
        ray.init(**kwargs, log_to_driver=False, include_dashboard=False, configure_logging=False)
        started = address is None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        ds = items_dataset(X, config.modality, labels, block_size)
        embedded = ds.map_batches(
            actor_class,
            fn_constructor_args=(config, layer, options, labels is not None, threads_per_worker),
            batch_format="pyarrow",
            batch_size=None,  # one block per call: the block is the unit Ray retries
            concurrency=workers,
            num_cpus=threads_per_worker,
        )  # Ray Data's actor pool restarts dead actors and retries their tasks by default (max_restarts=-1)
        embedded.write_parquet(str(tmp / "shards"))
        shards = sorted((tmp / "shards").glob("*.parquet"))
        rows = _count_rows(shards)
        atomic_write_json(tmp / "shards" / SUMMARY_FILE, {"meta": meta, "rows": rows, "shards": len(shards)})
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp / "shards", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            ray.shutdown()
    return {"path": str(out), "format": "parquet-shards", "rows": rows, "computed": rows, "skipped": 0,
            "dim": meta["dim"], "shards": len(shards), "workers": workers}


def _count_rows(shards: list[Path]) -> int:
    import pyarrow.parquet as pq

    return int(sum(pq.ParquetFile(s).metadata.num_rows for s in shards))


def read_ray_metadata(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata recorded in a Ray output folder."""
    return json.loads((Path(out) / SUMMARY_FILE).read_text())["meta"]
