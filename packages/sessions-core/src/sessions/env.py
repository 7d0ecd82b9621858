"""Reading a :class:`~sessions.SessionConfig` from ``SESSION_*`` environment variables.

Every setting has one variable: ``SESSION_<FIELD>`` for the config's own
fields (derived from the dataclass, so a new field is readable at once),
``SESSION_COOKIE_<FLAG>`` for the cookie attributes, and
``SESSION_<DRIVER>_<OPTION>`` for the selected driver's options.

Errors name the variable the user typed (``SESSION_REDIS_URLL``) as well as
the config path (``drivers.redis.urll``), and suggest the closest valid name.
A ``SESSION_*`` variable that is one typo away from a setting
(``SESSION_SECRET_FALLBACK``, ``SESSION_COOKIE_SECUR``) fails at startup;
one that resembles nothing is logged as ignored, since other software
(``SESSION_MANAGER`` of X11 desktops) uses the prefix too.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import SessionConfig

__all__ = ["PREFIX", "EnvOptions", "closest", "config_from_env", "env_variables"]

PREFIX = "SESSION_"
logger = logging.getLogger("sessions")

# Set by other software; never reported.
_FOREIGN = frozenset({"SESSION_MANAGER"})
# Fields not read from a variable of their own name.
_SPECIAL_FIELDS = frozenset({"cookie", "drivers", "secret_fallbacks"})
_BUILTIN_DRIVERS = ("cookie", "memory")
# The cookie flags and the cookie driver's options share this prefix.
_COOKIE_PREFIX = f"{PREFIX}COOKIE_"
# How alike two names must be (difflib ratio) to call one a typo of the other.
_TYPO_CUTOFF = 0.8


class EnvOptions(dict[str, Any]):
    """Driver options read from the environment, remembering each one's variable.

    :func:`sessions.driver.validate_options` uses ``env_names`` to name the
    variable in its errors, and ``nearby`` (the core variables) to suggest a
    core setting for a mistyped ``SESSION_COOKIE_*`` read as a cookie-driver option.
    """

    def __init__(
        self, values: Mapping[str, Any], env_names: Mapping[str, str], nearby: Iterable[str]
    ) -> None:
        super().__init__(values)
        self.env_names = dict(env_names)
        self.nearby = tuple(nearby)


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``name`` is most likely a typo of, or None."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=_TYPO_CUTOFF)
    return found[0] if found else None


def env_variables(config_class: type[SessionConfig]) -> dict[str, str]:
    """``{variable: config path}`` of every core setting (not driver options)."""
    from .config import CookieOptions

    names: dict[str, str] = {}
    for f in dataclasses.fields(config_class):
        if f.init and f.name not in _SPECIAL_FIELDS:
            names[f"{PREFIX}{f.name.upper()}"] = f.name
    names[f"{PREFIX}SECRET_FALLBACKS"] = "secret_fallbacks"
    for f in dataclasses.fields(CookieOptions):
        names[f"{PREFIX}COOKIE_{f.name.upper()}"] = f"cookie.{f.name}"
    return names


def _installed_drivers() -> set[str]:
    names = set(_BUILTIN_DRIVERS)
    try:
        names.update(ep.name for ep in metadata.entry_points(group="sessions.drivers"))
    except Exception:  # broken metadata must not stop config; discovery reports it
        logger.debug("could not list installed session drivers", exc_info=True)
    return names


def _cookie_value(flag: str, value: str) -> Any:
    lowered = value.strip().lower()
    if flag == "domain" and lowered in ("", "none"):
        return None
    if flag == "same_site" and lowered == "":
        return None
    if flag == "secure" and lowered in ("", "auto"):
        return None
    return value


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Variables of a ``.env`` file (as ``sessions init`` writes it); {} if it is missing."""
    from .cli.envfile import EnvFileError
    from .cli.envfile import read_env_file as read

    try:
        return read(Path(path))
    except EnvFileError as exc:
        raise ConfigError("env_file", str(path), f"a readable .env file: {exc}") from None


def config_from_env(
    cls: type[SessionConfig],
    environ: Mapping[str, str] | None,
    env_file: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any],
) -> SessionConfig:
    """What :meth:`SessionConfig.from_env` does (see there)."""
    env: dict[str, str] = read_env_file(env_file) if env_file is not None else {}
    env.update(os.environ if environ is None else environ)
    core = env_variables(cls)
    kwargs: dict[str, Any] = {}
    cookie: dict[str, Any] = {}
    sourced: dict[str, str] = {}  # config path -> variable, for values from the environment
    for var, path in core.items():
        if var not in env:
            continue
        value = env[var]
        if path == "secret_fallbacks":
            if not value.strip():
                continue
            kwargs[path] = tuple(s.strip() for s in value.split(",") if s.strip())
        elif path.startswith("cookie."):
            flag = path[len("cookie.") :]
            cookie[flag] = _cookie_value(flag, value)
        else:
            kwargs[path] = value
        sourced[path] = var
    if cookie:
        kwargs["cookie"] = cookie
    driver = str(overrides.get("driver", kwargs.get("driver", "cookie")))
    prefix = f"{PREFIX}{driver.upper()}_"
    options: dict[str, str] = {}
    option_vars: dict[str, str] = {}
    installed = _installed_drivers() | {driver}
    strays: list[str] = []
    for var in sorted(env):
        if not var.startswith(PREFIX) or var in core or var in _FOREIGN:
            continue
        if var.startswith(prefix) and len(var) > len(prefix):
            name = var[len(prefix) :].lower()
            options[name] = env[var]
            option_vars[name] = var
        elif var.startswith(_COOKIE_PREFIX) and closest(var, core):
            # SESSION_COOKIE_SECUR: a typo of a cookie flag, not a cookie-driver option.
            strays.append(var)
        elif not any(var.startswith(f"{PREFIX}{d.upper()}_") for d in installed):
            # Options of another installed driver are legitimate (an environment
            # may configure several); anything else is unknown.
            strays.append(var)
    for var in strays:
        _report_stray(var, env[var], core, installed)
    if options:
        kwargs["drivers"] = {driver: EnvOptions(options, option_vars, core)}
    if "secret" not in kwargs and "secret" not in overrides:
        raise ConfigError(
            "SESSION_SECRET",
            None,
            "set it to a random string of at least 32 characters (`sessions secret` prints one)"
            + (f"; the .env file {env_file} does not set it either" if env_file else ""),
        )
    for key in overrides:
        sourced.pop(key, None)
        if key == "cookie":
            sourced = {k: v for k, v in sourced.items() if not k.startswith("cookie.")}
    kwargs.update(overrides)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        variable = sourced.get(exc.field.split("[", 1)[0])
        if variable is None:
            raise
        raise ConfigError(f"{variable} ({exc.field})", exc.given, exc.valid) from None


def _report_stray(var: str, value: str, core: Mapping[str, str], installed: set[str]) -> None:
    near = closest(var, core)
    if near is None:
        # SESSION_REDSI_URL: a typo of an installed driver's name.
        head, _, rest = var[len(PREFIX) :].partition("_")
        driver = closest(head.lower(), installed) if rest else None
        if driver is not None:
            near = f"{PREFIX}{driver.upper()}_{rest}"
    if near is not None:
        raise ConfigError(
            var,
            value,
            f"no such setting; did you mean {near}? (remove or rename the variable)",
        )
    logger.warning(
        "ignoring environment variable %s: it is not a sessions setting "
        "(settings: %s, or SESSION_<DRIVER>_<OPTION> for the selected driver)",
        var,
        ", ".join(sorted(core)),
    )
