"""Dot paths into nested dicts: ``"user.name"`` means ``values["user"]["name"]``."""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


def get_path(values: dict[str, Any], key: str, default: Any = None) -> Any:
    """Value at ``key`` (a dot path), or ``default`` when absent or None."""
    if key in values:
        value = values[key]
        return default if value is None else value
    if "." not in key:
        return default
    node: Any = values
    for part in key.split("."):
        if type(node) is not dict or part not in node:
            return default
        node = node[part]
    return default if node is None else node


def has_path(values: dict[str, Any], key: str) -> bool:
    """True when ``key`` is present and not None."""
    return get_path(values, key, _MISSING) is not _MISSING


def set_path(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key``, creating (or replacing non-dict) intermediate levels."""
    if "." not in key:
        values[key] = value
        return
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        child = node.get(part)
        if type(child) is not dict:
            child = node[part] = {}
        node = child
    node[leaf] = value


def delete_path(values: dict[str, Any], key: str) -> bool:
    """Remove ``key``; True if something was removed."""
    if key in values:
        del values[key]
        return True
    if "." not in key:
        return False
    *parents, leaf = key.split(".")
    node: Any = values
    for part in parents:
        if type(node) is not dict or part not in node:
            return False
        node = node[part]
    if type(node) is dict and leaf in node:
        del node[leaf]
        return True
    return False
