"""The self-contained HTML reports of transferkit: ``report.html`` of a fit, and the pieces other reports
(``rank.html``) and plug-ins build on.

A report is a page of :class:`Section` objects rendered by Jinja2 templates with autoescape: every value a
template prints is HTML-escaped unless it is :class:`markupsafe.Markup` (the report's own markup). The
page needs nothing else: the CSS is inline, the plots are PNG images embedded as ``data:`` URIs, the text
uses the reader's system fonts. It opens offline, can be mailed as an attachment, and prints.

Who contributes what to the fit report (:func:`report_html`):

* the run itself (:mod:`~transferkit.evaluation.fit_sections`): the header with the dataset, the model and
  the **verdict** (a coloured badge, the gain and its confidence interval in words, the explanation and the
  next steps), the metrics of the transfer model against the **baseline**, the plots (confusion matrix,
  per-class F1, baseline vs transfer, 2-D projection), the comparison with other strategies, the per-class
  table and the timings;
* the objective (regression residuals, per-tag and per-task tables);
* the **strategy**, through :meth:`Strategy.report_sections <transferkit.strategies.Strategy.report_sections>`
  (fine-tuning: its learning curves and stages), passed as ``sections``.

A plug-in contributes a section with a body (text, escaped; or Markup), a template of this package
(``template="name.html.j2"``), or its own template compiled with :func:`template` /
:func:`package_template` (which can import this package's macros: ``{% from "macros.html.j2" import
figure %}``). :func:`figure` draws a plot for a section and turns a malformed-data error into a note.

Only ``metrics`` is required in ``results``; every other key may be missing or ``None`` and its section is
then left out. The file is written atomically: the whole document is built in memory first, then moved
over ``path``; if anything fails, an existing report is untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._utils import atomic_write_text
from ..exceptions import ConfigError
from .fit_sections import fit_sections, header_html
from .formatting import date, text
from .objective_report import objective_sections
from .page import Figure, Section, figure, package_template, page_html, template


def report_html(results: Mapping[str, Any], sections: Iterable[Section] = ()) -> str:
    """The fit report as one HTML string (what :func:`render_report` writes).

    Args:
        results: the results of ``transferkit fit`` (the content of ``results.json``). Only ``metrics`` is
            required; any other part may be missing or ``None`` and its section is then left out.
        sections: sections contributed by the strategy (``clf.strategy_.report_sections(results)``) or a
            caller; they follow the plots.

    Raises:
        ConfigError: ``results`` is not a dictionary or has no ``metrics`` dictionary.
    """
    if not isinstance(results, Mapping):
        raise ConfigError(f"results must be a dictionary (the content of results.json), got {type(results).__name__}")
    if not isinstance(results.get("metrics"), Mapping):
        raise ConfigError("results has no 'metrics' dictionary; pass the dictionary written to results.json "
                          "by `transferkit fit`")
    contributed = list(sections)
    for s in contributed:
        if not isinstance(s, Section):
            raise ConfigError(f"report sections must be transferkit.evaluation.report.Section, got {type(s).__name__}")
    head, tail = fit_sections(results)
    dataset = results.get("dataset") if isinstance(results.get("dataset"), Mapping) else {}
    name = text(dataset.get("name"))
    created = date(results.get("created"))
    return page_html(title="transferkit report" + (f" — {name}" if name else ""),
                     header=header_html(results),
                     sections=[*head, *contributed, *objective_sections(results), *tail],
                     footer=[f"run of {created}"] if created else [],
                     version=text(results.get("transferkit_version")))


def render_report(results: Mapping[str, Any], path: str | os.PathLike[str], sections: Iterable[Section] = ()) -> Path:
    """Write the HTML report of a fit to ``path`` (atomically; its directory is created if needed) and
    return the path. ``results`` and ``sections``: as for :func:`report_html`."""
    document = report_html(results, sections)
    out = Path(path)
    atomic_write_text(out, document)
    return out


__all__ = ["Figure", "Section", "figure", "package_template", "page_html", "render_report", "report_html", "template"]
