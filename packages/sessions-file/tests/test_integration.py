"""The file driver through the whole stack: discovered by its entry point,
serving ASGI (async flavour, file I/O off the event loop) and WSGI requests."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sessions import SessionConfig, SessionManager
from sessions.testing import new_key
from sessions_file import FileDriver

SECRET = "file-driver-tests-secret-0123456789abcdef"
_IO_EVENTS = {"open", "os.rename", "os.utime", "os.remove", "os.mkdir", "os.scandir"}
_events: list[tuple[int, str]] = []
_on = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _on.is_set() and event in _IO_EVENTS:
        _events.append((threading.get_ident(), event))


sys.addaudithook(_audit)


def _sessions(location: Path) -> list[Path]:
    """Session files (not spares) under ``location``."""
    return [p for p in location.rglob("*") if p.is_file() and not p.name.startswith(".")]


@pytest.fixture
def manager(location: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionManager]:
    """A manager that finds the driver through the installed entry point."""
    monkeypatch.setenv("SESSIONS_PLUGINS", "file")
    config = SessionConfig(
        secret=SECRET, driver="file", drivers={"file": {"location": str(location)}}
    )
    manager = SessionManager(config)
    yield manager
    manager.close()


def test_entry_point_selects_the_file_driver(manager: SessionManager, location: Path) -> None:
    assert isinstance(manager.driver, FileDriver)
    assert manager.flavours.label == "sync+async"
    assert manager.touches_on_read is True
    assert manager.driver.describe() == str(location)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_flavour_never_does_file_io_on_the_event_loop(
    manager: SessionManager, backend: str
) -> None:
    driver: FileDriver = manager.driver
    loop_thread: list[int] = []

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        key = new_key()
        await driver.awrite(key, {"a": 1})
        assert await driver.aread(key) == {"a": 1}
        await driver.atouch(key)
        await driver.adestroy(key)
        assert await driver.aread(key) is None
        await driver.agc()

    _events.clear()
    _on.set()
    try:
        anyio.run(main, backend=backend)
    finally:
        _on.clear()
    kinds = {event for _, event in _events}
    assert {"open", "os.rename", "os.utime", "os.remove", "os.scandir"} <= kinds
    assert [event for thread, event in _events if thread == loop_thread[0]] == []


def test_asgi_requests_round_trip(manager: SessionManager, location: Path) -> None:
    from sessions.asgi import SessionMiddleware
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def count(request: Request) -> PlainTextResponse:
        visits = request.session.get("visits", 0) + 1
        request.session["visits"] = visits
        return PlainTextResponse(str(visits))

    app = SessionMiddleware(Starlette(routes=[Route("/", count)]), manager)
    with TestClient(app) as client:
        assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
        assert len(_sessions(location)) == 1
        client.cookies.clear()
        client.cookies.set("session", "forged.value")
        assert client.get("/").text == "1"  # a bad cookie gets a fresh session
    assert len(_sessions(location)) == 2


def test_wsgi_requests_round_trip(manager: SessionManager, location: Path) -> None:
    from sessions.wsgi import SessionMiddleware, current_session
    from werkzeug.test import Client

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = current_session(environ)
        visits = session.increment("visits")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(visits).encode()]

    client = Client(SessionMiddleware(application, manager))
    assert [client.get("/").get_data(as_text=True) for _ in range(3)] == ["1", "2", "3"]
    (path,) = _sessions(location)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # Another worker process of the same app (a second manager) sees the session.
    other = SessionManager(manager.config)
    client2 = Client(SessionMiddleware(application, other))
    client2.set_cookie(
        "session",
        client.get_cookie("session").value,  # type: ignore[union-attr]
    )
    assert client2.get("/").get_data(as_text=True) == "4"
    other.close()


def test_close_is_safe_without_background_gc(manager: SessionManager) -> None:
    manager.driver.write(new_key(), {"a": 1})
    manager.close()
    manager.close()
    assert os.path.isdir(manager.driver.describe())
