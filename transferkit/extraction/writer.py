"""Embeddings out of transferkit: one row per item written to Parquet (or ``.npy``), resumable.

The output has one row per item: ``id`` (the image path, or the item's position for arrays and texts),
``label`` when labels are known, and ``embedding`` as a ``fixed_size_list<float32>[D]`` column. The
schema's metadata key ``transferkit`` holds JSON with the backbone, weights sha256, layer, preprocessing
and dimension (see :func:`embedding_schema`), so a file says how its vectors were made.

Writing goes chunk by chunk (``chunk_size`` items, one Parquet row group each): every finished chunk is
written atomically as a part file in a hidden sibling folder ``.NAME.parts/``, so a run killed at any point
(even ``kill -9``) keeps every chunk it finished, and rerunning the same command computes only the items whose
``id`` is in no part yet. When all items are done the parts are joined, one row group at a time (memory
stays at one chunk), into a temporary file renamed onto ``out``; the parts folder is then removed. Rerunning
onto a finished file with more items appends the new ones; rerunning with the same items does nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._utils import atomic_path, atomic_write_json, progress
from ..data.items import ImagePaths, as_items
from ..exceptions import ConfigError, DataError
from .engine import SHARD_SIZE, Extractor

#: the schema metadata key holding the JSON description of the embeddings
META_KEY = b"transferkit"
FORMATS = ("parquet", "npy")


def output_format(out: str | Path) -> str:
    """``"parquet"`` or ``"npy"`` from ``out``'s suffix, or a :class:`ConfigError` naming the suffix."""
    suffix = Path(out).suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".npy":
        return "npy"
    raise ConfigError(f"output {str(out)!r} has suffix {suffix or '(none)'!r}; use .parquet or .npy")


def item_ids(X: Any, modality: str) -> list[str]:
    """One id per item: the path for image files, else the item's position (``"0"``, ``"1"`` ...)."""
    items = as_items(X, modality)
    if isinstance(items, ImagePaths):
        ids = [str(p) for p in items.paths]
    else:
        ids = [str(i) for i in range(len(items))]
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for i, key in enumerate(ids):
            if key in seen:
                raise DataError(f"item {key!r} appears twice (rows {seen[key]} and {i}); "
                                "extract writes one row per item, so drop the duplicate")
            seen[key] = i
    return ids


def describe(extractor: Extractor, labels: bool) -> dict[str, Any]:
    """What the schema metadata records: the feature identity, dimension and whether labels are present."""
    return {**extractor.identity(), "dim": int(extractor.feature_dim), "labels": bool(labels), "schema": 1}


def embedding_schema(dim: int, meta: dict[str, Any] | None = None, labels: bool = False) -> Any:
    """``id: string, [label: string,] embedding: fixed_size_list<float32>[dim]`` with ``meta`` as JSON."""
    import pyarrow as pa

    fields = [pa.field("id", pa.string(), nullable=False)]
    if labels:
        fields.append(pa.field("label", pa.string()))
    fields.append(pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False))
    metadata = {META_KEY: json.dumps(meta, sort_keys=True).encode()} if meta is not None else None
    return pa.schema(fields, metadata=metadata)


