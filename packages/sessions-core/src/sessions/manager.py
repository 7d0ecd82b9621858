"""The session manager: one per application, owning config, driver and plugins."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .collection import SessionCollection
from .config import SessionConfig
from .driver import (
    DriverConfig,
    Flavours,
    GcProgress,
    GcResult,
    RequestContext,
    flavours_of,
    on_asyncio,
    validate_options,
)
from .errors import ConfigError, TaggingNotSupportedError
from .hookspecs import LIFECYCLE_HOOKS
from .keys import IdSigner
from .plugins import Plugins, load_plugins
from .session import Session

__all__ = ["SessionManager"]

log = logging.getLogger("sessions")
#: First-party drivers with the tagging capability, for error messages.
TAGGING_DRIVERS = ("memory", "file", "redis", "sql")


class SessionManager:
    """Builds the selected driver once and hands out a :class:`Session` per request.

    Data flows one way: config -> manager -> per-request session -> driver.
    The selected driver is resolved and its options validated when the manager
    is built, so a missing driver or a misspelt option fails at startup, not on
    the first request. The driver instance (and its pools or clients) is
    created on first use, which the integrations trigger when constructed.

    Args:
        config: the validated configuration.
        autoload_plugins: load installed driver packages through entry points
            (``False`` keeps only core's drivers and those given in ``drivers``).
        drivers: drivers the application adds without packaging them,
            ``{"name": factory}``, selectable as ``driver=name`` (see :meth:`extend`).
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        autoload_plugins: bool = True,
        drivers: Mapping[str, Callable[[DriverConfig], Any]] | None = None,
    ) -> None:
        if not isinstance(config, SessionConfig):
            raise TypeError(f"SessionManager needs a SessionConfig, got {type(config).__name__}")
        self.config = config
        self.signer = IdSigner(config.secrets, config.cookie_name)
        self._autoload = autoload_plugins
        self._plugins: Plugins | None = None
        self._extensions: dict[str, Callable[[DriverConfig], Any]] = dict(drivers or {})
        self._driver: Any = None
        self._flavours: Flavours | None = None
        self._for_request: Callable[[RequestContext], Any] | None = None
        self._lock = threading.Lock()
        self.lifecycle_hooks: Any = None
        self.touches_on_read = False
        self.blocking = True
        self._resolved: tuple[Callable[[DriverConfig], Any], dict[str, Any]] | None = None
        self._collection: SessionCollection | None = None
        if config.enabled and config.driver not in self._extensions:
            # Fail now, at startup: an unknown driver, a broken plugin or a bad option.
            self._resolve()

    # -- plugins and drivers -----------------------------------------------------

    @property
    def plugins(self) -> Plugins:
        """The loaded plugin set (loads it on first access)."""
        if self._plugins is None:
            self._plugins = load_plugins(autoload=self._autoload)
        return self._plugins

    def extend(self, name: str, factory: Callable[[DriverConfig], Any]) -> None:
        """Add a driver without packaging it, selectable as ``driver=name``.

        ``factory`` is a driver class (or any callable) taking a
        :class:`~sessions.driver.DriverConfig`; its ``options`` attribute, if
        any, declares the options it accepts. A plain class with just
        ``read``/``write``/``destroy``/``touch`` works. Passing
        ``drivers={name: factory}`` to the constructor does the same and is
        checked at startup; call this before the first request.
        """
        if self._driver is not None and name == self.config.driver:
            raise RuntimeError(
                f"extend({name!r}) came after the driver was built; "
                "call it before the first request"
            )
        self._extensions[name] = factory
        if name == self.config.driver:
            self._resolved = None
            if self.config.enabled:
                self._resolve()

    def _resolve(self) -> tuple[Callable[[DriverConfig], Any], dict[str, Any]]:
        if self._resolved is None:
            name = self.config.driver
            factory = self._factory(name)
            options = validate_options(name, factory, self.config.driver_options(name))
            if isinstance(factory, type):
                flavours_of(factory, name)  # a class that is no driver fails now too
            self._resolved = (factory, options)
        return self._resolved

    def _factory(self, name: str) -> Callable[[DriverConfig], Any]:
        if name in self._extensions:
            return self._extensions[name]
        return self.plugins.get(name).load()

    @property
    def driver(self) -> Any:
        """The driver instance (built on first access, then shared by all requests)."""
        if self._driver is None:
            with self._lock:
                if self._driver is None:
                    self._build()
        return self._driver

    @property
    def flavours(self) -> Flavours:
        """Which flavours (sync, async) the selected driver implements."""
        if self._flavours is None:
            self.driver  # noqa: B018 - builds driver and flavours
        assert self._flavours is not None
        return self._flavours

    def _build(self) -> None:
        name = self.config.driver
        factory, options = self._resolve()
        hooks = self.plugins.pm.hook
        active = any(getattr(hooks, h).get_hookimpls() for h in LIFECYCLE_HOOKS)
        self.lifecycle_hooks = hooks if active else None
        driver_config = DriverConfig(
            name=name,
            options=options,
            age=self.config.age_seconds,
            session=self.config,
            notify_decode_failed=self._notify_driver_decode_failed,
        )
        plain: Callable[[], Any] = factory  # type: ignore[assignment]
        driver = factory(driver_config) if _takes_config(factory) else plain()
        self._flavours = flavours_of(type(driver), name)
        self.touches_on_read = bool(getattr(driver, "touches_on_read", False))
        self.blocking = bool(getattr(driver, "blocking", True))
        per_request = getattr(driver, "for_request", None)
        self._for_request = per_request if callable(per_request) else None
        self._driver = driver

    def request_driver(self, context: RequestContext) -> Any:
        """The driver for one request: its ``for_request(context)``, or the driver itself."""
        driver = self.driver
        per_request = self._for_request
        return driver if per_request is None else per_request(context)

    def _notify_driver_decode_failed(self, source: str, reason: str) -> None:
        self.report_decode_failure(source, reason)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call lifecycle hook ``hook`` on every plugin, each in isolation.

        A plugin whose hook raises is logged with its name and skipped: an
        audit plugin's bug must never turn a request (or a garbage cookie
        anyone can send) into an error page.
        """
        if self.lifecycle_hooks is None:
            return
        caller = getattr(self.lifecycle_hooks, hook)
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:
                log.exception(
                    "sessions: plugin %r raised in hook %s; ignored", impl.plugin_name, hook
                )

    def report_decode_failure(self, source: str, reason: str) -> None:
        """Tell plugins a cookie or payload failed to verify or decode."""
        if self.lifecycle_hooks is not None:
            self.notify(
                "sessions_decode_failed", source=source, reason=reason, driver=self.config.driver
            )

    def report_conflict(self, session_id: str, outcome: str, attempts: int) -> None:
        """Log, and tell plugins, that a commit met a concurrent change to its session."""
        if outcome == "dropped":
            log.warning(
                "sessions: session %s was destroyed by another request while this one "
                "ran; this request's changes to it were dropped",
                session_id[:12],
            )
        else:
            log.info(
                "sessions: session %s was changed by another request; merged after %d attempts",
                session_id[:12],
                attempts,
            )
        if self.lifecycle_hooks is not None:
            self.notify(
                "sessions_conflict",
                session_id=session_id,
                outcome=outcome,
                attempts=attempts,
                driver=self.config.driver,
            )

    def require_sync(self) -> None:
        """Raise unless the driver can be called from sync code (WSGI, Flask)."""
        if not self.flavours.sync:
            raise ConfigError(
                "driver",
                self.config.driver,
                "this driver is async-only, so it cannot serve a sync (WSGI) application; "
                "use an ASGI application or a driver with sync methods",
            )

    def require_tagging(self) -> None:
        """Raise unless the driver can find sessions by tag."""
        if not self.flavours.tagging:
            raise TaggingNotSupportedError(
                f"session driver {self.config.driver!r} cannot find sessions by tag, so "
                "session.tag() and manager.sessions.tagged()/destroy_tagged() are not "
                f"available with it; drivers that can: {', '.join(TAGGING_DRIVERS)}"
            )

    @property
    def sessions(self) -> SessionCollection:
        """The stored sessions: list a user's, end one or all (see :mod:`sessions.collection`)."""
        collection = self._collection
        if collection is None:
            collection = self._collection = SessionCollection(self)
        return collection

    # -- sessions ---------------------------------------------------------------------

    def session(self, context: RequestContext, *, form: Callable[[], Any] | None = None) -> Session:
        """A new, uninitiated session for one request."""
        return Session(self, context, form=form)

    def context(
        self, cookies: dict[str, str], *, https: bool = False, scope: Any = None
    ) -> RequestContext:
        """A request context over already-parsed cookies."""
        return RequestContext(cookies, https=https, scope=scope)

    # -- maintenance ------------------------------------------------------------------

    @property
    def has_gc(self) -> bool:
        """True when the driver declares the ``gc`` capability."""
        return callable(getattr(self.driver, "gc", None)) or callable(
            getattr(self.driver, "agc", None)
        )

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Run the driver's bulk clean-up of expired sessions.

        Raises ConfigError when the driver has no ``gc`` capability (stores with
        their own expiry, such as Redis and memcached, need none).
        """
        fn = getattr(self.driver, "gc", None)
        if fn is None:
            raise ConfigError(
                "driver",
                self.config.driver,
                "a driver with the gc capability (file, sql, memory); "
                "this one expires sessions by itself",
            )
        result: GcResult = fn(progress=progress)
        return result

    def close(self) -> None:
        """Release the driver's resources (pools, clients, engines)."""
        if self._driver is not None:
            close = getattr(self._driver, "close", None)
            if close is not None and not inspect.iscoroutinefunction(close):
                close()

    async def aclose(self) -> None:
        """Release the driver's resources from async code."""
        if self._driver is None:
            return
        aclose = getattr(self._driver, "aclose", None)
        if aclose is not None and (self.flavours.async_library is None or on_asyncio()):
            await aclose()
        else:
            self.close()


def _takes_config(factory: Callable[..., Any]) -> bool:
    """False for a factory that takes no argument (a plain class with just the four methods)."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return True
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.VAR_POSITIONAL,
    )
    return any(p.kind in positional for p in signature.parameters.values())
