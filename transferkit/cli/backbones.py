"""`backbones` (list, show one, add/remove the user's own) and `download` (install a backbone's weights package)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperGroup

from ._common import console, print_json, say, user_errors


class _BackbonesGroup(TyperGroup):
    """`backbones` lists; `backbones NAME --layers` shows one; `backbones add|remove` manage the user's own."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_BackbonesGroup, invoke_without_command=True, no_args_is_help=False, add_completion=False,
                  rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="List the backbones transferkit can use (installed or not, with their licence); "
                       "`backbones NAME --layers` lists a backbone's layers; `backbones add/remove` register your own.")


@app.callback()
@user_errors
def backbones(
    ctx: typer.Context = None,  # type: ignore[assignment]  # None when called as a function
    modality: Annotated[str | None, typer.Option(help="Only 'image' or 'text' backbones.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the backbones transferkit can use, installed or not, with their licence."""
    if ctx is not None and ctx.invoked_subcommand is not None:
        return
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
    say("any torchvision/timm architecture (--backbone resnet50 --weights FILE) and hf:PATH also work; "
        "`transferkit backbones NAME --layers` lists the layers of one")


@app.command("show")
@user_errors
def show(
    name: Annotated[str, typer.Argument(help="Backbone name: registered, a torchvision/timm architecture, or hf:PATH.")],
    layers: Annotated[bool, typer.Option("--layers", help="List the selectable layers with their feature size.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Describe one backbone (with --layers: its layers, input → output; the last is the default)."""
    from ..backbones import describe, get_config

    config = get_config(name)
    row = describe(config)
    row.update(layer_dims=[[k, v] for k, v in config.layers.items()], mean=config.mean, std=config.std, interpolation=config.interpolation,
               max_length=config.max_length, source_classes=config.num_source_classes)
    if json_output:
        print_json(row)
        return
    from rich.table import Table

    if layers:
        table = Table(title=f"{config.name}: layers (the last is the default, 'last')", title_justify="left")
        table.add_column("layer")
        table.add_column("features")
        for layer, dim in config.layers.items():
            table.add_row(layer, str(dim))
        console().print(table)
        return
    for key in ("name", "modality", "family", "description", "feature_dim", "input_size", "mean", "std",
                "interpolation", "max_length", "license", "weights_package", "installed", "params_millions"):
        if row.get(key) is not None:
            console().print(f"{key}: {row[key]}")


def _floats(value: str | None, option: str) -> tuple[float, ...] | None:
    from ..exceptions import ConfigError

    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"{option} {value!r} must be three comma-separated numbers, e.g. 0.485,0.456,0.406") from None


@app.command("add")
@user_errors
def add(
    name: Annotated[str, typer.Argument(help="Name to use with --backbone later.")],
    arch: Annotated[str, typer.Option(help="torchvision/timm architecture (e.g. resnet50, timm:convnext_tiny), or 'hf' for a Hugging Face directory.")],
    weights: Annotated[str, typer.Option(help="The weights file (safetensors or a state dict; never a pickled model), or the model directory with --arch hf.")],
    input_size: Annotated[int | None, typer.Option(help="Square input size (default: the architecture's own).")] = None,
    mean: Annotated[str | None, typer.Option(help="Normalisation mean on the 0..1 scale, e.g. 0.485,0.456,0.406.")] = None,
    std: Annotated[str | None, typer.Option(help="Normalisation std on the 0..1 scale, e.g. 0.229,0.224,0.225.")] = None,
) -> None:
    """Register a backbone from a local weights file in your config (checked by loading it first)."""
    from ..backbones import add_user_backbone
    from ..backbones.user import registry_file

    config = add_user_backbone(name, arch, weights, input_size=input_size, mean=_floats(mean, "--mean"),
                               std=_floats(std, "--std"))
    say(f"registered {config.name} ({config.family} {config.architecture}, {len(config.layers)} layers, "
        f"{config.feature_dim}-d) in {registry_file()}")


@app.command("remove")
@user_errors
def remove(name: Annotated[str, typer.Argument(help="A backbone you registered with `backbones add`.")]) -> None:
    """Remove a backbone you registered."""
    from ..backbones import remove_user_backbone

    remove_user_backbone(name)
    say(f"removed {name}")


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
