"""The sql driver in a fresh virtual environment without the async DBAPIs.

``pip install sessions-sql`` without an extra has no aiosqlite, asyncpg or
aiomysql. An ASGI application must still work: its async requests run the sync
DBAPI in worker threads (with one warning naming the extra to install). A
database with neither DBAPI installed fails when the manager is built, naming
the ``pip install "sessions-sql[...]"`` command, not at the first request.

Built as a user installs it: wheels of sessions-core and sessions-sql, installed
with uv into a new venv next to PyMySQL only, run against real SQLite and MariaDB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from .conftest import Database

REPO = Path(__file__).resolve().parents[3]

ASGI_ROUND_TRIP = r"""
import asyncio, json, logging, sys
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware

logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
url = sys.argv[1]
config = SessionConfig(
    secret="venv-tests-secret-0123456789-abcdefghijk",
    driver="sql",
    drivers={"sql": {"url": url, "create_table": True, "table": "venv_sessions"}},
)
try:
    manager = SessionManager(config)
    manager.driver
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)


async def app(scope, receive, send):
    session = scope["session"]
    session.put("n", session.get("n", 0) + 1)
    body = json.dumps({"n": session.get("n")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def request(middleware, cookie):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    headers = [(b"cookie", cookie.encode())] if cookie else []
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers, "scheme": "http"}
    await middleware(scope, receive, send)
    set_cookie = [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]
    return json.loads(sent[1]["body"]), set_cookie[0].split(";", 1)[0]


async def main():
    middleware = SessionMiddleware(app, manager)
    first, cookie = await request(middleware, "")
    second, _ = await request(middleware, cookie)
    await manager.aclose()
    import importlib.util
    missing = [m for m in ("aiosqlite", "asyncpg", "aiomysql") if importlib.util.find_spec(m)]
    print(json.dumps({"counts": [first["n"], second["n"]], "async_dbapis_found": missing}))


asyncio.run(main())
"""


def _run(argv: Sequence[str | Path], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT", "SESSIONS_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SESSION_")}
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("uv is not on PATH")
        pytest.skip("uv is not on PATH")
    root = tmp_path_factory.mktemp("nodbapi")
    wheels = root / "wheels"
    for package in ("sessions-core", "sessions-sql"):
        _run([uv, "build", "-q", "--wheel", "-o", wheels, REPO / "packages" / package])
    _run([uv, "venv", "-q", root / "venv", "--python", sys.executable])
    python = root / "venv" / "bin" / "python"
    install = [uv, "pip", "install", "-q", "--python", python, "--find-links", wheels]
    _run([*install, "sessions-sql", "pymysql"])
    return python


def _asgi(python: Path, url: str) -> tuple[dict[str, object], str]:
    proc = _run([python, "-c", ASGI_ROUND_TRIP, url])
    return json.loads(proc.stdout), proc.stderr


@pytest.mark.slow
def test_asgi_on_sqlite_without_aiosqlite_runs_in_threads(
    venv_python: Path, sqlite_db: Database
) -> None:
    result, log = _asgi(venv_python, sqlite_db.url)
    assert result == {"counts": [1, 2], "async_dbapis_found": []}
    assert "aiosqlite (the async DBAPI for" in log
    assert 'pip install "sessions-sql[sqlite]"' in log
    assert sqlite_db.count("venv_sessions") == 1


@pytest.mark.slow
def test_asgi_on_mariadb_without_aiomysql_runs_in_threads(
    venv_python: Path, mariadb_db: Database
) -> None:
    url = mariadb_db.url.replace("mysql+pymysql://", "mysql://")  # the default DBAPIs
    result, log = _asgi(venv_python, url)
    assert result == {"counts": [1, 2], "async_dbapis_found": []}
    assert 'pip install "sessions-sql[mysql]"' in log
    assert mariadb_db.count("venv_sessions") == 1


@pytest.mark.slow
def test_a_database_without_any_dbapi_fails_at_startup(venv_python: Path) -> None:
    # Nothing listens there: the error must come from the missing DBAPIs, before any I/O.
    result, _ = _asgi(venv_python, "postgresql://app:hunter2@127.0.0.1:9/app")
    error = str(result["error"])
    assert error.startswith("ConfigError: invalid session config drivers.sql.url=")
    assert "asyncpg and psycopg are missing" in error
    assert 'pip install "sessions-sql[postgresql]"' in error
    assert "hunter2" not in error
