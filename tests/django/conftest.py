"""Fixtures of the Django engine's tests.

Django is configured once per test process with the demo project's settings
(examples/django-demo), its users in a SQLite file migrated once. Each storage
backend is real: Redis and memcached servers started on free loopback ports,
a file directory, SQLite files and a database on the PostgreSQL service.
Tests select one with ``use_backend``, which points ``SESSIONS`` at it through
``override_settings`` (the engine rebuilds its manager on the change).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sessions.testing.servers import ServerProcess, require_binary

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "examples" / "django-demo"
BACKENDS = ["redis", "file", "sqlite", "postgres", "memcached"]
# Set before Django reads the settings, once per test process.
_SETUP = {"done": False}


def _setup_django(db_dir: Path) -> None:
    if _SETUP["done"]:
        return
    for name in [n for n in os.environ if n.startswith("SESSION_")]:
        del os.environ[name]
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    os.environ["DJANGO_DEMO_DB"] = str(db_dir / "users.sqlite3")
    os.environ["DJANGO_DEMO_FAST_HASHER"] = "1"
    if str(DEMO_DIR) not in sys.path:
        sys.path.insert(0, str(DEMO_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    _SETUP["done"] = True


@pytest.fixture(scope="session")
def django_ready(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django set up with the demo's settings; returns the migrated users database."""
    db_dir = tmp_path_factory.mktemp("django-users")
    _setup_django(db_dir)
    return Path(os.environ["DJANGO_DEMO_DB"])


# -- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = require_binary("redis-server")

    def command(port: int, workdir: Path) -> list[str]:
        return [
            *(binary, "--save", "", "--appendonly", "no", "--port", str(port)),
            *("--bind", "127.0.0.1", "--dir", str(workdir)),
        ]

    with ServerProcess("redis", command).start() as server:
        yield f"redis://{server.address}/0"


@pytest.fixture(scope="session")
def memcached_address() -> Iterator[str]:
    binary = require_binary("memcached")

    def command(port: int, workdir: Path) -> list[str]:
        return [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"]

    with ServerProcess("memcached", command).start() as server:
        yield server.address


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: CI may never pass by skipping."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    import psycopg

    name = f"sessions_django_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# -- backends -----------------------------------------------------------------------------


@dataclass
class Backend:
    """One storage backend: the SESSIONS setting that selects it, and raw access
    to its store that bypasses our driver."""

    name: str
    sessions: dict[str, Any]
    #: Every key in the store (None where the store cannot list its keys).
    keys: Callable[[], set[str] | None]
    #: Make the stored record of a storage key expired in the store itself
    #: (None for stores that expire records by themselves).
    age_out: Callable[[str], None] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def driver(self) -> str:
        return str(self.sessions["driver"])


def _sql_backend(name: str, url: str) -> Backend:
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    table = f"dj_{secrets.token_hex(4)}"
    engine = create_engine(url, poolclass=NullPool)

    def keys() -> set[str]:
        if not inspect(engine).has_table(table):
            return set()  # the driver creates it on first use
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(text(f"SELECT key FROM {table}"))}

    def age_out(sid: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(f"UPDATE {table} SET expires_at = :past WHERE key = :key"),
                {"past": _past(), "key": sid},
            )

    options = {"url": url, "table": table, "create_table": True}
    env = {
        "SESSION_DRIVER": "sql",
        "SESSION_SQL_URL": url,
        "SESSION_SQL_TABLE": table,
        "SESSION_SQL_CREATE_TABLE": "true",
    }
    return Backend(name, {"driver": "sql", "drivers": {"sql": options}}, keys, age_out, env)


def _past() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)


def _memory_keys() -> set[str]:
    from sessions.django.config import get_manager

    return set(get_manager().driver._data)


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The backend ``name``, its server started if needed, with an empty store."""
    prefix = f"dj{secrets.token_hex(4)}:"
    if name == "redis":
        import redis

        url = request.getfixturevalue("redis_url")
        raw = redis.Redis.from_url(url)
        request.addfinalizer(raw.close)
        options = {"url": url, "key_prefix": prefix}
        return Backend(
            name,
            {"driver": "redis", "drivers": {"redis": options}},
            lambda: {k.decode().removeprefix(prefix) for k in raw.keys(prefix + "*")},
            env={
                "SESSION_DRIVER": "redis",
                "SESSION_REDIS_URL": url,
                "SESSION_REDIS_KEY_PREFIX": prefix,
            },
        )
    if name == "memcached":
        address = request.getfixturevalue("memcached_address")
        options = {"servers": [address], "key_prefix": prefix}
        return Backend(
            name,
            {"driver": "memcached", "drivers": {"memcached": options}},
            lambda: None,
            env={
                "SESSION_DRIVER": "memcached",
                "SESSION_MEMCACHED_SERVERS": address,
                "SESSION_MEMCACHED_KEY_PREFIX": prefix,
            },
        )
    if name == "file":
        location = tmp_path / "sessions"

        def keys() -> set[str]:
            return {p.name for p in location.rglob("*") if p.is_file() and len(p.name) == 43}

        def age_out(sid: str) -> None:
            (path,) = [p for p in location.rglob(sid) if p.is_file()]
            old = time.time() - 10 * 86400
            os.utime(path, (old, old))

        return Backend(
            name,
            {"driver": "file", "drivers": {"file": {"location": str(location)}}},
            keys,
            age_out,
            env={"SESSION_DRIVER": "file", "SESSION_FILE_LOCATION": str(location)},
        )
    if name == "memory":  # core's own driver, with the versioned capability
        return Backend(name, {"driver": "memory"}, _memory_keys)
    if name == "dbm":  # the example third-party driver package (plain contract)
        options = {"path": str(tmp_path / "dbm" / "sessions.dbm")}
        return Backend(name, {"driver": "dbm", "drivers": {"dbm": options}}, lambda: None)
    if name == "sqlite":
        return _sql_backend(name, f"sqlite:///{tmp_path / 'sessions.sqlite3'}")
    if name == "postgres":
        return _sql_backend(name, request.getfixturevalue("postgres_url"))
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each storage backend in turn."""
    return make_backend(request.param, request, tmp_path)


@pytest.fixture
def use_backend(django_ready: Path, backend: Backend) -> Iterator[Backend]:
    """Django's sessions stored on ``backend`` for the test."""
    from django.test import override_settings

    with override_settings(SESSIONS=backend.sessions):
        yield backend


@pytest.fixture
def memory_sessions(django_ready: Path) -> Iterator[None]:
    """Django's sessions on the memory driver (for tests of the engine itself)."""
    from django.test import override_settings

    with override_settings(SESSIONS={"driver": "memory"}):
        yield


def demo_server(env: dict[str, str], users_db: Path) -> ServerProcess:
    """The demo under uvicorn (ASGI) on a free loopback port, with ``env`` (not started)."""
    import shutil

    def command(port: int, workdir: Path) -> list[str]:
        db = workdir / "users.sqlite3"
        shutil.copyfile(users_db, db)
        settings = {
            "DJANGO_SETTINGS_MODULE": "demo_site.settings",
            "DJANGO_DEMO_DB": str(db),
            "DJANGO_DEMO_FAST_HASHER": "1",
            **env,
        }
        return [
            "env",
            "-u",
            "SESSIONS_PLUGINS",
            *(f"{name}={value}" for name, value in settings.items()),
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(DEMO_DIR),
            "demo_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ]

    return ServerProcess("django-demo", command)
