"""`cache info` and `cache clear`."""

from __future__ import annotations

from typing import Annotated

import typer

from .._utils import onnx_dir, onnx_files
from ._common import console, print_json, say, user_errors

app = typer.Typer(help="Inspect or clear the on-disk cache: embeddings and exported ONNX graphs.", no_args_is_help=True,
                  rich_markup_mode=None)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@app.command("info")
@user_errors
def info(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show what the embedding cache holds: one entry per backbone, weights, preprocessing and layer."""
    from ..data.cache import EmbeddingCache

    cache = EmbeddingCache()
    entries = cache.entries()
    rows = [
        {
            "key": e.key,
            "backbone": e.meta.get("identity", {}).get("backbone", "?"),
            "layer": e.meta.get("identity", {}).get("layer", "?"),
            "weights": str(e.meta.get("identity", {}).get("weights", "?"))[:16],
            "items": e.items,
            "bytes": e.bytes,
        }
        for e in entries
    ]
    graphs = onnx_files()
    onnx = {"root": str(onnx_dir()), "files": len(graphs), "bytes": sum(f.stat().st_size for f in graphs)}
    if json_output:
        print_json({"root": str(cache.root), "entries": rows, "onnx": onnx})
        return
    from rich.table import Table

    table = Table(title=f"embedding cache at {cache.root}", title_justify="left")
    for col in ("key", "backbone", "layer", "weights", "items", "size"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["key"], r["backbone"], r["layer"], r["weights"], str(r["items"]), _human(r["bytes"]))
    console().print(table)
    say(f"{len(rows)} entries, {sum(r['items'] for r in rows)} items, {_human(sum(r['bytes'] for r in rows))}")
    say(f"ONNX graphs: {onnx['files']} files, {_human(onnx['bytes'])} in {onnx['root']} (rebuilt when needed)")


@app.command("clear")
@user_errors
def clear(
    key: Annotated[str | None, typer.Option(help="Clear only this entry (see `cache info`).")] = None,
) -> None:
    """Delete cached embeddings and exported ONNX graphs (all, or those of one entry)."""
    from ..data.cache import EmbeddingCache

    freed = EmbeddingCache().clear(key)
    for f in onnx_files(key):
        size = f.stat().st_size
        f.unlink(missing_ok=True)
        freed += size
    say(f"cleared {_human(freed)}")
