"""The session manager: one per application, owning config, driver and plugins."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

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
from .errors import ConfigError
from .keys import IdSigner
from .plugins import Plugins, load_plugins
from .session import Session

__all__ = ["SessionManager"]

_LIFECYCLE = (
    "sessions_initiated",
    "sessions_committed",
    "sessions_migrated",
    "sessions_destroyed",
    "sessions_decode_failed",
)


class SessionManager:
    """Builds the selected driver once and hands out a :class:`Session` per request.

    Data flows one way: config -> manager -> per-request session -> driver.
    The driver (and its pools or clients) is created on first use, which the
    integrations trigger when they are constructed, so a bad driver or driver
    option fails at application startup.

    Args:
        config: the validated configuration.
        autoload_plugins: load installed driver packages through entry points
            (``False`` keeps only core's drivers and those added with :meth:`extend`).
    """

    def __init__(self, config: SessionConfig, *, autoload_plugins: bool = True) -> None:
        if not isinstance(config, SessionConfig):
            raise TypeError(f"SessionManager needs a SessionConfig, got {type(config).__name__}")
        self.config = config
        self.signer = IdSigner(config.secrets, config.cookie_name)
        self._autoload = autoload_plugins
        self._plugins: Plugins | None = None
        self._extensions: dict[str, Callable[[DriverConfig], Any]] = {}
        self._driver: Any = None
        self._flavours: Flavours | None = None
        self._lock = threading.Lock()
        self.lifecycle_hooks: Any = None
        self.touches_on_read = False

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
        any, declares the options it accepts. Call this before the first request.
        """
        if self._driver is not None and name == self.config.driver:
            raise RuntimeError(
                f"extend({name!r}) came after the driver was built; "
                "call it before the first request"
            )
        self._extensions[name] = factory

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
        factory = self._factory(name)
        options = validate_options(name, factory, self.config.driver_options(name))
        hooks = self.plugins.pm.hook
        active = any(getattr(hooks, h).get_hookimpls() for h in _LIFECYCLE)
        self.lifecycle_hooks = hooks if active else None
        driver_config = DriverConfig(
            name=name,
            options=options,
            age=self.config.age_seconds,
            session=self.config,
            notify_decode_failed=self._notify_driver_decode_failed,
        )
        driver = factory(driver_config)
        self._flavours = flavours_of(type(driver), name)
        self.touches_on_read = bool(getattr(driver, "touches_on_read", False))
        self._driver = driver

    def _notify_driver_decode_failed(self, source: str, reason: str) -> None:
        self.report_decode_failure(source, reason)

    def report_decode_failure(self, source: str, reason: str) -> None:
        """Tell plugins a cookie or payload failed to verify or decode."""
        if self.lifecycle_hooks is not None:
            self.lifecycle_hooks.sessions_decode_failed(
                source=source, reason=reason, driver=self.config.driver
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
