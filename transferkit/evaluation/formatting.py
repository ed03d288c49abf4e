"""How the reports write numbers, dates and durations; also the report templates' filters.

Every function accepts anything (a value read from ``results.json`` may be missing, ``None``, NaN or of the
wrong type) and returns text; a value that cannot be shown becomes ``None`` or the ``—`` placeholder.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from numbers import Real
from typing import Any

from markupsafe import Markup

MINUS = "\u2212"
#: what a table cell shows for a missing value
DASH = Markup('<span class="na">—</span>')


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a dictionary, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def text(value: Any) -> str | None:
    """``value`` as stripped text, or ``None`` when missing or blank."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def num(value: Any) -> float | None:
    """A finite number, or ``None`` (missing, ``None``, NaN, a bool, not a number)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def integer(value: Any) -> int | None:
    v = num(value)
    return int(round(v)) if v is not None else None


def code_spans(value: Any) -> Markup:
    """Escape ``value`` and turn its `backticks` into ``<code>`` (the verdict's next steps use them)."""
    escaped = str(value.__html__()) if hasattr(value, "__html__") else html.escape(str(value), quote=True)
    return Markup(re.sub(r"`([^`<>]+)`", r"<code>\1</code>", escaped))


def sentence(value: str) -> str:
    return value if value.endswith((".", "!", "?", ")")) else value + "."


def pct(value: Any, digits: int = 1) -> str | Markup:
    """``0.8312`` → ``83.1%``; missing → the dash."""
    v = num(value)
    return DASH if v is None else f"{100 * v:.{digits}f}%"


def points(fraction: float) -> str:
    """A difference of two scores in [0, 1], in signed percentage points: ``+5.0``, ``−2.3``, ``0.0``."""
    value = round(100 * fraction, 1)
    if value == 0:
        return "0.0"
    return f"{value:+.1f}".replace("-", MINUS)


def count(value: Any) -> str | Markup:
    v = num(value)
    if v is None:
        return DASH
    return f"{int(v):,}" if v.is_integer() else f"{v:,.2f}"


def duration(value: Any) -> str | Markup:
    """Seconds in words: ``12.3 s``, ``6 min 52 s``, ``1 h 05 min``; missing → the dash."""
    s = num(value)
    if s is None:
        return DASH
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec:02d} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h} h {rest // 60:02d} min"


def date(value: Any) -> str | None:
    """An ISO timestamp as ``23 Nov 2026, 12:00 UTC``; text that is not one is returned as it is."""
    raw = text(value)
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw
    stamp = when.strftime("%d %b %Y, %H:%M").lstrip("0")
    if when.tzinfo is None:
        return stamp
    if when.utcoffset() == timezone.utc.utcoffset(None):
        return stamp + " UTC"
    return stamp + " " + when.strftime("%z")[:3] + ":" + when.strftime("%z")[3:]


def param(value: Any) -> str:
    """A hyper-parameter: floats with 4 significant digits, anything else as it is."""
    v = num(value)
    if v is not None and not isinstance(value, int):
        return f"{v:.4g}"
    return str(value)


def decimal(value: Any, fmt: str = "{:.3f}") -> str:
    """``value`` formatted with ``fmt``, or ``—``."""
    v = num(value)
    return fmt.format(v) if v is not None else "—"


#: the filters every report template can use
FILTERS = {"pct": pct, "points": points, "count": count, "duration": duration, "date": date, "param": param,
           "code_spans": code_spans, "decimal": decimal, "sentence": sentence}
