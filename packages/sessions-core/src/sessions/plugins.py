"""Driver discovery: pluggy hooks fed by the ``sessions.drivers`` entry points.

Loading is lazy (the first lookup), cached for the process, and isolated: a
plugin that fails to import or to register is recorded with its distribution,
version and exception, and never stops the others. The ``SESSIONS_PLUGINS``
(allow-list; set but empty means none) and ``SESSIONS_DISABLED_PLUGINS``
(block-list) environment variables name entry points (or distributions) and are
applied before anything is imported.

Core's own drivers (``memory``, ``cookie``) come from a default plugin,
registered through the same hook as everybody else's. Plugins that add no
driver (audit logs, metrics, commands) are found under a second entry-point
group, ``sessions.plugins``, or registered by the application with
:meth:`Plugins.register`.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import DriverConflictError, DriverNotFoundError

if TYPE_CHECKING:
    import click

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY",
    "PLUGIN_ENTRY_POINT_GROUP",
    "DriverEntry",
    "DriverRegistry",
    "PluginFailure",
    "Plugins",
    "load_plugins",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "sessions.drivers"
#: Plugins that register no driver: the entry-point name is just the plugin's name.
PLUGIN_ENTRY_POINT_GROUP = "sessions.plugins"
#: First-party driver names and the distribution that provides each.
FIRST_PARTY = {
    "file": "sessions-file",
    "redis": "sessions-redis",
    "sql": "sessions-sql",
    "memcached": "sessions-memcached",
}
ALLOW_VAR = "SESSIONS_PLUGINS"
BLOCK_VAR = "SESSIONS_DISABLED_PLUGINS"
_CORE_DIST = "sessions-core"
_BUILTIN = "sessions.drivers.builtin"
_NAME = re.compile(r"[a-z][a-z0-9_]*")

Factory = type | str | Callable[..., Any]


@dataclass
class DriverEntry:
    """A registered driver: its config name, factory and where it came from."""

    name: str
    factory: Factory
    distribution: str
    version: str
    plugin: str = ""
    _loaded: Any = field(default=None, repr=False)

    @property
    def target(self) -> str:
        """``module:attr`` of the factory, for listings and conflict messages."""
        if isinstance(self.factory, str):
            return self.factory
        module = getattr(self.factory, "__module__", "?")
        qualname = getattr(self.factory, "__qualname__", repr(self.factory))
        return f"{module}:{qualname}"

    @property
    def origin(self) -> str:
        """``distribution version (module:attr)``, to name it in errors."""
        return f"{self.distribution} {self.version} ({self.target})"

    def load(self) -> Callable[..., Any]:
        """Import (once) and return the driver factory, usually a class.

        Raises DriverNotFoundError, chained to the import error, when the
        ``module:attr`` string does not resolve.
        """
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
                        f"could not be loaded from {self.factory!r}: {type(exc).__name__}: {exc}"
                    ) from exc
                if not callable(obj):
                    raise DriverNotFoundError(
                        f"session driver {self.name!r} from {self.distribution} {self.version}: "
                        f"{self.factory!r} is a {type(obj).__name__}, not a driver class"
                    )
                self._loaded = obj
            else:
                self._loaded = self.factory
        loaded: Callable[..., Any] = self._loaded
        return loaded


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported, or failed while registering."""

    name: str
    distribution: str
    version: str
    error: BaseException
    #: ``"import"`` (the plugin module raised), ``"register"`` (its hook raised or
    #: did not register the driver its entry point promises) or ``"commands"``.
    stage: str = "import"

    def describe(self) -> str:
        """One line: who failed, at which stage, and why."""
        return (
            f"{self.name} (from {self.distribution} {self.version}) failed at {self.stage}: "
            f"{type(self.error).__name__}: {self.error}"
        )

    @property
    def traceback(self) -> str:
        """The formatted traceback of :attr:`error`."""
        return "".join(traceback.format_exception(self.error))


