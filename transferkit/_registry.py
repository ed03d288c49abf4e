"""A small name → object registry with did-you-mean errors.

Used for backbones, heads and transferability scores. Registering a name twice is an error (as in PEFT);
asking for an unknown name lists what exists and the closest match (where timm only says ``Unknown model``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

from .exceptions import DuplicateNameError, UnknownNameError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


class Registry(Generic[T]):
    """Ordered mapping of names to objects of one kind (``kind`` is used in messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: T, *, aliases: tuple[str, ...] = ()) -> T:
        for key in (name, *aliases):
            if key in self._items or key in self._aliases:
                raise DuplicateNameError(f"{self.kind} {key!r} is already registered; pick another name")
        self._items[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def canonical(self, name: str) -> str:
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}{did_you_mean(name, self.names(include_aliases=True))}; "
            f"available: {', '.join(self.names())}"
        )

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self, include_aliases: bool = False) -> list[str]:
        names = list(self._items)
        return names + list(self._aliases) if include_aliases else names

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def unregister(self, name: str) -> None:
        """Remove a name (used by tests that register temporary entries)."""
        canonical = self.canonical(name)
        del self._items[canonical]
        self._aliases = {a: n for a, n in self._aliases.items() if n != canonical}
