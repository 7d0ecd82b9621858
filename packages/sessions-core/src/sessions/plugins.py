"""Driver discovery: pluggy hooks fed by the ``sessions.drivers`` entry points.

Loading is lazy (the first lookup), cached for the process, and isolated: a
plugin that fails to import is recorded and never stops the others. The
``SESSIONS_PLUGINS`` (allow-list; set but empty means none) and
``SESSIONS_DISABLED_PLUGINS`` (block-list) environment variables are applied to
entry-point names before anything is imported.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import DriverConflictError, DriverNotFoundError

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY",
    "DriverEntry",
    "DriverRegistry",
    "PluginFailure",
    "Plugins",
    "load_plugins",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "sessions.drivers"
FIRST_PARTY = {
    "file": "sessions-file",
    "redis": "sessions-redis",
    "sql": "sessions-sql",
    "memcached": "sessions-memcached",
}
_CORE_DIST = "sessions-core"


@dataclass
class DriverEntry:
    """A registered driver: its config name, factory and where it came from."""

    name: str
    factory: type | str
    distribution: str
    version: str
    _loaded: type | None = field(default=None, repr=False)

    @property
    def target(self) -> str:
        """``module:attr`` of the factory, for listings."""
        if isinstance(self.factory, str):
            return self.factory
        return f"{self.factory.__module__}:{self.factory.__qualname__}"

    def load(self) -> type:
        """Import (once) and return the driver class."""
        if self._loaded is None:
            if isinstance(self.factory, str):
                module_name, _, attr = self.factory.partition(":")
                try:
                    obj: Any = importlib.import_module(module_name)
                    for part in attr.split("."):
                        obj = getattr(obj, part)
                except Exception as exc:
                    raise DriverNotFoundError(
                        f"session driver {self.name!r} from {self.distribution} {self.version} "
                        f"could not be loaded ({self.factory}): {type(exc).__name__}: {exc}"
                    ) from exc
                self._loaded = obj
            else:
                self._loaded = self.factory
        assert self._loaded is not None
        return self._loaded


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or failed while registering."""

    name: str
    distribution: str
    version: str
    error: BaseException

    def describe(self) -> str:
        """One line: who failed and why."""
        return (
            f"{self.name} (from {self.distribution} {self.version}): "
            f"{type(self.error).__name__}: {self.error}"
        )


class DriverRegistry:
    """What ``sessions_register_drivers`` receives: a place to add drivers."""

    def __init__(self) -> None:
        self.entries: dict[str, DriverEntry] = {}
        self.conflicts: dict[str, list[str]] = {}
        self._source = (_CORE_DIST, _version(_CORE_DIST))

    def add(self, name: str, factory: type | str) -> None:
        """Register ``factory`` (a driver class or ``"module:Class"``) under ``name``."""
        dist, version = self._source
        entry = DriverEntry(name, factory, dist, version)
        existing = self.entries.get(name)
        if existing is not None:
            if (existing.distribution, existing.target) == (dist, entry.target):
                return
            claimants = self.conflicts.setdefault(name, [_who(existing)])
            claimants.append(_who(entry))
            return
        self.entries[name] = entry


def _who(entry: DriverEntry) -> str:
    return f"{entry.distribution} {entry.version} ({entry.target})"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class Plugins:
    """The loaded plugin set: a pluggy manager plus the driver registry."""

    def __init__(self, *, autoload: bool = True) -> None:
        self.pm = pluggy.PluginManager("sessions")
        self.pm.add_hookspecs(hookspecs)
        self.failures: dict[str, PluginFailure] = {}
        self.registry = DriverRegistry()
        from .drivers import builtin

        self.pm.register(builtin, name="sessions.drivers.builtin")
        self._sources: dict[str, tuple[str, str]] = {
            "sessions.drivers.builtin": (_CORE_DIST, _version(_CORE_DIST))
        }
        if autoload:
            self._load_entry_points()
        self._register_drivers()

    def _load_entry_points(self) -> None:
        allowed = _names("SESSIONS_PLUGINS")
        blocked = _names("SESSIONS_DISABLED_PLUGINS") or set()
        seen: dict[str, tuple[str, str]] = {}
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allowed is not None and ep.name not in allowed) or ep.name in blocked:
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            version = ep.dist.version if ep.dist is not None else "unknown"
            key = (dist, ep.value)
            previous = seen.get(ep.name)
            if previous == key:
                continue  # the same distribution seen twice on sys.path
            seen[ep.name] = key
            plugin_name = f"{dist}:{ep.name}"
            try:
                module = ep.load()
                self.pm.register(module, name=plugin_name)
            except Exception as exc:
                if previous is None:
                    self.failures[ep.name] = PluginFailure(ep.name, dist, version, exc)
                continue
            self._sources[plugin_name] = (dist, version)

    def _register_drivers(self) -> None:
        # Called one plugin at a time so every driver knows its distribution.
        for impl in reversed(self.pm.hook.sessions_register_drivers.get_hookimpls()):
            self.registry._source = self._sources.get(impl.plugin_name, ("unknown", "unknown"))
            try:
                impl.function(registry=self.registry)
            except Exception as exc:
                dist, version = self.registry._source
                name = impl.plugin_name.rpartition(":")[2]
                self.failures[name] = PluginFailure(name, dist, version, exc)

    @property
    def drivers(self) -> dict[str, DriverEntry]:
        """Registered drivers by config name."""
        return self.registry.entries

    def get(self, name: str) -> DriverEntry:
        """The entry for driver ``name``; a clear error when it cannot be used."""
        conflict = self.registry.conflicts.get(name)
        if conflict:
            raise DriverConflictError(
                f"session driver {name!r} is registered by more than one distribution: "
                f"{'; '.join(conflict)}. Uninstall one of them."
            )
        entry = self.drivers.get(name)
        if entry is not None:
            return entry
        failure = self.failures.get(name)
        if failure is not None:
            raise DriverNotFoundError(
                f"session driver {name!r} is installed but its plugin failed to load: "
                f"{failure.describe()}"
            ) from failure.error
        installed = ", ".join(sorted(self.drivers)) or "none"
        hint = ""
        if name in FIRST_PARTY:
            hint = f" Install it with: pip install {FIRST_PARTY[name]}."
        raise DriverNotFoundError(
            f"no session driver named {name!r} is installed (installed: {installed}).{hint}"
        )


_lock = threading.Lock()
_cache: dict[bool, Plugins] = {}


def load_plugins(*, autoload: bool = True) -> Plugins:
    """The process-wide plugin set, loaded on first call."""
    plugins = _cache.get(autoload)
    if plugins is None:
        with _lock:
            plugins = _cache.get(autoload)
            if plugins is None:
                plugins = _cache[autoload] = Plugins(autoload=autoload)
    return plugins


def reset_plugins() -> None:
    """Forget the cached plugin set (tests, or after installing a plugin at runtime)."""
    with _lock:
        _cache.clear()