def embedding_table(ids: Sequence[str], feats: np.ndarray, labels: Sequence[Any] | None, schema: Any) -> Any:
    """A pyarrow table of ``schema`` for ``ids`` / ``feats (N, D)`` / ``labels``."""
    import pyarrow as pa

    feats = np.ascontiguousarray(feats, dtype=np.float32)
    dim = feats.shape[1]
    columns = [pa.array(list(ids), pa.string())]
    if labels is not None:
        columns.append(pa.array([None if v is None else str(v) for v in labels], pa.string()))
    columns.append(pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), dim))
    return pa.Table.from_arrays(columns, schema=schema)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``transferkit`` metadata of an embeddings file written by :func:`write_embeddings`."""
    path = Path(path)
    if output_format(path) == "npy":
        return json.loads(_npy_sidecar(path).read_text())["meta"]
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    if raw is None:
        raise DataError(f"{str(path)!r} has no transferkit metadata; it was not written by `transferkit extract`")
    return json.loads(raw)


def _npy_sidecar(path: Path) -> Path:
    return path.with_name(path.name[: -len(path.suffix)] + ".ids.json")


def _parts_dir(out: Path) -> Path:
    return out.with_name(f".{out.name}.parts")


def _check_meta(found: dict[str, Any], want: dict[str, Any], where: Path, out: Path) -> None:
    if found != want:
        diff = sorted(k for k in set(found) | set(want) if found.get(k) != want.get(k))
        raise ConfigError(f"{str(where)!r} holds embeddings made differently ({', '.join(diff)} differ); "
                          f"delete it or pass another --out than {str(out)!r}")


def _existing_tables(out: Path, fmt: str, schema: Any) -> Iterator[Any]:
    """The rows of a finished output file, one table per row group (Parquet) or per chunk (``.npy``)."""
    if not out.exists():
        return
    if fmt == "parquet":
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(out)
        for g in range(reader.num_row_groups):
            yield reader.read_row_group(g).replace_schema_metadata(schema.metadata)
        return
    side = json.loads(_npy_sidecar(out).read_text())
    feats = np.load(out, mmap_mode="r")
    labels = side.get("labels")
    for s in range(0, len(side["ids"]), SHARD_SIZE):
        e = s + SHARD_SIZE
        yield embedding_table(side["ids"][s:e], np.asarray(feats[s:e]), None if labels is None else labels[s:e],
                              schema)


def _done_ids(out: Path, fmt: str, parts: list[Path], meta: dict[str, Any]) -> tuple[set[str], list[Path]]:
    """The ids already written (in ``out`` or a part) and the parts still to join. A part whose ids are all in
    ``out`` was joined by a run killed before it removed the parts, and is dropped."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    if out.exists():
        if fmt == "npy":
            rows = np.load(out, mmap_mode="r").shape[0]
            side = json.loads(_npy_sidecar(out).read_text()) if _npy_sidecar(out).exists() else None
            if side is None or rows != len(side["ids"]):
                side = _repair_sidecar(out, side, rows, parts, meta)
            _check_meta(side["meta"], meta, out, out)
            done.update(side["ids"])
        else:
            _check_meta(read_metadata(out), meta, out, out)
            done.update(pq.read_table(out, columns=["id"]).column("id").to_pylist())
    keep = []
    for part in parts:
        part_ids = pq.read_table(part, columns=["id"]).column("id").to_pylist()
        if out.exists() and done.issuperset(part_ids):
            part.unlink()
            continue
        done.update(part_ids)
        keep.append(part)
    return done, keep


def _repair_sidecar(out: Path, side: dict[str, Any] | None, rows: int, parts: list[Path],
                    meta: dict[str, Any]) -> dict[str, Any]:
    """The ``.npy`` and its ``.ids.json`` are two files, renamed into place one after the other. A run killed
    between the two renames leaves the new ``.npy`` (the old sidecar's rows, then every part's, in order) with
    the old sidecar, or none, and the parts still there: the sidecar is rebuilt from them."""
    import pyarrow.parquet as pq

    old = side or {"meta": meta, "ids": [], "labels": [] if meta["labels"] else None}
    tables = [pq.read_table(p) for p in parts]
    if rows != len(old["ids"]) + sum(t.num_rows for t in tables):
        raise DataError(f"{str(out)!r} and {str(_npy_sidecar(out))!r} disagree on the number of rows "
                        "(a write was interrupted); delete both and rerun")
    new = {"meta": old["meta"], "ids": old["ids"] + [i for t in tables for i in t.column("id").to_pylist()],
           "labels": None if old["labels"] is None else
           old["labels"] + [v for t in tables for v in t.column("label").to_pylist()]}
    atomic_write_json(_npy_sidecar(out), new)
    return new


def _take(X: Any, index: Sequence[int]) -> Any:
    if isinstance(X, np.ndarray):
        return X[np.asarray(index, dtype=int)]
    return [X[i] for i in index]


