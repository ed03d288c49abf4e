"""The building blocks of transferkit's HTML reports: the Jinja2 environment (autoescape on), the
:class:`Section` and :class:`Figure` a report is made of, and :func:`page_html`, the self-contained page
around them (inline CSS, plots as PNG ``data:`` URIs, system fonts). ``report.html`` of a fit
(:mod:`transferkit.evaluation.report`) and ``rank.html`` (:mod:`transferkit.selection.report`) are built
from these pieces; so are the sections a strategy contributes.

Every value a template prints is HTML-escaped (as :func:`html.escape` does) unless it is
:class:`markupsafe.Markup`, the reports' own markup.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from .. import __version__
from ..exceptions import ConfigError
from . import plots
from .formatting import FILTERS


def _finalize(value: Any) -> Any:
    """Escape like :func:`html.escape` (``&quot;``), as the reports always have; ``None`` prints nothing."""
    if value is None:
        return ""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the reports: this package's templates, autoescape on, the formatting
    filters of :mod:`~transferkit.evaluation.formatting`."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("transferkit.evaluation", "templates"),
                             autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=False)
    env.filters.update(FILTERS)
    return env


def template(source: str) -> jinja2.Template:
    """A template compiled from ``source`` in the reports' environment (autoescape on; it may import
    ``macros.html.j2``). For sections of plug-ins that ship no template file."""
    return environment().from_string(source)


@lru_cache(maxsize=64)
def package_template(package: str, name: str) -> jinja2.Template:
    """The template ``templates/<name>`` shipped as package data of ``package`` (e.g. a strategy's own)."""
    source = resources.files(package).joinpath("templates", name).read_text(encoding="utf-8")
    return template(source)


@dataclass(frozen=True)
class Figure:
    """One plot of a report, ready to print with the ``figure`` macro (or ``{{ fig }}``)."""

    id: str
    alt: str
    caption: str = ""
    layout: str = ""  # "" (may share a row), "wide" (a row of its own), "side" (caption to the right)
    src: str = ""
    width: int = 0
    height: int = 0
    error: str | None = None  # why the plot was not drawn

    def __html__(self) -> str:
        return environment().get_template("macros.html.j2").module.figure(self)  # type: ignore[attr-defined]


def figure(fig_id: str, draw: Callable[[], bytes], alt: str, caption: str = "", *, layout: str = "") -> Figure:
    """Draw a plot (``draw`` returns PNG bytes) for a report. A :class:`ConfigError` from ``draw`` (malformed
    plot data) becomes a one-line note in place of the plot instead of failing the whole report."""
    try:
        png = draw()
    except ConfigError as exc:
        return Figure(fig_id, alt, caption, layout, error=str(exc))
    width, height = struct.unpack(">II", png[16:24])  # PNG IHDR
    scale = 100 / plots.DPI  # shown at 100 CSS px per inch, sharp on high-density screens
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return Figure(fig_id, alt, caption, layout, src, round(width * scale), round(height * scale))


@dataclass(frozen=True)
class Section:
    """One ``<section>`` of a report: an id (unique in the page), a title, an optional intro line, and
    its content from exactly one of

    * ``body``: text (escaped) or :class:`~markupsafe.Markup`;
    * ``template``: the name of a template of this package, or a compiled template (:func:`template`,
      :func:`package_template`), rendered with ``context``.

    ``css``: extra style rules the section needs, added once to the page's ``<style>``.
    """

    id: str
    title: str
    body: Any = None
    template: str | jinja2.Template | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    intro: str = ""
    css: str = ""
    html_class: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"section id {self.id!r} must be letters, digits, '-' or '_' (it is an HTML id)")
        if (self.body is None) == (self.template is None):
            raise ConfigError(f"section {self.id!r}: give exactly one of body= and template=")
        if "<" in self.css:
            raise ConfigError(f"section {self.id!r}: css holds style rules only, got markup")

    def render(self) -> Markup:
        if self.template is not None:
            tpl = self.template if isinstance(self.template, jinja2.Template) else \
                environment().get_template(self.template)
            content = Markup(tpl.render(**self.context))
        else:
            content = _finalize(self.body)
        return Markup(environment().get_template("section.html.j2").render(s=self, content=content))

    __html__ = render


def page_html(*, title: str, sections: Iterable[Section], header: Any = "", footer: Iterable[Any] = (),
              css: str = "", version: str | None = None) -> str:
    """A whole report page: the shared stylesheet (plus ``css`` and each section's own), ``header``
    (Markup), the sections in order, and a footer line of ``footer`` parts followed by the generator."""
    sections = list(sections)
    ids = [s.id for s in sections]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"report sections have duplicate ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    version = version or __version__
    styles = [_base_css(), css, *dict.fromkeys(s.css for s in sections if s.css)]
    return environment().get_template("page.html.j2").render(
        title=title, generator=f"transferkit {version}", css=Markup("\n".join(s for s in styles if s)),
        header=header, sections=sections,
        footer=[f"Generated by transferkit {version}", *footer, "self-contained file: no network access needed"],
    ) + "\n"


@lru_cache(maxsize=1)
def _base_css() -> str:
    return "\n" + resources.files("transferkit.evaluation").joinpath("templates", "report.css").read_text("utf-8")


__all__ = ["Figure", "Section", "environment", "figure", "package_template", "page_html", "template"]
