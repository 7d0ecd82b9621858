"""What one request did to its session, kept so it can be replayed onto newer values.

A commit normally stores the request's values as they are. When another
request committed the same session in between (a compare-and-set conflict),
core reads the record again and replays these changes onto it, so both
requests' changes survive:

* a top-level key that was put, forgotten, set or deleted (at any depth)
  takes this request's final value for that key: the later commit wins;
* a key that was only incremented or decremented gets the same amounts added
  to the newer value, so every acknowledged increment counts;
* ``clear()`` wins over everything: the result is this request's values alone.

Flash messages are merged by :mod:`sessions.commits`, which owns the record.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from .paths import get_path, set_path

__all__ = ["Changes"]

_NUMBER = (int, float, Decimal)


def _is_number(value: Any) -> bool:
    return type(value) is not bool and isinstance(value, _NUMBER)


class Changes:
    """Per top-level key: replaced (``set``) or only added to (amounts per path)."""

    __slots__ = ("cleared", "deltas", "replaced")

    def __init__(self) -> None:
        #: Top-level keys whose final value replaces the stored one.
        self.replaced: set[str] = set()
        #: Top-level key -> {dot path -> amount added} for keys only incremented.
        self.deltas: dict[str, dict[str, Any]] = {}
        self.cleared = False

    def __bool__(self) -> bool:
        return self.cleared or bool(self.replaced) or bool(self.deltas)

    @property
    def keys(self) -> frozenset[str]:
        """Every top-level key this request changed."""
        return frozenset(self.replaced) | frozenset(self.deltas)

    def replace(self, key: str, *, path: bool = True) -> None:
        """``key`` was put, forgotten or mutated: its top level is final.

        ``key`` is a dot path, or with ``path=False`` a literal top-level key
        (mapping access: ``session["a.b"]`` is the key ``"a.b"``).
        """
        top = key.split(".", 1)[0] if path else key
        self.replaced.add(top)
        self.deltas.pop(top, None)

    def add(self, key: str, amount: Any) -> None:
        """``amount`` was added to the number at ``key`` (a dot path)."""
        top = key.split(".", 1)[0]
        if top in self.replaced:
            return  # its final value already holds the sum
        paths = self.deltas.setdefault(top, {})
        paths[key] = paths.get(key, 0) + amount

    def clear(self) -> None:
        """Every value was removed: this request's values win outright."""
        self.cleared = True
        self.deltas.clear()

    def replay(self, fresh: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
        """This request's changes applied onto ``fresh`` (the newer stored values).

        ``own`` is this request's final values; ``fresh`` is not modified.
        """
        if self.cleared:
            return dict(own)
        merged = copy.deepcopy(fresh)
        for key in self.replaced:
            if key in own:
                merged[key] = own[key]
            else:
                merged.pop(key, None)
        for key, paths in self.deltas.items():
            if key in self.replaced:
                continue
            for path, amount in paths.items():
                current = get_path(merged, path, 0)
                if _is_number(current):
                    set_path(merged, path, current + amount)
                else:
                    # Someone stored a non-number there since: this later commit's
                    # own result wins, as a put would.
                    set_path(merged, path, get_path(own, path, amount))
        return merged
