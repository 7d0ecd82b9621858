"""Read-only access to the flash messages a previous request left."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .paths import get_path, has_path

__all__ = ["FlashMessages"]


class FlashMessages(Mapping[str, Any]):
    """The flash messages of the previous request, with dot-path lookup.

    Also what templates see as ``flash_messages``.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = values if values is not None else {}

    def get(self, key: str, default: Any = None) -> Any:
        """Message at ``key`` (dot paths allowed), or ``default``."""
        return get_path(self._values, key, default)

    def has(self, key: str) -> bool:
        """True when a message is present (and not None) at ``key``."""
        return has_path(self._values, key)

    def all(self) -> dict[str, Any]:
        """A copy of every message."""
        return dict(self._values)

    @property
    def is_empty(self) -> bool:
        """True when the previous request flashed nothing."""
        return not self._values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"FlashMessages({self._values!r})"
