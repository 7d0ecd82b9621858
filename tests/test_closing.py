"""Who closes the manager: the integration that built it.

A manager built by ``sessions.asgi.SessionMiddleware`` (from a config) is
closed at lifespan shutdown, and one built by ``QuartSessions`` when the app
stops serving; a manager passed in stays open for the application to close.
Uses the dbm example driver, found through its installed entry point, whose
``close()`` really closes its database file.
"""

from __future__ import annotations

import dbm
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import quart
from sessions import SessionConfig, SessionManager
from sessions.asgi import SessionMiddleware
from sessions.quart import QuartSessions
from starlette.applications import Starlette
from starlette.testclient import TestClient

SECRET = "closing-tests-secret-0123456789-abcdefghi"


@pytest.fixture(autouse=True)
def _dbm_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from sessions.plugins import reset_plugins

    monkeypatch.setenv("SESSIONS_PLUGINS", "dbm")
    reset_plugins()
    yield
    reset_plugins()


def config(tmp_path: Path) -> SessionConfig:
    return SessionConfig(
        secret=SECRET, driver="dbm", drivers={"dbm": {"path": tmp_path / "sessions"}}
    )


def is_closed(driver: Any) -> bool:
    """True when the driver's database file is closed (every dbm backend raises)."""
    try:
        driver.read("x" * 43)
    except (OSError, *dbm.error):
        return True
    return False


def test_asgi_middleware_closes_the_manager_it_built(tmp_path: Path) -> None:
    middleware = SessionMiddleware(Starlette(), config=config(tmp_path))
    assert middleware.owns_manager
    with TestClient(middleware):
        assert not is_closed(middleware.manager.driver)
    assert is_closed(middleware.manager.driver)


def test_asgi_middleware_leaves_a_given_manager_open(tmp_path: Path) -> None:
    manager = SessionManager(config(tmp_path))
    middleware = SessionMiddleware(Starlette(), manager)
    with TestClient(middleware):
        pass
    assert not is_closed(manager.driver)
    manager.close()
    assert is_closed(manager.driver)


def test_quart_closes_the_manager_it_built_after_serving(tmp_path: Path) -> None:
    app = quart.Quart(__name__)
    sessions = QuartSessions(app, config=config(tmp_path))
    assert sessions.manager is not None

    async def serve() -> None:
        async with app.test_app():
            assert not is_closed(sessions.manager.driver)

    anyio.run(serve)
    assert is_closed(sessions.manager.driver)


def test_quart_leaves_a_given_manager_open(tmp_path: Path) -> None:
    manager = SessionManager(config(tmp_path))
    app = quart.Quart(__name__)
    QuartSessions(app, manager)

    async def serve() -> None:
        async with app.test_app():
            pass

    anyio.run(serve)
    assert not is_closed(manager.driver)
    manager.close()
