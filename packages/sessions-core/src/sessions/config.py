"""Session configuration: one immutable object, validated when it is built."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
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
#: Least estimated entropy (bits) a secret must show; random secrets of 32+
#: characters (``sessions secret``, ``secrets.token_hex(16)``) show 90 and more.
MIN_SECRET_BITS = 80
MIN_SECRET_DISTINCT = 8
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


def weak_secret(secret: str) -> str | None:
    """Why ``secret`` is obviously guessable, or None when it looks random enough.

    The estimate is the text's own character statistics (Shannon entropy per
    character times its length), which no low-effort secret survives:
    ``"a" * 32`` scores 0 bits, ``"password" * 4`` repeats, a real random
    secret of the minimum length scores about 110 bits or more.
    """
    distinct = len(set(secret))
    if distinct < MIN_SECRET_DISTINCT:
        return f"it uses only {distinct} distinct characters"
    length = len(secret)
    for period in range(1, length // 2 + 1):
        if secret == (secret[:period] * (length // period + 1))[:length]:
            return f"it repeats its first {period} characters"
    counts = Counter(secret).values()
    bits = -sum(n * math.log2(n / length) for n in counts)
    if bits < MIN_SECRET_BITS:
        return f"its estimated entropy is {bits:.0f} bits, below {MIN_SECRET_BITS}"
    return None


def _check_secret(field_name: str, secret: object) -> None:
    valid = (
        f"a random string of at least {MIN_SECRET_LENGTH} characters "
        "(run `sessions secret` to make one)"
    )
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(field_name, secret, valid)
    reason = weak_secret(secret)
    if reason is not None:
        raise ConfigError(field_name, secret, f"too easy to guess: {reason}; use {valid}")


def _check_prefix(cookie_name: str, cookie: CookieOptions) -> None:
    """Enforce the rules browsers apply to ``__Secure-`` and ``__Host-`` cookie names.

    A browser silently drops a prefixed cookie that breaks them, so every
    request would get a fresh session; better to say so at startup.
    """
    lowered = cookie_name.lower()  # browsers match the prefixes case-insensitively
    for prefix in ("__secure-", "__host-"):
        if lowered.startswith(prefix) and cookie.secure is False:
            raise ConfigError(
                "cookie.secure",
                False,
                f"True or None (automatic): a cookie named {cookie_name!r} must be Secure, "
                "browsers drop it otherwise",
            )
    if lowered.startswith("__host-"):
        if cookie.domain is not None:
            raise ConfigError(
                "cookie.domain",
                cookie.domain,
                f"None: a cookie named {cookie_name!r} (__Host- prefix) must not carry a Domain",
            )
        if cookie.path != "/":
            raise ConfigError(
                "cookie.path",
                cookie.path,
                f'"/": a cookie named {cookie_name!r} (__Host- prefix) must have Path=/',
            )


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
        secret: the current secret (at least 32 random characters; an obviously
            guessable one such as ``"a" * 32`` is refused). It signs the id
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
        commit_on_error: also commit the session when the application raised or
            answered with a 5xx status. By default such a request's half-done
            changes are dropped (as Django does): no store write, no cookie.
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
    # -- failure path ----------------------------------------------------------------
    commit_on_error: bool = False
    age_seconds: int = field(init=False)
    absolute_age_seconds: int | None = field(init=False)
    touch_interval_seconds: int = field(init=False)

    def __post_init__(self) -> None:
        _check_secret("secret", self.secret)
        given_fallbacks: Any = self.secret_fallbacks
        fallbacks = (
            (given_fallbacks,) if isinstance(given_fallbacks, str) else tuple(given_fallbacks)
        )
        for i, old in enumerate(fallbacks):
            _check_secret(f"secret_fallbacks[{i}]", old)
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
        _check_prefix(self.cookie_name, self.cookie)
        # -- failure path ------------------------------------------------------------
        object.__setattr__(
            self, "commit_on_error", _parse_bool("commit_on_error", self.commit_on_error)
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The current secret followed by the fallbacks."""
        return (self.secret, *self.secret_fallbacks)

    def driver_options(self, name: str | None = None) -> Mapping[str, Any]:
        """Options given for driver ``name`` (default: the selected driver)."""
        return self.drivers.get(name or self.driver, {})

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> SessionConfig:
        """Build a config from ``SESSION_*`` environment variables.

        Every field has a variable named after it: ``SESSION_DRIVER``,
        ``SESSION_SECRET``, ``SESSION_SECRET_FALLBACKS`` (comma-separated),
        ``SESSION_AGE``, ``SESSION_COOKIE_NAME``, ``SESSION_CLEAR_WITH_BROWSER``,
        ``SESSION_ENABLED``, ``SESSION_ABSOLUTE_AGE``, ``SESSION_LAZY``,
        ``SESSION_TOUCH_INTERVAL``, ``SESSION_COMMIT_ON_ERROR``..., the cookie flags
        ``SESSION_COOKIE_PATH``/``_DOMAIN``/``_SECURE``/``_HTTP_ONLY``/``_SAME_SITE``,
        and ``SESSION_<DRIVER>_<OPTION>`` for the selected driver's options
        (``SESSION_REDIS_URL`` -> ``drivers={"redis": {"url": ...}}``). Values stay
        strings here; the driver's declared option types convert them.

        Args:
            environ: the variables to read (default: ``os.environ``).
            env_file: a ``.env`` file, such as the one ``sessions init`` writes;
                its variables are read first and the environment wins over them.
                A missing file is not an error (production sets real variables).
            overrides: config fields that win over the environment.

        Raises:
            ConfigError: naming the variable (``SESSION_REDIS_URLL``) and the field;
                also for a ``SESSION_*`` variable that is a typo of a setting.
        """
        from .env import config_from_env

        return config_from_env(cls, environ, env_file, overrides)