def write_embeddings(
    extractor: Extractor,
    X: Any,
    out: str | Path,
    *,
    labels: Sequence[Any] | np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    chunk_size: int = SHARD_SIZE,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write ``extractor``'s embeddings of ``X`` to ``out`` (``.parquet`` or ``.npy``), resumably.

    Returns ``{"path", "format", "rows", "computed", "skipped", "dim"}``: ``skipped`` counts the items found
    already written by an earlier (possibly killed) run.
    """
    import pyarrow.parquet as pq

    out = Path(out).expanduser()
    fmt = output_format(out)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size} must be at least 1")
    modality = extractor.config.modality
    ids = list(ids) if ids is not None else item_ids(X, modality)
    n = len(ids)
    if labels is not None and len(labels) != n:
        raise DataError(f"{len(labels)} labels for {n} items; pass one label per item")
    meta = describe(extractor, labels is not None)
    schema = embedding_schema(meta["dim"], meta, labels is not None)
    parts_dir = _parts_dir(out)
    parts_dir.mkdir(parents=True, exist_ok=True)
    marker = parts_dir / "meta.json"
    if marker.exists():
        _check_meta(json.loads(marker.read_text()), meta, parts_dir, out)
    else:
        atomic_write_json(marker, meta)
    parts = sorted(parts_dir.glob("part-*.parquet"))
    done, parts = _done_ids(out, fmt, parts, meta)
    todo = [i for i in range(n) if ids[i] not in done]
    summary = {"path": str(out), "format": fmt, "computed": len(todo), "skipped": n - len(todo), "dim": meta["dim"]}
    if not todo and not parts:
        shutil.rmtree(parts_dir, ignore_errors=True)
        summary["rows"] = _row_count(out, fmt)
        return summary
    show_inner, extractor.show_progress = extractor.show_progress, False
    bar = progress(total=len(todo), desc=f"extract {extractor.config.name}:{extractor.layer}", enabled=show_progress)
    next_part = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
    try:
        for start in range(0, len(todo), chunk_size):
            index = todo[start : start + chunk_size]
            feats = extractor.extract(_take(X, index))
            table = embedding_table([ids[i] for i in index], feats,
                                    None if labels is None else [labels[i] for i in index], schema)
            with atomic_path(parts_dir / f"part-{next_part:06d}.parquet") as tmp:
                pq.write_table(table, tmp, row_group_size=len(index))
            next_part += 1
            bar.update(len(index))
    finally:
        bar.close()
        extractor.show_progress = show_inner
    summary["rows"] = _finish(out, fmt, schema, meta, parts_dir)
    return summary


def _part_tables(out: Path, fmt: str, schema: Any, parts_dir: Path) -> Iterator[Any]:
    import pyarrow.parquet as pq

    yield from _existing_tables(out, fmt, schema)
    for part in sorted(parts_dir.glob("part-*.parquet")):
        yield pq.read_table(part).replace_schema_metadata(schema.metadata)


def _finish(out: Path, fmt: str, schema: Any, meta: dict[str, Any], parts_dir: Path) -> int:
    """Join the finished output (if any) and the parts into ``out`` atomically; return the row count."""
    import pyarrow.parquet as pq

    rows = 0
    if fmt == "parquet":
        with atomic_path(out) as tmp:
            with pq.ParquetWriter(tmp, schema) as writer:
                for table in _part_tables(out, fmt, schema, parts_dir):
                    writer.write_table(table, row_group_size=max(1, table.num_rows))
                    rows += table.num_rows
    else:
        import pyarrow.compute as pc

        total = sum(pq.ParquetFile(p).metadata.num_rows for p in parts_dir.glob("part-*.parquet"))
        if out.exists():
            total += len(json.loads(_npy_sidecar(out).read_text())["ids"])
        all_ids: list[str] = []
        all_labels: list[Any] | None = [] if meta["labels"] else None
        with atomic_path(out) as tmp:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, meta["dim"]))
            for table in _part_tables(out, fmt, schema, parts_dir):
                k = table.num_rows
                flat = pc.list_flatten(table.column("embedding")).to_numpy()
                array[rows : rows + k] = flat.reshape(k, meta["dim"])
                all_ids += table.column("id").to_pylist()
                if all_labels is not None:
                    all_labels += table.column("label").to_pylist()
                rows += k
            array.flush()
            del array
        atomic_write_json(_npy_sidecar(out), {"meta": meta, "ids": all_ids, "labels": all_labels})
    shutil.rmtree(parts_dir, ignore_errors=True)
    return rows


def _row_count(out: Path, fmt: str) -> int:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(out).metadata.num_rows)
    return len(json.loads(_npy_sidecar(out).read_text())["ids"])
