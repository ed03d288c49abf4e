"""The `transferkit` command line: a thin typer app over the library."""

from __future__ import annotations

import typer

from .adapt import adapt
from .backbones import app as backbones_app
from .backbones import download
from .cache import app as cache_app
from .extract import extract
from .fit import evaluate, export, fit, predict, quickstart
from .rank import rank
from .serve import serve
from .train import lr_find

app = typer.Typer(
    name="transferkit",
    help="Transfer learning for small labelled datasets: pretrained backbones, light heads, honest baselines.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(quickstart)
app.command()(fit)
app.command()(predict)
app.command()(evaluate)
app.command()(adapt)
app.command()(export)
app.command()(serve)
app.command()(rank)
app.command()(extract)
app.command(name="lr-find")(lr_find)
app.add_typer(backbones_app, name="backbones")
app.command()(download)
app.add_typer(cache_app, name="cache")


def main() -> None:
    app()


__all__ = ["app", "main"]
