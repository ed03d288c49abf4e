"""What a CSV may make transferkit read: the hostile-input rules of :func:`~transferkit.data.datasets.load_csv`.

A CSV is data someone else may have written. Its image paths are resolved against the CSV's own folder and
must stay inside it (no absolute paths, no ``..`` climbing out) unless the user says otherwise
(``allow_outside_paths=True`` / ``--allow-outside-paths``); one cell may hold up to :data:`FIELD_LIMIT`
bytes (Python's ``csv`` default of 128 KiB is too small for long documents, unbounded is a memory hazard);
empty texts are used but warned about and counted.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

from ..exceptions import DataError

log = logging.getLogger(__name__)

#: the largest CSV cell read (8 MiB): a long document fits, a runaway unclosed quote does not eat memory
FIELD_LIMIT = 8 * 1024 * 1024
OUTSIDE_FLAG = "--allow-outside-paths"


TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")


def read_rows(csv_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of a UTF-8 CSV with a header row, or of a Parquet table (``.parquet``: the same
    columns, read with pyarrow; cells as text, nulls as ``None``); a cell over :data:`FIELD_LIMIT` is a
    one-line error naming the row and the likely cause."""
    if csv_path.suffix.lower() == ".parquet":
        return _parquet_rows(csv_path)
    previous = csv.field_size_limit()
    csv.field_size_limit(FIELD_LIMIT)
    reader = None
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        if "field larger than field limit" in str(exc):
            raise DataError(
                f"line {line} of CSV {str(csv_path)!r} has a cell over {FIELD_LIMIT // 2**20} MiB, the most one "
                "cell may hold; look for an unclosed quote (it makes the rest of the file one cell), or split "
                "very long documents into several rows") from exc
        raise DataError(f"cannot parse CSV {str(csv_path)!r} (line {line}: {exc}); save it as UTF-8 CSV with a "
                        "header row") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"CSV {str(csv_path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as "
                        "UTF-8 CSV with a header row") from exc
    finally:
        csv.field_size_limit(previous)
    return columns, rows


def _parquet_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """``(columns, rows)`` of a Parquet table, as :func:`read_rows` gives a CSV's (each cell as text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read Parquet file {str(path)!r} ({str(exc).splitlines()[0]}); write it with "
                        "pyarrow or pandas (one row per item, e.g. path and label columns)") from exc
    columns = [str(c) for c in table.column_names]
    rows = [{c: None if v is None else str(v) for c, v in zip(columns, row.values(), strict=True)}
            for row in table.to_pylist()]
    return columns, rows


def confine_paths(values: list[str], csv_path: Path, column: str, allow_outside: bool) -> list[str]:
    """Image paths of a CSV resolved against its folder. Without ``allow_outside`` a path that leads out of
    the folder (an absolute path elsewhere, or ``../`` climbing out) is refused, naming the row, the value and
    the flag; an absolute path inside the folder is fine."""
    base = csv_path.parent
    out = []
    for row, value in enumerate(values, start=2):
        p = Path(value)
        full = p if p.is_absolute() else base / p
        if not allow_outside and not _is_within(full, base):
            raise DataError(f"row {row} of {csv_path.name!r}: {column} {value!r} is outside the CSV's folder; "
                            f"move the images under {str(base)!r}, or pass {OUTSIDE_FLAG} to read it anyway")
        out.append(str(full))
    return out


def _is_within(path: Path, base: Path) -> bool:
    """Lexically (no symlinks followed): ``path`` normalised lies under ``base``."""
    a, b = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(base))
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def warn_empty_texts(texts: list[str], csv_path: Path, column: str) -> int:
    """Warn (once, counted, with the first rows) about empty or blank texts, which carry no information but
    are kept so rows stay aligned with their labels. Returns how many there are."""
    empty = [i + 2 for i, t in enumerate(texts) if not str(t).strip()]
    if empty:
        rows = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
        log.warning("%d of %d texts in %s (column %r) are empty (rows %s); they are used as empty strings — "
                    "drop those rows if that is not intended", len(empty), len(texts), csv_path.name, column, rows)
    return len(empty)
