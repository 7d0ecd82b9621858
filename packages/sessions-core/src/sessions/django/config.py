"""The Django engine's configuration and its one manager per process.

Settings, most specific first:

* ``SESSIONS = {...}`` in Django's settings, whose keys are
  :class:`~sessions.SessionConfig`'s fields (``driver``, ``drivers``, ``secret``, ...);
* the ``SESSION_*`` environment variables, read as :meth:`SessionConfig.from_env`
  reads them (``SESSION_DRIVER=redis``, ``SESSION_REDIS_URL=...``);
* defaults from Django: the secret is derived (HKDF) from ``SECRET_KEY`` (and the
  fallbacks from ``SECRET_KEY_FALLBACKS``), never ``SECRET_KEY`` itself; the age
  is ``SESSION_COOKIE_AGE``.

The manager is built on first use and shared by every request of the process.
Django's ``setting_changed`` signal (``override_settings`` in tests) drops it so
the next request builds one from the new settings.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..config import SessionConfig
from ..errors import ConfigError
from ..keys import derive_keys
from ..manager import SessionManager

__all__ = [
    "ENGINE",
    "SECRET_LABEL",
    "build_config",
    "derived_secret",
    "get_manager",
    "reset_manager",
]

#: The value of ``SESSION_ENGINE`` that selects this engine.
ENGINE = "sessions.django"
#: HKDF label of the secret derived from ``SECRET_KEY``: it keys nothing else.
SECRET_LABEL = b"sessions/v1/django-secret"
#: SessionConfig fields a ``SESSIONS`` setting may hold.
FIELDS = tuple(f.name for f in dataclasses.fields(SessionConfig) if f.init)
#: Fields that describe our own id cookie; Django's SESSION_COOKIE_* settings
#: govern its cookie, so these change nothing here (a system check warns).
COOKIE_FIELDS = ("cookie_name", "cookie", "clear_with_browser", "enabled")
#: Django settings the manager is built from; changing one rebuilds it.
WATCHED = frozenset(
    {"SESSIONS", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SESSION_COOKIE_AGE", "SESSION_ENGINE"}
)


def derived_secret(secret_key: str) -> str:
    """A 43-character secret derived from Django's ``SECRET_KEY`` with HKDF-SHA256."""
    (key,) = derive_keys([secret_key], SECRET_LABEL)
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _setting(name: str) -> Any:
    try:
        return getattr(settings, name)
    except ImproperlyConfigured as exc:
        raise ConfigError(name, None, f"a Django setting: {exc}") from None


def build_config(environ: Mapping[str, str] | None = None) -> SessionConfig:
    """The :class:`SessionConfig` Django's settings and the environment describe.

    Raises :class:`~sessions.ConfigError` naming the offending setting.
    """
    env = os.environ if environ is None else environ
    given: Any = getattr(settings, "SESSIONS", {})
    if not isinstance(given, Mapping):
        raise ConfigError("SESSIONS", given, f"a dict whose keys are among {', '.join(FIELDS)}")
    unknown = sorted(str(k) for k in set(given) - set(FIELDS))
    if unknown:
        raise ConfigError(
            f"SESSIONS[{unknown[0]!r}]", given[unknown[0]], f"keys among {', '.join(FIELDS)}"
        )
    overrides = {k: v for k, v in given.items() if k != "drivers"}
    if "secret" not in overrides and "SESSION_SECRET" not in env:
        secret_key = _setting("SECRET_KEY")
        if not isinstance(secret_key, str) or not secret_key:
            raise ConfigError("SECRET_KEY", None, "a non-empty SECRET_KEY, or SESSIONS['secret']")
        overrides["secret"] = derived_secret(secret_key)
        if "secret_fallbacks" not in overrides and "SESSION_SECRET_FALLBACKS" not in env:
            fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ()
            overrides["secret_fallbacks"] = tuple(
                derived_secret(old) for old in fallbacks if isinstance(old, str) and old
            )
    if "age" not in overrides and "SESSION_AGE" not in env:
        overrides["age"] = _setting("SESSION_COOKIE_AGE")
    if "driver" not in overrides and "SESSION_DRIVER" not in env:
        raise ConfigError(
            "SESSIONS['driver']",
            None,
            "the name of an installed storage driver, e.g. SESSIONS = {'driver': 'redis'} "
            "(or the SESSION_DRIVER environment variable); `sessions drivers` lists them",
        )
    config = SessionConfig.from_env(env, **overrides)
    drivers: Any = given.get("drivers")
    if drivers is not None:
        if not isinstance(drivers, Mapping) or not all(
            isinstance(v, Mapping) for v in drivers.values()
        ):
            raise ConfigError(
                "SESSIONS['drivers']", drivers, "a dict of driver name -> option dict"
            )
        # Options from the environment stay unless the setting gives the same one.
        merged = {name: dict(options) for name, options in config.drivers.items()}
        for name, options in drivers.items():
            merged[name] = {**merged.get(name, {}), **options}
        config = dataclasses.replace(config, drivers=merged)
    return config


def _check_driver(manager: SessionManager) -> None:
    from ..drivers.cookie import CookieDriver

    driver = manager.driver  # built here: bad driver options fail now
    if isinstance(driver, CookieDriver):
        raise ConfigError(
            "SESSIONS['driver']",
            manager.config.driver,
            "a server-side driver (redis, file, sql, memcached, ...): the cookie driver "
            "needs the request's cookies, which Django's engine API never passes; for "
            "sessions kept in cookies use Django's own SESSION_ENGINE = "
            "'django.contrib.sessions.backends.signed_cookies'",
        )
    manager.require_sync()


class _Holder:
    """The process's manager, built once under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.manager: SessionManager | None = None


_holder = _Holder()


def get_manager() -> SessionManager:
    """The process's :class:`SessionManager`, built from the settings on first use.

    Raises :class:`~sessions.ConfigError` when the settings are invalid, the
    driver is missing, async-only, or the cookie driver.
    """
    manager = _holder.manager
    if manager is None:
        with _holder.lock:
            manager = _holder.manager
            if manager is None:
                manager = SessionManager(build_config())
                try:
                    _check_driver(manager)
                except BaseException:
                    manager.close()
                    raise
                _holder.manager = manager
    return manager


def reset_manager() -> None:
    """Close and forget the process's manager; the next use builds a new one."""
    with _holder.lock:
        manager, _holder.manager = _holder.manager, None
    if manager is not None:
        manager.close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED:
        reset_manager()


setting_changed.connect(_on_setting_changed, dispatch_uid="sessions.django.config")