class DriverRegistry:
    """What ``sessions_register_drivers`` receives: a place to add drivers.

    Each plugin's additions are staged and kept only if its hook returns
    normally, so a plugin that fails half-way leaves nothing behind.
    """

    def __init__(self) -> None:
        self.entries: dict[str, DriverEntry] = {}
        #: Names claimed by more than one distribution, with every claimant.
        self.conflicts: dict[str, list[DriverEntry]] = {}
        self._source = (_CORE_DIST, _version(_CORE_DIST), _BUILTIN)
        self._pending: list[DriverEntry] | None = None

    def add(self, name: str, factory: Factory) -> None:
        """Register ``factory`` under the config name ``name``.

        ``factory`` is a driver class, any callable taking a
        :class:`~sessions.driver.DriverConfig`, or (best) a ``"module:attr"``
        string, imported only when the driver is selected.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"driver name {name!r} is not valid: use lowercase letters, digits and "
                "underscores, starting with a letter (it is what SESSION_DRIVER selects)"
            )
        if isinstance(factory, str):
            module, sep, attr = factory.partition(":")
            if not (sep and module and attr):
                raise ValueError(
                    f"driver {name!r}: factory {factory!r} is not valid: give a class or a "
                    "'module:attr' string such as 'my_package.driver:MyDriver'"
                )
        elif not callable(factory):
            raise TypeError(
                f"driver {name!r}: factory must be a class or a 'module:attr' string, "
                f"not {type(factory).__name__}"
            )
        dist, version, plugin = self._source
        entry = DriverEntry(name, factory, dist, version, plugin)
        if self._pending is not None:
            self._pending.append(entry)
        else:
            self._merge(entry)

    def _merge(self, entry: DriverEntry) -> None:
        name = entry.name
        if name in self.conflicts:
            if not any(_same(entry, other) for other in self.conflicts[name]):
                self.conflicts[name].append(entry)
            return
        existing = self.entries.get(name)
        if existing is None:
            self.entries[name] = entry
        elif not _same(existing, entry):
            del self.entries[name]
            self.conflicts[name] = [existing, entry]

    def _begin(self, source: tuple[str, str, str]) -> None:
        self._source = source
        self._pending = []

    def _end(self, keep: bool) -> None:
        pending, self._pending = self._pending or [], None
        if keep:
            for entry in pending:
                self._merge(entry)


def _same(one: DriverEntry, other: DriverEntry) -> bool:
    return (_normalize(one.distribution), one.target) == (
        _normalize(other.distribution),
        other.target,
    )


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {_normalize(part.strip()) for part in raw.split(",") if part.strip()}


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "unknown", "unknown"
    return dist.name, dist.version


class Plugins:
    """The loaded plugin set: a pluggy manager plus the driver registry.

    Args:
        autoload: load the plugins that installed distributions declare under the
            ``sessions.drivers`` entry point group (``False``: core's drivers only).
    """

    def __init__(self, *, autoload: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = DriverRegistry()
        #: Plugins that failed, by entry-point name.
        self.failures: dict[str, PluginFailure] = {}
        #: Entry points not loaded because of the environment, with the reason.
        self.skipped: dict[str, str] = {}
        #: Plugins whose ``sessions_register_commands`` raised.
        self.command_failures: list[PluginFailure] = []
        from .drivers import builtin

        self.pm.register(builtin, name=_BUILTIN)
        self._sources: dict[str, tuple[str, str, str]] = {
            _BUILTIN: (_CORE_DIST, _version(_CORE_DIST), _BUILTIN)
        }
        self._promised: dict[str, str] = {}  # entry-point name -> plugin name
        if autoload:
            self._load_entry_points()
        self._register_drivers()

    # -- loading -----------------------------------------------------------------

    def _candidates(self, group: str) -> dict[str, list[metadata.EntryPoint]]:
        """Entry points by name, exact duplicates (same distribution twice) removed."""
        by_name: dict[str, list[metadata.EntryPoint]] = {}
        for ep in metadata.entry_points(group=group):
            same_name = by_name.setdefault(ep.name, [])
            dist = _normalize(_dist_of(ep)[0])
            # The first copy on sys.path is the one Python imports; later ones are shadows.
            if not any(_normalize(_dist_of(other)[0]) == dist for other in same_name):
                same_name.append(ep)
        return by_name

    def _disabled(self, name: str, dist: str) -> str | None:
        keys = {_normalize(name), _normalize(dist)}
        allowed = _names(ALLOW_VAR)
        if allowed is not None and not keys & allowed:
            return f"not listed in {ALLOW_VAR}={os.environ.get(ALLOW_VAR, '')!r}"
        blocked = _names(BLOCK_VAR) or set()
        if keys & blocked:
            return f"listed in {BLOCK_VAR}={os.environ.get(BLOCK_VAR, '')!r}"
        return None

    def _load_entry_points(self) -> None:
        for group in (ENTRY_POINT_GROUP, PLUGIN_ENTRY_POINT_GROUP):
            for name, candidates in self._candidates(group).items():
                # Filtering each claimant lets a user settle a conflict by disabling
                # one distribution (SESSIONS_DISABLED_PLUGINS=sessions-other).
                enabled = []
                for ep in candidates:
                    reason = self._disabled(name, _dist_of(ep)[0])
                    if reason is None:
                        enabled.append(ep)
                    else:
                        self.skipped[name] = reason
                if len(enabled) > 1:
                    # Nothing is imported: no claimant can be trusted to be the one meant.
                    self.registry.conflicts[name] = [
                        DriverEntry(name, ep.value, *_dist_of(ep)) for ep in enabled
                    ]
                elif enabled:
                    self.skipped.pop(name, None)
                    dist, version = _dist_of(enabled[0])
                    self._load(name, enabled[0], dist, version, group == ENTRY_POINT_GROUP)

    def _load(
        self, name: str, ep: metadata.EntryPoint, dist: str, version: str, promises: bool
    ) -> None:
        try:
            module = ep.load()
            plugin_name = self.pm.get_name(module) if self.pm.is_registered(module) else None
            if plugin_name is None:
                plugin_name = f"{dist}:{name}"
                self.pm.register(module, name=plugin_name)
        except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the app
            self.failures[name] = PluginFailure(name, dist, version, exc, "import")
            return
        self._sources.setdefault(plugin_name, (dist, version, plugin_name))
        if promises:
            self._promised[name] = plugin_name

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object (a module or an instance with hook methods).

        For applications that add an audit or metrics plugin without packaging
        it; call it before the manager handles its first request, since the
        manager checks for lifecycle hooks once, when it builds its driver.
        Drivers the plugin registers are added as if it had been discovered.
        """
        plugin_name = self.pm.register(plugin, name=name)
        if plugin_name is None:
            raise ValueError(f"plugin {name or plugin!r} is blocked in this plugin manager")
        source = ("application", "unknown", plugin_name)
        self._sources[plugin_name] = source
        impls = self.pm.hook.sessions_register_drivers.get_hookimpls()
        for impl in impls:
            if impl.plugin_name == plugin_name:
                self.registry._begin(source)
                try:
                    impl.function(registry=self.registry)
                except BaseException:
                    self.registry._end(keep=False)
                    raise
                self.registry._end(keep=True)

    def _register_drivers(self) -> None:
        # One plugin at a time, so each driver knows its distribution and a
        # failing plugin's partial registrations can be dropped.
        registry = self.registry
        for impl in self.pm.hook.sessions_register_drivers.get_hookimpls():
            dist, version, plugin = self._sources.get(
                impl.plugin_name, ("unknown", "unknown", impl.plugin_name)
            )
            registry._begin((dist, version, plugin))
            try:
                impl.function(registry=registry)
            except Exception as exc:
                registry._end(keep=False)
                self._fail_plugin(impl.plugin_name, exc)
            else:
                registry._end(keep=True)
        for name, plugin_name in self._promised.items():
            if name in self.failures or name in registry.conflicts:
                continue
            entry = registry.entries.get(name)
            if entry is None or entry.plugin != plugin_name:
                dist, version, _ = self._sources[plugin_name]
                found = sorted(e.name for e in registry.entries.values() if e.plugin == plugin_name)
                error = LookupError(
                    f"its entry point sessions.drivers:{name} promises a driver named {name!r}, "
                    f"but the plugin registered {', '.join(map(repr, found)) or 'no driver'}"
                )
                self.failures[name] = PluginFailure(name, dist, version, error, "register")

    def _fail_plugin(self, plugin_name: str, exc: BaseException) -> None:
        dist, version, _ = self._sources.get(plugin_name, ("unknown", "unknown", plugin_name))
        names = [n for n, p in self._promised.items() if p == plugin_name] or [plugin_name]
        for name in names:
            self.failures[name] = PluginFailure(name, dist, version, exc, "register")

    # -- commands ------------------------------------------------------------------

    def register_commands(self, cli: click.Group) -> None:
        """Let every plugin add its subcommands to ``cli``; failures are recorded
        in :attr:`command_failures` and never stop the others."""
        for impl in self.pm.hook.sessions_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:
                dist, version, _ = self._sources.get(
                    impl.plugin_name, ("unknown", "unknown", impl.plugin_name)
                )
                self.command_failures.append(
                    PluginFailure(impl.plugin_name, dist, version, exc, "commands")
                )

    # -- lookup ----------------------------------------------------------------------

    @property
    def drivers(self) -> dict[str, DriverEntry]:
        """Usable registered drivers by config name (conflicting names excluded)."""
        return self.registry.entries

    def get(self, name: str) -> DriverEntry:
        """The entry for driver ``name``; a clear error when it cannot be used.

        Raises:
            DriverConflictError: two distributions claim ``name``.
            DriverNotFoundError: nothing provides ``name``, or its plugin failed
                (chained to the plugin's exception).
        """
        conflict = self.registry.conflicts.get(name)
        if conflict:
            raise DriverConflictError(
                f"session driver {name!r} is claimed by more than one distribution: "
                f"{'; '.join(entry.origin for entry in conflict)}. "
                "Uninstall all but one of them."
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
        if name in self.skipped:
            raise DriverNotFoundError(
                f"session driver {name!r} is installed but disabled: {self.skipped[name]} "
                f"(enabled: {installed}). Allow it there to use it."
            )
        if name in FIRST_PARTY:
            hint = f" Install it with: pip install {FIRST_PARTY[name]}"
        else:
            hint = (
                " Check the spelling, or install the package that provides it. An "
                "unpackaged driver is passed as SessionManager(config, "
                f"drivers={{{name!r}: YourDriver}})."
            )
        raise DriverNotFoundError(
            f"no session driver named {name!r} is installed (installed: {installed}).{hint}"
        )


_lock = threading.Lock()
_cache: dict[tuple[bool, str | None, str | None], Plugins] = {}


def load_plugins(*, autoload: bool = True) -> Plugins:
    """The process-wide plugin set, loaded on first call and cached.

    The cache is keyed by the allow- and block-lists too, so a process that
    changes ``SESSIONS_PLUGINS`` gets the plugin set those lists describe.
    """
    key = (
        autoload,
        os.environ.get("SESSIONS_PLUGINS"),
        os.environ.get("SESSIONS_DISABLED_PLUGINS"),
    )
    plugins = _cache.get(key)
    if plugins is None:
        with _lock:
            plugins = _cache.get(key)
            if plugins is None:
                plugins = _cache[key] = Plugins(autoload=autoload)
    return plugins


def reset_plugins() -> None:
    """Forget the cached plugin set (tests, or after installing a plugin at runtime)."""
    with _lock:
        _cache.clear()
