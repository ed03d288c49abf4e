"""Declarative parameter validation with one message template (as scikit-learn's ``_parameter_constraints``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._registry import did_you_mean
from .exceptions import ConfigError


@dataclass(frozen=True)
class Rule:
    """``check(value) -> bool``; ``expected`` says in words what is allowed."""

    check: Callable[[Any], bool]
    expected: str
    choices: tuple[str, ...] = ()


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices), tuple(map(str, choices)))


def int_range(lo: int | None = None, hi: int | None = None, allow_none: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if v is None:
            return allow_none
        return isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)

    span = f"an integer{f' >= {lo}' if lo is not None else ''}{f' <= {hi}' if hi is not None else ''}"
    return Rule(ok, span + (" or None" if allow_none else ""))


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False, allow_none: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if v is None:
            return allow_none
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if lo is not None and (v <= lo if lo_open else v < lo):
            return False
        return not (hi is not None and (v >= hi if hi_open else v > hi))

    lo_s = "" if lo is None else f" {'>' if lo_open else '>='} {lo}"
    hi_s = "" if hi is None else f" {'<' if hi_open else '<='} {hi}"
    return Rule(ok, f"a number{lo_s}{' and' if lo_s and hi_s else ''}{hi_s}" + (" or None" if allow_none else ""))


def instance_of(*types: type, allow_none: bool = False) -> Rule:
    names = " or ".join(t.__name__ for t in types)
    return Rule(lambda v: (v is None and allow_none) or isinstance(v, types), names + (" or None" if allow_none else ""))


def validate_params(owner: str, params: dict[str, Any], rules: dict[str, Rule]) -> None:
    """Raise :class:`ConfigError` for the first parameter that breaks its rule."""
    for name, rule in rules.items():
        if name not in params:
            continue
        value = params[name]
        if not rule.check(value):
            hint = did_you_mean(str(value), list(rule.choices)) if rule.choices and isinstance(value, str) else ""
            raise ConfigError(f"{owner}: {name}={value!r} is not allowed{hint}; expected {rule.expected}")
