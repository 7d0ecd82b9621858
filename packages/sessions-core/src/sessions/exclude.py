"""Paths the integrations leave alone: no session, no store I/O, no cookie."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ExcludedPaths"]


class ExcludedPaths:
    """A set of path prefixes: ``"/static"`` covers ``/static`` and
    ``/static/...``, not ``/staticky``; ``"/"`` covers everything.

    ``path in excluded`` is one set lookup and one ``startswith``, so health
    checks and static files cost next to nothing.
    """

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, paths: Iterable[str]) -> None:
        exact: set[str] = set()
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"exclude_paths entries must start with '/', got {path!r}")
            exact.add(path.rstrip("/") or "/")
        self._exact = frozenset(exact)
        self._prefixes = tuple(p if p == "/" else p + "/" for p in exact)

    def __bool__(self) -> bool:
        return bool(self._exact)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self._exact or path.startswith(self._prefixes))
