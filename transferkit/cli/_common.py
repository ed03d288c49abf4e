"""Shared CLI plumbing: the error boundary, enums, console output."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import typer

from ..exceptions import TransferKitError

#: the --label-column option of every command that reads labelled CSVs
LabelCol = Annotated[str, typer.Option("--label-column", help="CSV column holding the labels (default: label; "
                                                               "without one, labels, class, category or target).")]

#: the --input-column option: the CSV column holding the items, whatever they are (paths or text)
InputCol = Annotated[str | None, typer.Option("--input-column", help="CSV column holding the items: image paths "
                                                                     "(absolute or relative to the CSV) or text, "
                                                                     "told apart by its content (default: guessed).")]
#: the --allow-outside-paths flag of every command that reads CSVs of image paths
AllowOutside = Annotated[bool, typer.Option("--allow-outside-paths", help="Let a CSV's image paths be absolute or "
                                            "point outside the CSV's folder (refused by default: a CSV from "
                                            "elsewhere must not make transferkit read arbitrary files).")]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2


def registry_choice(names: Callable[[], list[str]], what: str) -> Callable[[str], str]:
    """typer callback: the value must be one of ``names()`` (read from a registry when the command runs, so
    entries registered by plug-ins count), with did-you-mean."""

    def check(value: str) -> str:
        choices = names()
        if value in choices:
            return value
        from .._registry import did_you_mean

        raise typer.BadParameter(f"{value!r} is not a {what}{did_you_mean(str(value), choices)}; "
                                 f"choose from {', '.join(choices)}")

    return check


def choices_metavar(names: list[str]) -> str:
    return "[" + "|".join(names) + "]"


def head_names() -> list[str]:
    """Every head of every objective (classification: logreg, svm, mlp; regression: ridge, mlp ...)."""
    from ..objectives import OBJECTIVES

    return list(dict.fromkeys(h for name in OBJECTIVES for h in OBJECTIVES.get(name).heads))


class TTA(str, Enum):
    none = "none"
    hflip = "hflip"


class Engine(str, Enum):
    auto = "auto"
    onnx = "onnx"
    torch = "torch"


class Precision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (code 2)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USER_ERROR)


def user_errors(fn: F) -> F:
    """Turn transferkit's user-facing errors into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _setup_logging()
        try:
            return fn(*args, **kwargs)
        except TransferKitError as exc:
            raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except MemoryError:
            raise fail("out of memory; lower --batch-size or use a smaller --image-size") from None

    return wrapper  # type: ignore[return-value]


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"transferkit: {record.getMessage()}"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (not the stream of the first call:
    the CLI can run several times in one process, e.g. under typer's test runner)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging() -> None:
    root = logging.getLogger("transferkit")
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_OneLine())
        root.addHandler(handler)
    root.setLevel(logging.INFO if os.environ.get("TRANSFERKIT_VERBOSE") else logging.WARNING)


def say(message: str) -> None:
    """A progress line on stderr (stdout stays clean for JSON/CSV output)."""
    typer.echo(message, err=True)


def print_json(obj: Any) -> None:
    from .._utils import _json_default

    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def parse_name_values(pairs: list[str] | None, option: str, example: str) -> dict[str, Any] | None:
    """``["C=0.1", "gradual=true"]`` → ``{"C": 0.1, "gradual": True}`` (values parsed as JSON when they can
    be, else kept as strings); a pair without ``=`` fails naming ``option`` and ``example``."""
    if not pairs:
        return None
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise fail(f"{option} {pair!r} must look like NAME=VALUE, e.g. {example}")
        name, value = pair.split("=", 1)
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


def parse_head_params(pairs: list[str] | None) -> dict[str, Any] | None:
    """``["C=0.1", "hidden=128"]`` → ``{"C": 0.1, "hidden": 128}``."""
    return parse_name_values(pairs, "--head-param", "C=0.1")


def make_console() -> Any:
    """A rich console for stdout; wide enough for tables when stdout is not a terminal."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


console = make_console
