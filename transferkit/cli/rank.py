"""`rank`: which pretrained backbone and layer suit this data, before training anything."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import AllowOutside, Engine, LabelCol, make_console, print_json, say, user_errors


class LayerSet(str, Enum):
    last = "last"
    stages = "stages"
    all = "all"


def _split_names(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def read_fit_results(sources: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Read the results.json of fits given as model directories or results.json files."""
    from ..exceptions import DataError

    out = []
    for source in sources:
        path = Path(source).expanduser()
        file = path / "results.json" if path.is_dir() else path
        if not file.is_file():
            raise DataError(f"--fits {source!r}: no results.json there; pass a model directory written by "
                            "`transferkit fit --out DIR` or its results.json")
        try:
            out.append((str(source), json.loads(file.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            raise DataError(f"--fits {source!r}: cannot read {file} as JSON ({exc})") from None
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.4g}"


def print_ranking(ranking: Any) -> None:
    """The ranking as a rich table, best first, then the controls check and the recommendation."""
    from rich.table import Table

    console = make_console()
    d = ranking.to_dict()
    ds = d["dataset"]
    title = (f"ranking of {len(d['candidates'])} candidates on {ds.get('name') or 'the data'} "
             f"({ds['n_items']} items, {ds['n_classes']} classes), sorted by {d['score']}")
    table = Table(title=title, title_justify="left")
    # a score that applies to no candidate (LEEP and NCE on text) gets one line below, not a column of n/a
    shown = [n for n in d["scores"] if any(c["scores"].get(n) is not None for c in d["candidates"])]
    hidden = [n for n in d["scores"] if n not in shown]
    table.add_column("#", justify="right")
    table.add_column("backbone")
    table.add_column("layer")
    table.add_column("weights")
    for name in shown:
        table.add_column(name + (" ▼" if name == d["score"] else ""), justify="right")
    table.add_column("time", justify="right")
    for c in d["candidates"]:
        style = "dim" if c["control"] else ("bold" if c["rank"] == ranking.top.rank else None)
        table.add_row(
            str(c["rank"]), c["backbone"], c["layer"], "random init" if c["control"] else "pretrained",
            *[_cell(c["scores"].get(n)) for n in shown],
            f"{c['times']['total_s']:.2f} s", style=style,
        )
    console.print(table)
    if hidden:
        why = sorted({w for c in d["candidates"] for n, w in c["not_applicable"].items() if n in hidden})
        console.print(f"not shown: {', '.join(hidden)}, which apply to no candidate here ({'; '.join(why) or 'no value'})")
    na = sorted({f"{n} ({why})" for c in d["candidates"] for n, why in c["not_applicable"].items() if n in shown})
    if na:
        console.print(f"n/a: not applicable — {'; '.join(na)}")
    if any(d["score_info"][n]["needs_source_probs"] for n in shown):
        console.print("leep and nce read the source classifier's probabilities: one value per backbone, whatever the layer")
    ctrl = d["controls"]
    if ctrl["checked"]:
        failed = [p for p in ctrl["pairs"] if not p["below"]]
        if not failed:
            console.print(f"controls: [green]all {ctrl['checked']} random-init controls rank below their pretrained "
                          f"counterpart at the same layer[/] (by {ctrl['score']})")
        else:
            which = ", ".join(f"{p['backbone']}:{p['layer']}" for p in failed)
            console.print(f"controls: [red]{len(failed)} of {ctrl['checked']} random-init controls rank at or above "
                          f"their pretrained counterpart[/] ({which}): those pretrained features carry little for this data")
    for s in d["skipped"]:
        console.print(f"skipped {s['backbone']}: {s['reason']}")
    rec = d["recommendation"]
    console.print(f"recommendation: [bold]{rec['backbone']}[/] at layer [bold]{rec['layer']}[/], "
                  f"[bold]{rec['strategy']}[/]")
    console.print(f"why: {rec['why']}")
    t = d["timings"]
    console.print(f"time: {t['total_s']:.1f} s (extraction {t['extract_s'] + t['source_probs_s']:.1f} s, "
                  f"scores {t['scores_s']:.1f} s)")


@user_errors
def rank(
    data: Annotated[str, typer.Argument(help="Folder of class subfolders, a CSV file, or a built-in dataset name.")],
    backbones: Annotated[str, typer.Option("--backbones", help="Comma-separated backbone names, or 'all' (every backbone of the data's modality).")] = "all",
    layers: Annotated[LayerSet, typer.Option(help="Layers to rank: the last of each backbone, the end of each stage in the deeper half, or all.")] = LayerSet.last,
    controls: Annotated[bool, typer.Option("--controls/--no-controls", help="Add random-initialised copies as negative controls.")] = True,
    score: Annotated[str | None, typer.Option(help="Score to sort by (default: ridge_loo, the leave-one-out accuracy of a ridge classifier; see `transferkit.selection`).")] = None,
    scores: Annotated[str | None, typer.Option(help="Comma-separated scores to compute, or 'all' (adds the costly cross-validated linear probe); default: every cheap score.")] = None,
    image_size: Annotated[int | None, typer.Option(help="Square input size in pixels for image backbones (default: each backbone's own).")] = None,
    engine: Annotated[Engine, typer.Option(help="Execution engine for extraction.")] = Engine.auto,
    seed: Annotated[int, typer.Option(help="Seed of the random-init controls.")] = 0,
    fits: Annotated[list[str] | None, typer.Option("--fits", help="Model directories (or results.json files) of fits of the same data, repeatable or comma-separated: plotted as score vs obtained accuracy.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory to write rank.json and rank.html to.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the ranking as JSON on stdout instead of a table.")] = False,
    text_column: Annotated[str | None, typer.Option("--text-column", help="CSV column holding the texts.")] = None,
    path_column: Annotated[str | None, typer.Option("--path-column", help="CSV column holding image paths.")] = None,
    label_column: LabelCol = "label",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    allow_outside_paths: AllowOutside = False,
) -> None:
    """Rank pretrained backbones and layers for DATA by transferability scores (no training), with random-init
    controls, and recommend a backbone, layer and strategy."""
    from .._utils import atomic_write_json
    from ..data.datasets import load_dataset
    from ..exceptions import ConfigError
    from ..selection.ranking import DEFAULT_SCORE, attach_fits, rank_candidates

    if image_size is not None and image_size < 16:
        raise ConfigError(f"--image-size {image_size} is too small; use at least 16 pixels (typical: 112-224)")
    fit_results = read_fit_results(_split_names(fits))  # check before the (long) ranking
    dataset = load_dataset(data, text_column=text_column, path_column=path_column, label_column=label_column,
                           allow_outside_paths=allow_outside_paths)
    if image_size is not None and dataset.modality != "image":
        raise ConfigError(f"--image-size was given but {data!r} holds {dataset.modality}")
    names = _split_names([backbones])
    ranking = rank_candidates(
        dataset.X, dataset.y, backbones=None if names in ([], ["all"]) else names, layers=layers.value,
        controls=controls, scores=scores, score=score or DEFAULT_SCORE, modality=dataset.modality,
        image_size=image_size, engine=engine.value, seed=seed, progress=progress, dataset_name=dataset.name,
        say=say if progress else (lambda msg: None),
    )
    if fit_results:
        attach_fits(ranking, fit_results)
    result = ranking.to_dict()
    if out is not None:
        from ..selection.report import render_rank_report

        atomic_write_json(out / "rank.json", result)
        render_rank_report(result, out / "rank.html")
    if json_output:
        print_json(result)
    else:
        print_ranking(ranking)
        if out is not None:
            make_console().print(f"ranking: {out}/rank.json\nreport:  {out}/rank.html")
