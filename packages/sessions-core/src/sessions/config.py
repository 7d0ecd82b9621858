"""Session configuration: one immutable object, validated when it is built."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from .durations import parse_age
from .errors import ConfigError

__all__ = ["CookieOptions", "SessionConfig"]

SameSite = Literal["lax", "strict", "none"]
_SAME_SITE = ("lax", "strict", "none")
MIN_SECRET_LENGTH = 32
# RFC 6265 cookie-name token characters.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(field_name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(field_name, value, "a boolean: true/false, 1/0, yes/no, on/off")


@dataclass(frozen=True, kw_only=True)
class CookieOptions:
    """Attributes of the session id cookie (and of the cookie driver's data cookie).

    ``secure=None`` means automatic: the cookie is marked Secure on https
    requests and not on plain http ones (so local development works).
    """

    path: str = "/"
    domain: str | None = None
    http_only: bool = True
    secure: bool | None = None
    same_site: SameSite | None = "lax"

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/") or ";" in self.path:
            raise ConfigError("cookie.path", self.path, 'a URL path starting with "/"')
        if self.domain is not None and (
            not isinstance(self.domain, str) or not self.domain or ";" in self.domain
        ):
            raise ConfigError("cookie.domain", self.domain, "a domain name or None")
        object.__setattr__(self, "http_only", _parse_bool("cookie.http_only", self.http_only))
        if self.secure is not None:
            object.__setattr__(self, "secure", _parse_bool("cookie.secure", self.secure))
        same_site = self.same_site
        if isinstance(same_site, str):
            same_site = same_site.strip().lower()  # type: ignore[assignment]
        if same_site is not None and same_site not in _SAME_SITE:
            raise ConfigError(
                "cookie.same_site", self.same_site, 'one of "lax", "strict", "none" or None'
            )
        if same_site == "none" and self.secure is False:
            raise ConfigError(
                "cookie.same_site",
                self.same_site,
                'browsers reject SameSite=None without Secure: set secure=True or use "lax"',
            )
        object.__setattr__(self, "same_site", same_site)


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Everything a :class:`~sessions.SessionManager` needs, validated at construction.

    Args:
        secret: the current secret (at least 32 characters). It signs the id
            cookie and keys the cookie driver's cipher. ``sessions secret``
            prints a good one.
        secret_fallbacks: older secrets that still verify (and decrypt), for rotation.
        driver: name of the storage driver (``"cookie"``, ``"memory"``, or an
            installed one such as ``"redis"``).
        age: how long an idle session lives: ``"2h"``, ``"30m"``, ``"1h30m"``,
            ``"7d"``, seconds, or a ``timedelta``.
        cookie_name: name of the session id cookie.
        clear_with_browser: send the cookie without Max-Age, so the browser
            forgets it when it closes (the store still expires it after ``age``).
        cookie: id cookie attributes, a :class:`CookieOptions` or a mapping of its fields.
        drivers: per-driver options, ``{"redis": {"url": ...}}``.
        enabled: ``False`` turns the integrations into pass-throughs.
        absolute_age: the longest a session may live from its creation, however
            active it is (a duration as for ``age``; ``None``: no limit). Past it
            the session is destroyed and the request gets a fresh one.
        lazy: read nothing from the store until the request uses its session;
            a request that never does costs no store I/O and gets no cookie, and
            an empty new session never gets a cookie. Such a request does not
            extend the session's life.
        touch_interval: refresh an unchanged session's expiry (and re-issue its
            cookie) at most once per this interval (a duration as for ``age``;
            ``0``: every request). The last refresh time travels in the signed
            id cookie, so deciding costs no round trip.
    """

    secret: str
    secret_fallbacks: tuple[str, ...] = ()
    driver: str = "cookie"
    age: str | int | float | timedelta = "2h"
    cookie_name: str = "session"
    clear_with_browser: bool = False
    cookie: CookieOptions = field(default_factory=CookieOptions)
    drivers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    enabled: bool = True
    absolute_age: str | int | float | timedelta | None = None
    lazy: bool = False
    touch_interval: str | int | float | timedelta = 0
    age_seconds: int = field(init=False)
    absolute_age_seconds: int | None = field(init=False)
    touch_interval_seconds: int = field(init=False)

    def __post_init__(self) -> None:
        valid_secret = (
            f"a string of at least {MIN_SECRET_LENGTH} characters "
            "(run `sessions secret` to make one)"
        )
        if not isinstance(self.secret, str) or len(self.secret) < MIN_SECRET_LENGTH:
            given = self.secret if not isinstance(self.secret, str) else _redact(self.secret)
            raise ConfigError("secret", given, valid_secret)
        given_fallbacks: Any = self.secret_fallbacks
        fallbacks = (
            (given_fallbacks,) if isinstance(given_fallbacks, str) else tuple(given_fallbacks)
        )
        for i, old in enumerate(fallbacks):
            if not isinstance(old, str) or len(old) < MIN_SECRET_LENGTH:
                raise ConfigError(
                    f"secret_fallbacks[{i}]",
                    _redact(old) if isinstance(old, str) else old,
                    valid_secret,
                )
        object.__setattr__(self, "secret_fallbacks", fallbacks)
        if not isinstance(self.driver, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", self.driver):
            raise ConfigError(
                "driver", self.driver, "a driver name such as 'cookie', 'memory', 'redis'"
            )
        object.__setattr__(self, "age_seconds", parse_age(self.age))
        if not isinstance(self.cookie_name, str) or not _COOKIE_NAME.fullmatch(self.cookie_name):
            raise ConfigError(
                "cookie_name",
                self.cookie_name,
                "a non-empty cookie name of RFC 6265 token characters",
            )
        object.__setattr__(
            self, "clear_with_browser", _parse_bool("clear_with_browser", self.clear_with_browser)
        )
        object.__setattr__(self, "enabled", _parse_bool("enabled", self.enabled))
        absolute = self.absolute_age
        if isinstance(absolute, str) and absolute.strip().lower() in ("", "none"):
            absolute = None
        object.__setattr__(
            self,
            "absolute_age_seconds",
            None if absolute is None else parse_age(absolute, "absolute_age"),
        )
        if self.absolute_age_seconds is not None and self.absolute_age_seconds < self.age_seconds:
            raise ConfigError(
                "absolute_age",
                self.absolute_age,
                f"a duration at least as long as age ({self.age_seconds} s), or None",
            )
        object.__setattr__(self, "lazy", _parse_bool("lazy", self.lazy))
        interval = self.touch_interval
        zero = interval == 0 or (isinstance(interval, str) and interval.strip() in ("", "0"))
        object.__setattr__(
            self,
            "touch_interval_seconds",
            0 if zero and type(interval) is not bool else parse_age(interval, "touch_interval"),
        )
        if self.touch_interval_seconds >= self.age_seconds:
            raise ConfigError(
                "touch_interval",
                self.touch_interval,
                f"a duration shorter than age ({self.age_seconds} s), or 0 (every request)",
            )
        if isinstance(self.cookie, Mapping):
            try:
                object.__setattr__(self, "cookie", CookieOptions(**self.cookie))
            except TypeError as exc:
                raise ConfigError(
                    "cookie",
                    dict(self.cookie),
                    "keys among path, domain, http_only, secure, same_site",
                ) from exc
        elif not isinstance(self.cookie, CookieOptions):
            raise ConfigError("cookie", self.cookie, "a CookieOptions or a mapping of its fields")
        if not isinstance(self.drivers, Mapping) or not all(
            isinstance(v, Mapping) for v in self.drivers.values()
        ):
            raise ConfigError("drivers", self.drivers, "a mapping of driver name -> option mapping")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The current secret followed by the fallbacks."""
        return (self.secret, *self.secret_fallbacks)

    def driver_options(self, name: str | None = None) -> Mapping[str, Any]:
        """Options given for driver ``name`` (default: the selected driver)."""
        return self.drivers.get(name or self.driver, {})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SessionConfig:
        """Build a config from ``SESSION_*`` environment variables.

        Reads ``SESSION_DRIVER``, ``SESSION_SECRET``, ``SESSION_SECRET_FALLBACKS``
        (comma-separated), ``SESSION_AGE``, ``SESSION_COOKIE_NAME``,
        ``SESSION_CLEAR_WITH_BROWSER``, ``SESSION_ENABLED``, ``SESSION_ABSOLUTE_AGE``,
        ``SESSION_LAZY``, ``SESSION_TOUCH_INTERVAL``, the cookie flags
        ``SESSION_COOKIE_PATH``/``_DOMAIN``/``_SECURE``/``_HTTP_ONLY``/``_SAME_SITE``,
        and ``SESSION_<DRIVER>_<OPTION>`` for the selected driver's options
        (``SESSION_REDIS_URL`` -> ``drivers={"redis": {"url": ...}}``). Values stay
        strings here; the driver's declared option types convert them.
        Keyword ``overrides`` win over the environment.
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        simple = {
            "SESSION_DRIVER": "driver",
            "SESSION_SECRET": "secret",
            "SESSION_AGE": "age",
            "SESSION_COOKIE_NAME": "cookie_name",
            "SESSION_CLEAR_WITH_BROWSER": "clear_with_browser",
            "SESSION_ENABLED": "enabled",
            "SESSION_ABSOLUTE_AGE": "absolute_age",
            "SESSION_LAZY": "lazy",
            "SESSION_TOUCH_INTERVAL": "touch_interval",
        }
        for var, name in simple.items():
            if var in env:
                kwargs[name] = env[var]
        if env.get("SESSION_SECRET_FALLBACKS"):
            kwargs["secret_fallbacks"] = tuple(
                s.strip() for s in env["SESSION_SECRET_FALLBACKS"].split(",") if s.strip()
            )
        cookie_flags = ("path", "domain", "secure", "http_only", "same_site")
        cookie: dict[str, Any] = {}
        for flag in cookie_flags:
            var = f"SESSION_COOKIE_{flag.upper()}"
            if var in env:
                value: Any = env[var]
                if flag in ("domain", "same_site") and value.strip().lower() in ("", "none"):
                    value = None if flag == "domain" or value == "" else value
                if flag == "secure" and value.strip().lower() in ("", "auto"):
                    value = None
                cookie[flag] = value
        if cookie:
            kwargs["cookie"] = cookie
        driver = str(overrides.get("driver", kwargs.get("driver", "cookie")))
        reserved = {f"SESSION_COOKIE_{f.upper()}" for f in (*cookie_flags, "name")}
        prefix = f"SESSION_{driver.upper()}_"
        options = {
            var[len(prefix) :].lower(): value
            for var, value in env.items()
            if var.startswith(prefix) and var not in reserved and len(var) > len(prefix)
        }
        if options:
            kwargs["drivers"] = {driver: options}
        if "secret" not in kwargs and "secret" not in overrides:
            raise ConfigError(
                "SESSION_SECRET",
                None,
                f"set it to a random string of at least {MIN_SECRET_LENGTH} characters "
                "(`sessions secret` prints one)",
            )
        kwargs.update(overrides)
        return cls(**kwargs)


def _redact(secret: str) -> str:
    return f"<{len(secret)} characters>"
