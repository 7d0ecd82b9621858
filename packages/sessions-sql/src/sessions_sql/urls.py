"""Sync and async flavours of one database URL.

A user configures one URL; the driver serves WSGI apps through a sync DBAPI and
ASGI apps through an async one, choosing the counterpart from the package's
extras (psycopg/asyncpg, pymysql/aiomysql, sqlite3/aiosqlite).
"""

from __future__ import annotations

import importlib.util

from sessions.errors import ConfigError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "SUPPORTED",
    "async_url",
    "backend",
    "dbapi_installed",
    "dbapi_module",
    "install_hint",
    "parse",
    "sync_url",
]

#: Backend name -> (default sync driver, default async driver).
SUPPORTED: dict[str, tuple[str, str]] = {
    "sqlite": ("pysqlite", "aiosqlite"),
    "postgresql": ("psycopg", "asyncpg"),
    "mysql": ("pymysql", "aiomysql"),
    "mariadb": ("pymysql", "aiomysql"),
}
#: The module each SQLAlchemy DBAPI name imports (unknown names are not checked).
_MODULES = {
    "pysqlite": "sqlite3",
    "aiosqlite": "aiosqlite",
    "psycopg": "psycopg",
    "psycopg_async": "psycopg",
    "asyncpg": "asyncpg",
    "psycopg2": "psycopg2",
    "pg8000": "pg8000",
    "pymysql": "pymysql",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "mysqldb": "MySQLdb",
    "mariadbconnector": "mariadb",
}
#: The package extra that installs a backend's default DBAPIs.
_EXTRAS = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
_ASYNC_DRIVERS = {"aiosqlite", "asyncpg", "psycopg_async", "aiomysql", "asyncmy"}
# DBAPIs that serve both flavours under one name in SQLAlchemy.
_BOTH = {"psycopg"}
_EXAMPLES = (
    "sqlite:///path/to/sessions.db, postgresql+psycopg://user@127.0.0.1/app, "
    "mysql+pymysql://user@127.0.0.1/app"
)


def parse(value: str | URL, where: str = "drivers.sql.url") -> URL:
    """Parse and check a URL; raise ConfigError naming the option when it is unusable."""
    try:
        url = make_url(value)
    except ArgumentError as exc:
        raise ConfigError(
            where, _safe(value), f"a SQLAlchemy database URL such as {_EXAMPLES}"
        ) from exc
    if url.get_backend_name() not in SUPPORTED:
        raise ConfigError(
            where,
            _safe(url),
            f"a database the sql driver supports ({', '.join(SUPPORTED)}), e.g. {_EXAMPLES}",
        )
    return url


def backend(url: URL) -> str:
    """The backend name: ``sqlite``, ``postgresql``, ``mysql`` or ``mariadb``."""
    return url.get_backend_name()


def is_async(url: URL) -> bool:
    """True when the URL names an async DBAPI."""
    return url.get_driver_name() in _ASYNC_DRIVERS


def sync_url(url: URL) -> URL:
    """The URL with a sync DBAPI (the given one if it already is sync)."""
    name = url.get_backend_name()
    if url.drivername != name and not is_async(url):
        return url
    if url.get_driver_name() == "psycopg_async":
        return url.set(drivername=f"{name}+psycopg")
    return url.set(drivername=f"{name}+{SUPPORTED[name][0]}")


def async_url(url: URL) -> URL:
    """The URL with an async DBAPI (the given one if it already is async)."""
    name = url.get_backend_name()
    if is_async(url) or (url.drivername != name and url.get_driver_name() in _BOTH):
        return url
    return url.set(drivername=f"{name}+{SUPPORTED[name][1]}")


def _safe(value: str | URL) -> str:
    try:
        return make_url(value).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def dbapi_module(url: URL) -> str:
    """The module the URL's DBAPI lives in (its SQLAlchemy name when unknown)."""
    name = url.get_driver_name()
    return _MODULES.get(name, name)


def dbapi_installed(url: URL) -> bool:
    """True when the URL's DBAPI can be imported (checked without importing it)."""
    module = _MODULES.get(url.get_driver_name())
    return module is None or importlib.util.find_spec(module) is not None


def install_hint(url: URL) -> str:
    """The pip command that installs the backend's DBAPIs (sync and async)."""
    return f'pip install "sessions-sql[{_EXTRAS[backend(url)]}]"'
